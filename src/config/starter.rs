//! The starting project file that `wsctl init` writes, and a test that it (and the rules it
//! shows, uncommented) parses.

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

# Sign-in, and who may hear which topic (see config.example.toml). With sign-in on and no
# topic rules, clients may subscribe to nothing; your backend can still subscribe them.
# [auth]
# secret_parameter = "/{project}/ws-jwt-secret"
#
# [topics]
# subscribe = ["news", "user:{{sub}}", "org:{{claims.org_id}}:*"]
"#
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    /// The starter parses, and so does its commented-out sign-in and topic rules, uncommented.
    #[test]
    fn the_starter_and_its_commented_rules_parse() {
        let text = super::starter("shop");
        let c = Config::parse(Path::new("wsctl.toml"), &text).unwrap();
        assert_eq!((c.project.as_str(), c.topics), ("shop", None));
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(kv) if kv.starts_with('[') || kv.contains(" = ") => kv,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse(Path::new("wsctl.toml"), &uncommented).unwrap();
        assert_eq!(
            c.topics.unwrap().subscribe,
            ["news", "user:{sub}", "org:{claims.org_id}:*"]
        );
        assert!(c.auth.is_some());
    }
}
