//! `wsctl init`: writes a starting project file, one `up` would accept.

use std::process::ExitCode;

use super::Context;
use crate::cli::InitArgs;
use crate::config::{self, Config};
use crate::error::{Error, Result};

pub fn init(cx: &Context, args: &InitArgs) -> Result<ExitCode> {
    let path = &cx.cli.config;
    if path.exists() && !args.force {
        crate::fail!(
            Usage,
            "{} already exists (use --force to overwrite it)",
            path.display()
        );
    }
    let project = match &args.project {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(|n| {
                n.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| "my-project".into()),
    };
    let text = config::starter(&project);
    // Never write a file that `up` would then refuse.
    Config::parse(path, &text)
        .map_err(|e| Error::Usage(format!("cannot use {project:?} as the project name: {e}")))?;
    std::fs::write(path, text).map_err(Error::io(format!("cannot write {}", path.display())))?;
    println!(
        "wrote {} for project {project}; next: wsctl up --dry-run",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
