//! What the catalogue becomes for people and programs outside wsctl: a TypeScript module for
//! the React client ([`typescript`]) and an AsyncAPI document of the stack ([`asyncapi`]).

pub mod asyncapi;
pub mod typescript;
