//! The deployable zip: a `bootstrap` binary (checked for Lambda's architecture and glibc) and
//! the project's catalogue, packaged deterministically (mode 0755, fixed timestamp: the same
//! binary always gives the same CodeSha256).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::{Architecture, Config};
use crate::error::{Error, Result};
use handler::glibc;

/// Where the function's code comes from.
#[derive(Debug, Clone)]
pub enum CodeSpec {
    /// A zip in hand (`--handler-zip`, or just built).
    Zip(Zip),
    /// The bundled handler's source, identified by its fingerprint: built only when the
    /// deployed code was built from other source.
    Source { fingerprint: String },
    /// Whatever is deployed (`status` compares configuration, not code).
    Deployed,
}

/// A deployable zip.
#[derive(Clone)]
pub struct Zip {
    pub bytes: Arc<Vec<u8>>,
    /// Base64 of the SHA-256, as Lambda reports `CodeSha256`.
    pub sha256_b64: String,
    /// What the code was built from, recorded on the function as a tag.
    pub source_tag: String,
}

impl std::fmt::Debug for Zip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zip")
            .field("len", &self.bytes.len())
            .field("sha256_b64", &self.sha256_b64)
            .field("source_tag", &self.source_tag)
            .finish()
    }
}

pub fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Zips a `bootstrap` binary deterministically.
pub fn zip_bootstrap(binary: &[u8]) -> Result<Vec<u8>> {
    zip_code(binary, None)
}

/// What a bundled catalogue adds to a zip's source tag.
pub fn catalogue_tag(catalogue: &[u8]) -> String {
    format!("catalogue-{}", &sha256_hex(catalogue)[..12])
}

/// Zips `bootstrap` and, when given, the catalogue as `catalogue.json`, deterministically.
fn zip_code(binary: &[u8], catalogue: Option<&[u8]>) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| Error::Build(format!("zipping the handler: {e}"));
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .unix_permissions(0o755)
            .last_modified_time(zip::DateTime::default());
        zip.start_file("bootstrap", options)
            .map_err(|e| failed(&e))?;
        zip.write_all(binary).map_err(|e| failed(&e))?;
        if let Some(catalogue) = catalogue {
            zip.start_file(handler::catalogue::BUNDLED, options.unix_permissions(0o644))
                .map_err(|e| failed(&e))?;
            zip.write_all(catalogue).map_err(|e| failed(&e))?;
        }
        zip.finish().map_err(|e| failed(&e))?;
    }
    Ok(out.into_inner())
}

impl Zip {
    pub fn new(bytes: Vec<u8>, source_tag: String) -> Zip {
        Zip {
            sha256_b64: sha256_b64(&bytes),
            bytes: Arc::new(bytes),
            source_tag,
        }
    }

    /// A zip given with `--handler-zip`: it must hold an executable `bootstrap`. A zip that
    /// is not one is a usage error, naming the file.
    pub fn from_file(path: &Path, arch: Architecture) -> Result<Zip> {
        let usage = |m: String| Error::Usage(format!("--handler-zip {}: {m}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| usage(format!("cannot read it: {e}")))?;
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
            .map_err(|e| usage(format!("not a zip file ({e})")))?;
        let mut entry = archive.by_name("bootstrap").map_err(|_| {
            usage("has no `bootstrap` entry at its root: provided.al2023 runs ./bootstrap".into())
        })?;
        if entry.unix_mode().is_some_and(|m| m & 0o111 == 0) {
            return Err(usage(
                "`bootstrap` is not executable (zip it with mode 0755)".into(),
            ));
        }
        let mut binary = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut binary)
            .map_err(|e| usage(format!("reading `bootstrap`: {e}")))?;
        drop(entry);
        check_binary(&binary, arch).map_err(|e| usage(e.to_string()))?;
        let tag = format!("zip-{}", &sha256_hex(&bytes)[..16]);
        Ok(Zip::new(bytes, tag))
    }

    /// The same code with the project's catalogue bundled next to `bootstrap`; its source tag
    /// says which catalogue.
    fn with_catalogue(&self, catalogue: &[u8]) -> Result<Zip> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(self.bytes.as_slice()))
            .map_err(|e| Error::Build(format!("reading the handler's zip: {e}")))?;
        let mut entry = archive
            .by_name("bootstrap")
            .map_err(|e| Error::Build(format!("the handler's zip: {e}")))?;
        let mut binary = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut binary)
            .map_err(|e| Error::Build(format!("the handler's zip: {e}")))?;
        Ok(Zip::new(
            zip_code(&binary, Some(catalogue))?,
            format!("{}+{}", self.source_tag, catalogue_tag(catalogue)),
        ))
    }

    /// The zip a project deploys: this code, with the project's catalogue when it has one.
    pub fn for_project(self, config: &Config) -> Result<Zip> {
        match &config.catalogue {
            Some(c) => self.with_catalogue(&c.bundle()),
            None => Ok(self),
        }
    }

    /// Packages a binary built elsewhere.
    pub fn from_binary(path: &Path, arch: Architecture, source_tag: String) -> Result<Zip> {
        let binary =
            std::fs::read(path).map_err(Error::io(format!("cannot read {}", path.display())))?;
        check_binary(&binary, arch)
            .map_err(|e| Error::Build(format!("{}: {e}", path.display())))?;
        Ok(Zip::new(zip_bootstrap(&binary)?, source_tag))
    }
}

/// Refuses a binary Lambda cannot run: wrong architecture, or glibc newer than AL2023's.
pub fn check_binary(binary: &[u8], arch: Architecture) -> Result<()> {
    use object::Object;
    let not_elf = |_| Error::Build("the handler is not an executable (ELF) file".into());
    let file = object::File::parse(binary).map_err(not_elf)?;
    let machine = match file.architecture() {
        object::Architecture::X86_64 => Architecture::X86_64,
        object::Architecture::Aarch64 => Architecture::Arm64,
        other => crate::fail!(
            Build,
            "the handler is built for {other:?}; Lambda runs x86_64 or arm64"
        ),
    };
    if machine != arch {
        crate::fail!(
            Build,
            "the handler is built for {machine} but the function is configured for {arch}"
        );
    }
    if let Some((major, minor)) = glibc::newest_glibc(binary).map_err(not_elf)? {
        let (max_major, max_minor) = glibc::AL2023_GLIBC;
        if (major, minor) > glibc::AL2023_GLIBC {
            crate::fail!(
                Build,
                "the handler needs GLIBC_{major}.{minor} but Lambda's provided.al2023 has glibc {max_major}.{max_minor}, so it would fail at start. \
                 Install cargo-zigbuild (pip install ziglang cargo-zigbuild) and wsctl builds against glibc {max_major}.{max_minor}; \
                 or build on an older system and pass --handler-zip"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_are_deterministic() {
        let a = zip_bootstrap(b"\x7fELF pretend binary").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = zip_bootstrap(b"\x7fELF pretend binary").unwrap();
        assert_eq!(a, b);
        assert_eq!(sha256_b64(&a), sha256_b64(&b));
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&a)).unwrap();
        let entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
    }
}
