//! The starting project file that `wsctl init` writes.

/// The starting `wsctl.toml` that `wsctl init` writes.
pub fn starter(project: &str) -> String {
    format!(
        r#"# wsctl project file. Every key is documented, with its default, in config.example.toml.
project = "{project}"

[aws]
# region = "us-east-1"     # default: AWS_REGION / your profile's region

[function]
architecture = "x86_64"    # or "arm64"
memory_mb = 256
timeout_seconds = 30

[api]
stage = "prod"
"#
    )
}
