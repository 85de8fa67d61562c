//! The release a pip user installs: `scripts/release.sh` makes the x86_64 artifacts (here with
//! a debug CLI, carrying the same release handler zip a release carries), the wheel goes into
//! a fresh virtualenv, and there, with no cargo or rustc on the PATH and outside any checkout,
//! the installed `wsctl` deploys the handler it carries to the emulator (the function's
//! CodeSha256 is the carried zip's), `status` says so, and `wsctl dev` passes `wsctl smoke`.
//! The archive and the install script are checked against the release's SHA256SUMS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use support::{workspace_root, Moto};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command with only what a pip user's shell has: the venv's and the system's binaries,
/// a home of its own, no Rust and no wsctl checkout.
fn bare(program: &Path, home: &Path, moto: Option<&Moto>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", program.parent().unwrap().display()),
        )
        .env("HOME", home)
        .current_dir(home)
        .stdin(Stdio::null());
    for (k, v) in moto.map(Moto::env).unwrap_or_default() {
        cmd.env(k, v);
    }
    cmd
}

fn find(dir: &Path, suffix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one *{suffix} in {}: {found:?}",
        dir.display()
    );
    found.remove(0)
}

#[test]
fn the_wheel_deploys_the_handler_it_carries_with_no_rust_toolchain() {
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let status = Command::new(root.join("scripts/release.sh"))
        .env("TARGETS", "x86_64")
        .env("WSCTL_RELEASE_PROFILE", "dev")
        .env("DIST", &dist)
        .env("WSCTL_HOST_BIN", support::wsctl_bin())
        .stdout(Stdio::null())
        .status()
        .expect("scripts/release.sh runs");
    assert!(status.success(), "scripts/release.sh failed: {status}");

    // What the release holds, each file in SHA256SUMS and matching it.
    let zip = std::fs::read(dist.join("handler-x86_64.zip")).unwrap();
    let wheel = find(&dist, "manylinux_2_34_x86_64.whl");
    let archive = find(&dist, "-x86_64-unknown-linux-gnu.tar.gz");
    assert!(dist.join("install.sh").is_file());
    run(Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&dist));
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let archive = archive.file_name().unwrap().to_string_lossy().into_owned();
    for name in ["handler-x86_64.zip", "install.sh", archive.as_str()] {
        assert!(sums.contains(&format!(" {name}\n")), "{name} in {sums}");
    }
    let hex: String = Sha256::digest(&zip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let code_sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));

    // A fresh virtualenv, the wheel installed from the file alone.
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let venv = tmp.path().join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(&wheel));
    let wsctl = venv.join("bin/wsctl");
    let which = bare(Path::new("/bin/sh"), &home, None)
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        )
        .args(["-c", "command -v cargo rustc rustup cargo-zigbuild || true"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&which.stdout),
        "",
        "the pip user's PATH must reach no Rust tool"
    );
    let version = run(bare(&wsctl, &home, None).arg("--version"));
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains(&format!("handler x86_64: sha256 {hex}")),
        "--version names the carried handler: {version}"
    );

    // The install script installs the archive's wsctl from the release directory.
    let bin = tmp.path().join("bin");
    run(bare(Path::new("/bin/sh"), &home, None)
        .arg(dist.join("install.sh"))
        .env("WSCTL_DOWNLOAD_URL", format!("file://{}", dist.display()))
        .env("WSCTL_INSTALL_DIR", &bin));
    let installed = run(bare(&bin.join("wsctl"), &home, None).arg("--version"));
    assert_eq!(String::from_utf8_lossy(&installed.stdout), version);

    // `up` with nothing to build from: the carried zip is what the function runs.
    let moto = Moto::start(true);
    std::fs::write(home.join("wsctl.toml"), "project = \"pipuser\"\n").unwrap();
    let up = run(bare(&wsctl, &home, Some(&moto)).args(["up", "--yes"]));
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(said.contains("carries"), "up says which handler: {said}");
    let status = run(bare(&wsctl, &home, Some(&moto)).args(["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(
        status["handler"]["code_sha256"],
        code_sha256.as_str(),
        "{status}"
    );
    assert_eq!(status["handler"]["runs_carried"], true, "{status}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deployed = rt.block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
        lambda
            .get_function()
            .function_name("pipuser-websocket-handler")
            .send()
            .await
            .unwrap()
            .configuration
            .and_then(|c| c.code_sha256)
    });
    assert_eq!(deployed.as_deref(), Some(code_sha256.as_str()));

    // An architecture this release does not carry is refused before any AWS call: a release
    // never builds from the directory it was built in (another machine's).
    let arm = home.join("arm");
    std::fs::create_dir(&arm).unwrap();
    std::fs::write(
        arm.join("wsctl.toml"),
        "project = \"armuser\"\n[function]\narchitecture = \"arm64\"\n",
    )
    .unwrap();
    let refused = bare(&wsctl, &home, Some(&moto))
        .current_dir(&arm)
        .args(["up", "--yes"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(
        said.contains("carries the handler for x86_64 only") && said.contains("--handler-zip"),
        "{said}"
    );
    let roles = rt.block_on(async {
        let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
        iam.list_roles().send().await.unwrap().roles
    });
    assert!(
        !roles.iter().any(|r| r.role_name.starts_with("armuser")),
        "nothing of the refused stack is created"
    );

    // `wsctl dev` and `wsctl smoke` from the same install.
    let mut dev = bare(&wsctl, &home, None)
        .args(["dev", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = BufReader::new(dev.stdout.take().unwrap())
        .lines()
        .next()
        .expect("dev prints its URL")
        .unwrap();
    let smoke = bare(&wsctl, &home, None)
        .args(["smoke", "--url", &url, "-o", "json"])
        .output()
        .unwrap();
    let _ = dev.kill();
    let _ = dev.wait();
    assert!(smoke.status.success(), "{smoke:?}");
    let smoke: serde_json::Value = serde_json::from_slice(&smoke.stdout).unwrap();
    assert_eq!(smoke["ok"], true, "{smoke}");
}
