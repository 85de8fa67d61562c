//! `wsctl env`: the frontend's URL variable written into a dotenv file.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct EnvWritten {
    pub file: PathBuf,
    pub name: String,
    pub value: String,
    pub replaced: bool,
}

impl fmt::Display for EnvWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}={} in {}",
            if self.replaced { "updated" } else { "added" },
            self.name,
            self.value,
            self.file.display()
        )
    }
}

/// Sets `name=value` in a dotenv file, replacing only that variable's line (also an
/// `export name=` line) and keeping everything else byte for byte.
pub fn write_env(file: &Path, name: &str, value: &str) -> Result<EnvWritten> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(format!("cannot read {}", file.display()))(e)),
    };
    let is_ours = |line: &str| {
        let l = line.trim_start();
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        l.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut replaced = false;
    let mut out = String::with_capacity(text.len() + name.len() + value.len() + 2);
    for line in text.split_inclusive('\n') {
        if !replaced && is_ours(line) {
            let ending = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            let export = if line.trim_start().starts_with("export ") {
                "export "
            } else {
                ""
            };
            out.push_str(&format!("{export}{name}={value}{ending}"));
            replaced = true;
        } else if replaced && is_ours(line) {
            // A duplicate definition would shadow ours; drop it.
        } else {
            out.push_str(line);
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{name}={value}\n"));
    }
    std::fs::write(file, out).map_err(Error::io(format!("cannot write {}", file.display())))?;
    Ok(EnvWritten {
        file: file.to_path_buf(),
        name: name.to_owned(),
        value: value.to_owned(),
        replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_only_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".env.production");
        std::fs::write(
            &f,
            "# comment\nVITE_API=https://api\nVITE_SOCKET_URL=wss://old/prod\nOTHER=1",
        )
        .unwrap();
        let w = write_env(&f, "VITE_SOCKET_URL", "wss://new/prod").unwrap();
        assert!(w.replaced);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "# comment\nVITE_API=https://api\nVITE_SOCKET_URL=wss://new/prod\nOTHER=1"
        );
        let w = write_env(&f, "NEXT_PUBLIC_WS", "wss://x").unwrap();
        assert!(!w.replaced);
        assert!(std::fs::read_to_string(&f)
            .unwrap()
            .ends_with("OTHER=1\nNEXT_PUBLIC_WS=wss://x\n"));
    }
}
