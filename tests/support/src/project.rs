//! A wsctl project in a temporary directory, with moto behind a recording proxy, and a way
//! to run the real `wsctl` binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::proxy::Proxy;
use crate::Moto;

/// An IAM policy document as IAM returns it (URL-encoded JSON), parsed.
pub fn decode_policy(doc: &str) -> serde_json::Value {
    let decoded = percent_encoding::percent_decode_str(doc)
        .decode_utf8_lossy()
        .into_owned();
    serde_json::from_str(&decoded).unwrap()
}

/// A policy's statements (`Statement` may be one object or a list of them).
pub fn statements(policy: &serde_json::Value) -> Vec<serde_json::Value> {
    match &policy["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// A policy element that is one string or a list of strings (`Action`, `Resource`).
pub fn string_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
        other => panic!("not a string or list: {other}"),
    }
}

/// Runs `wsctl up --dry-run` in a fresh directory whose `wsctl.toml` is `text` (no AWS is
/// reachable) and asserts that the file is refused as a config error: exit 2, its name in the
/// message. Returns stderr, for the key and message to be checked.
pub fn refused_config(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wsctl.toml"), text).unwrap();
    let out = Command::new(crate::wsctl_bin())
        .args(["up", "--dry-run"])
        .current_dir(dir.path())
        .env("AWS_REGION", "us-east-1")
        .env_remove("WSCTL_ENV")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
    assert!(stderr.contains("wsctl.toml"), "{text}\n{stderr}");
    stderr
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub struct Project {
    pub dir: tempfile::TempDir,
    pub moto: Moto,
    pub proxy: Proxy,
    pub zip: PathBuf,
}

impl Project {
    /// A project named `name` with moto (IAM managed policies loaded) behind a proxy, and a
    /// deployable zip at `handler.zip` (any x86_64 ELF will do: moto does not run it).
    pub fn new(name: &str) -> Project {
        let moto = Moto::start(true);
        let proxy = Proxy::start(&moto.url());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("wsctl.toml"),
            format!("project = \"{name}\"\n"),
        )
        .unwrap();
        let zip = dir.path().join("handler.zip");
        let p = Project {
            dir,
            moto,
            proxy,
            zip,
        };
        let out = p.wsctl(&["build", "--binary", "/bin/true", "--out", "handler.zip"]);
        assert_eq!(out.code, 0, "{out:?}");
        p.proxy.clear();
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.path().join("wsctl.toml"), text).unwrap();
    }

    /// Runs wsctl in the project directory against the proxy.
    pub fn wsctl(&self, args: &[&str]) -> Out {
        self.wsctl_env(args, &[])
    }

    /// The wsctl command for `args`, in the project directory, against the proxy, with only
    /// the test's credentials in its environment; not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::wsctl_bin());
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("AWS_ENDPOINT_URL", &self.proxy.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // A run killed by a test leaves its stack lock behind; the next run takes it over
            // once its lease (2 s here, 30 s by default) has run out.
            .env("WSCTL_LOCK_LEASE", "2")
            .stdin(Stdio::null());
        cmd
    }

    pub fn wsctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run wsctl");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `wsctl up` plus `extra` (with `--handler-zip handler.zip` unless `extra` names a zip),
    /// asserting success.
    pub fn up(&self, extra: &[&str]) -> Out {
        let mut args = vec!["up"];
        if !extra.contains(&"--handler-zip") {
            args.extend(["--handler-zip", "handler.zip"]);
        }
        args.extend_from_slice(extra);
        let out = self.wsctl(&args);
        assert_eq!(out.code, 0, "{out:?}");
        out
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        self.moto.sdk_config().await
    }
}

impl Project {
    /// Runs the runbook's Steps 1, 3 and 4 (benches/runbook-steps.sh, with the aws CLI) for
    /// project `name` straight against moto; returns the API id they created.
    pub fn run_runbook(&self, name: &str) -> String {
        let out = Command::new("bash")
            .arg(crate::workspace_root().join("benches/runbook-steps.sh"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    crate::venv_bin().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("PROJECT_NAME", name)
            .env("AWS_ACCOUNT_ID", "123456789012")
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runbook steps failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
