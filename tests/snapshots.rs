//! The JSON a CI job reads is a contract: `up --dry-run -o json` of a new stack and
//! `status -o json` of a deployed one, pinned by snapshots (insta; `cargo insta review` after
//! an intended change). Ids AWS (here moto) makes at random are replaced by placeholders.

use support::project::Project;

#[test]
fn up_dry_run_and_status_json_are_pinned() {
    let p = Project::new("snap");
    let out = p.up(&["--dry-run", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    insta::assert_json_snapshot!("up_dry_run_new_stack", out.json());

    let out = p.up(&["-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let up = out.json();
    let api = up["ids"]["api_id"].as_str().unwrap().to_owned();
    let integration = up["ids"]["integration_id"].as_str().unwrap().to_owned();

    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = out
        .stdout
        .replace(&api, "[api-id]")
        .replace(&integration, "[integration-id]");
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The test's zip wraps this machine's /bin/true: its digest is not the contract, its place is.
    insta::assert_json_snapshot!("status_deployed_stack", status, {
        ".handler.code_sha256" => "[code-sha256]",
        ".handler.source" => "[zip-tag]",
    });
}
