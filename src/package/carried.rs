//! The handler zips this wsctl carries (embedded by a release build, see build.rs), and which
//! handler a command uses: a zip given, a checkout named by `WSCTL_SOURCE_DIR`, the carried
//! zip, or the checkout this wsctl was built from.

use std::path::{Path, PathBuf};

use super::source::source_dir;
use super::zip::{sha256_hex, Zip};
use crate::config::Architecture;
use crate::error::Result;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/carried.rs"));
}

/// `wsctl --version`: the version and the SHA-256 of every carried handler zip.
pub const VERSION: &str = embedded::VERSION;

/// The handler zip this wsctl carries for `arch`, when it carries one. Its source tag names
/// the wsctl version and the zip's digest.
pub fn carried(arch: Architecture) -> Option<Zip> {
    let bytes = embedded_zip(arch)?;
    let tag = format!(
        "wsctl-{}-{}",
        env!("CARGO_PKG_VERSION"),
        &sha256_hex(bytes)[..16]
    );
    Some(Zip::new(bytes.to_vec(), tag))
}

/// The embedded bytes for `arch`, without copying or hashing them.
fn embedded_zip(arch: Architecture) -> Option<&'static [u8]> {
    match arch {
        Architecture::X86_64 => embedded::X86_64,
        Architecture::Arm64 => embedded::ARM64,
    }
}

/// Where a command's handler comes from.
pub enum Origin {
    /// `--handler-zip`.
    Given(Zip),
    /// A checkout to build from (`WSCTL_SOURCE_DIR`, or the one this wsctl was built from).
    Checkout(PathBuf),
    /// The zip this wsctl carries.
    Carried(Zip),
}

/// Picks the handler, in this order: the zip given; the checkout `WSCTL_SOURCE_DIR` names (a
/// contributor's choice); the zip this wsctl carries for `arch`; the checkout a development
/// build (which carries nothing) was built from. Errors when none is available, naming what
/// was looked for.
pub fn origin(given: Option<&Path>, arch: Architecture) -> Result<Origin> {
    if let Some(path) = given {
        return Ok(Origin::Given(Zip::from_file(path, arch)?));
    }
    if std::env::var_os("WSCTL_SOURCE_DIR").is_some() {
        return Ok(Origin::Checkout(source_dir()?));
    }
    if let Some(zip) = carried(arch) {
        return Ok(Origin::Carried(zip));
    }
    let carries: Vec<String> = [Architecture::X86_64, Architecture::Arm64]
        .into_iter()
        .filter(|a| embedded_zip(*a).is_some())
        .map(|a| a.to_string())
        .collect();
    // A release never falls back to the directory it was built in: that is another machine's.
    if !carries.is_empty() {
        crate::fail!(
            Usage,
            "this wsctl carries the handler for {} only, and the function is configured for {arch}: set [function] architecture, pass --handler-zip, or set WSCTL_SOURCE_DIR to a wsctl checkout",
            carries.join(", ")
        );
    }
    source_dir().map(Origin::Checkout)
}
