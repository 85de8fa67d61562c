//! One module per AWS resource, each owning its whole life with the same operations
//! ([`shape::Resource`]): what the config asks for (`desired`), what exists (`observe`;
//! not-found is `None`), what would change (`diff`, pure: the plan's items, field by field),
//! why nothing may be written (`refuse`), making exactly the planned changes (`apply`), what
//! `down` deletes (`teardown`, `delete`) and what `status` checks (`checks`).
//!
//! To add a resource: write its module here (a unit struct implementing `Resource`), then add
//! one line to the engine's order (`src/engine/order.rs`) naming it and what it must follow.

pub mod account;
pub mod alarm;
pub mod api;
pub mod authorizer;
pub mod dashboard;
pub mod domain;
pub mod function;
pub mod grant;
pub mod history_table;
pub mod integration;
pub mod logs;
pub mod permission;
pub mod role;
pub mod route;
pub mod secret;
pub mod shape;
pub mod stage;
pub mod table;
pub mod user_routes;
