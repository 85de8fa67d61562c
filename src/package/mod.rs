//! The function's code: the deployable zip, built from a checkout or carried inside this wsctl.

mod carried;
mod source;
mod zip;

pub use carried::{carried, origin, Origin, VERSION};
pub use source::{build, fingerprint};
pub use zip::{catalogue_tag, CodeSpec, Zip};
