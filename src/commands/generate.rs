//! `wsctl types` (the catalogue as TypeScript) and `wsctl asyncapi` (the stack as an AsyncAPI
//! 3.0 document): files written where `--out` says, or stdout.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;

use super::{stack_url, Context};
use crate::cli::{AsyncApiArgs, TypesArgs};
use crate::error::{Error, Result};
use crate::generate::{asyncapi, typescript};

type Messages = BTreeMap<String, Value>;

/// The catalogue's directory, events and actions as written, or `None` without `[catalogue]`.
fn declared(cx: &Context) -> Result<Option<(String, Messages, Messages)>> {
    let config = cx.config()?;
    let source = |m: &BTreeMap<String, handler::catalogue::Declared>| {
        m.iter()
            .map(|(k, d)| (k.clone(), d.source.clone()))
            .collect()
    };
    Ok(config.catalogue.as_ref().map(|c| {
        (
            format!("{}/", c.dir.display()),
            source(&c.compiled.events),
            source(&c.compiled.actions),
        )
    }))
}

fn write(out: Option<&std::path::Path>, text: &str) -> Result<()> {
    match out {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(Error::io(format!("cannot create {}", dir.display())))?;
            }
            std::fs::write(path, text)
                .map_err(Error::io(format!("cannot write {}", path.display())))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

pub fn types(cx: &Context, args: &TypesArgs) -> Result<ExitCode> {
    let Some((source, events, actions)) = declared(cx)? else {
        crate::fail!(
            Usage,
            "{} has no [catalogue]: declare the event types first (see config.example.toml)",
            cx.cli.config.display()
        );
    };
    write(
        args.out.as_deref(),
        &typescript::module(&source, &events, &actions),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn asyncapi(cx: &Context, args: &AsyncApiArgs) -> Result<ExitCode> {
    let (_, events, actions) = declared(cx)?.unwrap_or_default();
    let config = cx.config()?;
    let url = stack_url(cx, args.url.as_deref()).await?;
    let description = match &args.url {
        Some(_) => "the given URL".to_owned(),
        None => format!("the {} stage of {}", config.api.stage, config.project),
    };
    let doc = asyncapi::document(
        &format!("{} WebSocket API", config.project),
        &asyncapi::Server {
            url: &url,
            description: &description,
        },
        &events,
        &actions,
    );
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    write(args.out.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
