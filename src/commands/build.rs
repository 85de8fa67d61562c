//! `wsctl build`: the handler built for Lambda from a checkout (or the one this wsctl carries,
//! or a binary built elsewhere), written as the deployable zip (with the project's catalogue, when it has one).

use std::process::ExitCode;

use super::Context;
use crate::cli::BuildArgs;
use crate::config;
use crate::error::{Error, Result};
use crate::package;

pub fn build(cx: &Context, args: &BuildArgs) -> Result<ExitCode> {
    let config = match cx.cli.config.exists() {
        true => Some(cx.config()?),
        false => None,
    };
    let arch = match (args.arch, &config) {
        (Some(a), _) => a,
        (None, Some(c)) => c.function.architecture,
        (None, None) => config::Architecture::X86_64,
    };
    let zip = match &args.binary {
        Some(binary) => package::Zip::from_binary(binary, arch, "prebuilt".into())?,
        None => match package::origin(None, arch)? {
            package::Origin::Given(zip) | package::Origin::Carried(zip) => zip,
            package::Origin::Checkout(dir) => package::build(&dir, arch, &|m| cx.progress.note(m))?,
        },
    };
    // The project's catalogue travels next to `bootstrap`, as `wsctl up` would bundle it.
    let zip = match &config {
        Some(c) => zip.for_project(c)?,
        None => zip,
    };
    std::fs::write(&args.out, zip.bytes.as_slice())
        .map_err(Error::io(format!("cannot write {}", args.out.display())))?;
    cx.print(&Built {
        path: args.out.display().to_string(),
        architecture: arch.to_string(),
        bytes: zip.bytes.len(),
        code_sha256: zip.sha256_b64.clone(),
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Built {
    path: String,
    architecture: String,
    bytes: usize,
    code_sha256: String,
}

impl std::fmt::Display for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "wrote {} ({}, {} bytes, CodeSha256 {})",
            self.path, self.architecture, self.bytes, self.code_sha256
        )
    }
}
