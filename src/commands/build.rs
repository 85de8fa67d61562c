//! `wsctl build`: the handler built for Lambda (or a binary built elsewhere), written as the
//! deployable zip.

use std::process::ExitCode;

use super::Context;
use crate::cli::BuildArgs;
use crate::config;
use crate::error::{Error, Result};
use crate::package;

pub fn build(cx: &Context, args: &BuildArgs) -> Result<ExitCode> {
    let arch = match args.arch {
        Some(a) => a,
        None if cx.cli.config.exists() => cx.config()?.function.architecture,
        None => config::Architecture::X86_64,
    };
    let zip = match &args.binary {
        Some(binary) => package::Zip::from_binary(binary, arch, "prebuilt".into())?,
        None => {
            let dir = package::source_dir()?;
            package::build(&dir, arch, &|m| cx.progress.note(m))?
        }
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
