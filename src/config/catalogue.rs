//! `[catalogue]`: the project's declared messages, one JSON Schema file each, under the
//! directory it names (relative to the project file): `events/TYPE.json` for each
//! server-to-client event type (the schema of its `data`), `actions/ACTION.json` for each
//! client action a `[[route]]` accepts (the schema of the whole message). Loaded and compiled
//! with the project file, so a schema that does not compile, a name that is wsctl's own, an
//! action no route takes or a missing directory stops every command (exit 2, naming the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handler::catalogue::{Catalogue, CatalogueError};
use serde::Serialize;
use serde_json::Value;
use toml::Spanned;

use super::checker::Checker;
use super::raw::RawCatalogue;
use super::{ConfigError, RouteConfig};

/// `[catalogue]`, loaded and compiled.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogueConfig {
    /// The directory, as the project file names it.
    pub dir: PathBuf,
    pub open: bool,
    /// Each message's file.
    #[serde(skip)]
    pub files: BTreeMap<(String, String), PathBuf>,
    #[serde(skip)]
    pub compiled: Catalogue,
}

impl PartialEq for CatalogueConfig {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir && self.open == other.open && self.bundle() == other.bundle()
    }
}

impl CatalogueConfig {
    /// What the function gets (`catalogue.json`): deterministic bytes.
    pub fn bundle(&self) -> Vec<u8> {
        serde_json::to_vec(&self.compiled.to_json()).unwrap_or_default()
    }

    /// The file a message was declared in.
    pub fn file_of(&self, kind: &str, name: &str) -> Option<&Path> {
        self.files
            .get(&(kind.to_owned(), name.to_owned()))
            .map(PathBuf::as_path)
    }
}

/// Reads every `*.json` of `dir` (sorted): name (the file's stem) to schema.
fn read_dir(
    dir: &Path,
    kind: &str,
    files: &mut BTreeMap<(String, String), PathBuf>,
) -> Result<BTreeMap<String, Value>, ConfigError> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(ConfigError::Catalogue {
                file: dir.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let fail = |message: String| ConfigError::Catalogue {
            file: path.clone(),
            message,
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        let schema: Value = serde_json::from_str(&text).map_err(|e| {
            fail(format!(
                "line {}, column {}: not JSON: {e}",
                e.line(),
                e.column()
            ))
        })?;
        files.insert((kind.to_owned(), name.clone()), path.clone());
        out.insert(name, schema);
    }
    Ok(out)
}

pub(super) fn check_catalogue(
    c: &Checker<'_>,
    raw: Option<&Spanned<RawCatalogue>>,
    routes: &[RouteConfig],
) -> Result<Option<CatalogueConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let r = raw.get_ref();
    let dir = PathBuf::from(r.dir.as_ref().map_or("catalogue", |d| d.get_ref().as_str()));
    let base = c.path.parent().unwrap_or(Path::new("."));
    let root = base.join(&dir);
    if !root.is_dir() {
        return Err(c.invalid(
            "catalogue.dir",
            r.dir.as_ref().map_or(raw.span(), Spanned::span),
            format!(
                "{} is not a directory: it holds events/TYPE.json and actions/ACTION.json",
                root.display()
            ),
        ));
    }
    let mut files = BTreeMap::new();
    let events = read_dir(&root.join("events"), "event", &mut files)?;
    let actions = read_dir(&root.join("actions"), "action", &mut files)?;
    for name in actions.keys() {
        if !routes.iter().any(|route| &route.key == name) {
            return Err(ConfigError::Catalogue {
                file: files[&("action".to_owned(), name.clone())].clone(),
                message: format!(
                    "action {name:?} has no [[route]] with that key: an action is a message a route of yours accepts"
                ),
            });
        }
    }
    let compiled = Catalogue::compile(&events, &actions, r.open.unwrap_or(false)).map_err(|e| {
        let (kind, name) = match &e {
            CatalogueError::Schema { kind, name, .. } | CatalogueError::Name { kind, name, .. } => {
                (*kind, name.clone())
            }
            CatalogueError::Malformed(_) => ("event", String::new()),
        };
        ConfigError::Catalogue {
            file: files
                .get(&(kind.to_owned(), name))
                .cloned()
                .unwrap_or_else(|| root.clone()),
            message: e.to_string(),
        }
    })?;
    Ok(Some(CatalogueConfig {
        dir,
        open: r.open.unwrap_or(false),
        files,
        compiled,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn project(
        files: &[(&str, &str)],
        config: &str,
    ) -> (tempfile::TempDir, Result<Config, String>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let file = dir.path().join("wsctl.toml");
        std::fs::write(&file, config).unwrap();
        let loaded = Config::load(&file, None).map_err(|e| e.to_string());
        (dir, loaded)
    }

    const CONFIG: &str = "project = \"claims\"\n[catalogue]\ndir = \"catalogue\"\n";

    #[test]
    fn a_catalogue_loads_and_bad_files_are_named() {
        let (_d, c) = project(
            &[
                (
                    "catalogue/events/claim_submitted.json",
                    r#"{"type":"object","required":["claimId"]}"#,
                ),
                ("catalogue/events/claim_paid.json", "true"),
            ],
            CONFIG,
        );
        let c = c.unwrap().catalogue.unwrap();
        assert_eq!(c.compiled.events.len(), 2);
        assert!(!c.bundle().is_empty());
        for (files, want) in [
            (
                vec![("catalogue/events/pong.json", "{}")],
                "catalogue/events/pong.json: event \"pong\": is wsctl's own",
            ),
            (
                vec![("catalogue/events/x.json", "{\n  \"type\": \"text\"\n}")],
                "catalogue/events/x.json: event \"x\": /type: type is one of",
            ),
            (
                vec![("catalogue/events/x.json", "{\n  \"type\": \n}")],
                "catalogue/events/x.json: line 3, column 1: not JSON",
            ),
            (
                vec![("catalogue/actions/sendmessage.json", "{}")],
                "catalogue/actions/sendmessage.json: action \"sendmessage\" has no [[route]]",
            ),
        ] {
            let (_d, e) = project(&files, CONFIG);
            let e = e.unwrap_err();
            assert!(e.contains(want), "{e}\nwanted {want}");
        }
        let (_d, e) = project(&[], CONFIG);
        assert!(
            e.unwrap_err().contains("catalogue.dir: "),
            "a missing directory is named"
        );
    }
}
