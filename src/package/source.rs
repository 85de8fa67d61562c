//! Building the bundled `handler` crate from a checkout for Lambda (release, glibc 2.34 with
//! cargo-zigbuild), reproducibly, and reusing a zip already built from the same source.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::zip::{sha256_hex, Zip};
use crate::config::Architecture;
use crate::error::{Error, Result};

/// The checkout that holds the `handler` crate: `WSCTL_SOURCE_DIR`, else the directory this
/// wsctl was built from (a `cargo install --path` or a checkout).
pub fn source_dir() -> Result<PathBuf> {
    let candidates = std::env::var_os("WSCTL_SOURCE_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(PathBuf::from(env!("CARGO_MANIFEST_DIR"))));
    for dir in candidates {
        if dir.join("handler/Cargo.toml").is_file() {
            return Ok(dir);
        }
    }
    Err(Error::Usage(format!(
        "the handler source is not available (looked in WSCTL_SOURCE_DIR and {}): pass --handler-zip, or set WSCTL_SOURCE_DIR to a wsctl checkout",
        env!("CARGO_MANIFEST_DIR")
    )))
}

/// A fingerprint of everything the handler build reads: its sources, the lock file, the
/// workspace manifest (release profile), and the target architecture.
pub fn fingerprint(dir: &Path, arch: Architecture) -> Result<String> {
    let mut files = vec![
        dir.join("Cargo.toml"),
        dir.join("Cargo.lock"),
        dir.join("handler/Cargo.toml"),
    ];
    collect(&dir.join("handler/src"), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"wsctl-handler-build-v2\0");
    hasher.update(arch.as_lambda().as_bytes());
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        match std::fs::read(f) {
            Ok(bytes) => hasher.update(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => hasher.update(b"(missing)"),
            Err(e) => return Err(Error::io(format!("reading {}", f.display()))(e)),
        }
        hasher.update(b"\0");
    }
    Ok(format!("src-{}", &sha256_hex(&hasher.finalize())[..16]))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let reading = || Error::io(format!("reading {}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(reading())? {
        let path = entry.map_err(reading())?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("wsctl")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn installed_targets() -> Vec<String> {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The flags that make the build the same bytes in any checkout on any machine (with the same
/// rustc and zig): the checkout's and cargo's home paths, which panic locations would embed,
/// are rewritten to fixed ones (the standard library's already are). The user's own RUSTFLAGS
/// and CFLAGS come first.
fn reproducible_flags(dir: &Path, var: &str, flag: &str) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut flags: Vec<String> = std::env::var(var)
        .ok()
        .into_iter()
        .flat_map(|f| f.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    flags.push(format!("{flag}={}=/wsctl", dir.display()));
    if let Some(home) = cargo_home {
        flags.push(format!("{flag}={}=/cargo", home.display()));
    }
    flags.join(" ")
}

/// Builds the handler for `arch` (release), or reuses the zip already built from the same
/// source. `progress` receives one-line notes.
pub fn build(dir: &Path, arch: Architecture, progress: &dyn Fn(String)) -> Result<Zip> {
    let fp = fingerprint(dir, arch)?;
    let cached = cache_dir().join(format!("handler-{fp}-{arch}.zip"));
    if let Ok(bytes) = std::fs::read(&cached) {
        progress(format!(
            "reusing {} (built from the same source)",
            cached.display()
        ));
        return Ok(Zip::new(bytes, fp));
    }
    let triple = arch.rust_target();
    let host_is_x86 = cfg!(target_arch = "x86_64") && cfg!(target_os = "linux");
    let zig = on_path("cargo-zigbuild");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    if zig {
        // Pins glibc 2.34 (Amazon Linux 2023) whatever the host has.
        cmd.args(["zigbuild", "--target", &format!("{triple}.2.34")]);
    } else if arch == Architecture::X86_64 && host_is_x86 {
        cmd.args(["build", "--target", triple]);
    } else {
        let mut missing =
            vec!["cargo-zigbuild and zig (pip install ziglang cargo-zigbuild)".to_owned()];
        if !installed_targets().iter().any(|t| t == triple) {
            missing.push(format!("the Rust target (rustup target add {triple})"));
        }
        crate::fail!(
            Build,
            "cannot build the handler for {arch} on this machine: it needs {}. Or build elsewhere and pass --handler-zip",
            missing.join(" and ")
        );
    }
    cmd.args([
        "--release",
        "-p",
        "wsctl-handler",
        "--bin",
        "bootstrap",
        "--locked",
    ])
    .current_dir(dir)
    .env(
        "RUSTFLAGS",
        reproducible_flags(dir, "RUSTFLAGS", "--remap-path-prefix"),
    )
    // C code the crates build (aws-lc) embeds its paths through __FILE__.
    .env(
        "CFLAGS",
        reproducible_flags(dir, "CFLAGS", "-ffile-prefix-map"),
    )
    .stdout(std::process::Stdio::inherit())
    .stderr(std::process::Stdio::inherit());
    progress(format!(
        "building the handler for {arch} (cargo {})",
        if zig { "zigbuild" } else { "build" }
    ));
    let status = cmd
        .status()
        .map_err(Error::io("cannot run cargo to build the handler"))?;
    if !status.success() {
        crate::fail!(
            Build,
            "building the handler failed ({status}); see cargo's output above"
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let binary = target_dir.join(triple).join("release/bootstrap");
    let zip = Zip::from_binary(&binary, arch, fp)?;
    if let Err(e) = std::fs::create_dir_all(cache_dir())
        .and_then(|_| std::fs::write(&cached, zip.bytes.as_slice()))
    {
        progress(format!(
            "could not cache the zip at {}: {e}",
            cached.display()
        ));
    }
    Ok(zip)
}
