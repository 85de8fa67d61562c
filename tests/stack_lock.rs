//! The stack lock in DynamoDB: two `up` runs that cannot share a machine lock (each with its
//! own temporary directory, standing for two machines) make one stack; a holder killed mid-`up`
//! is waited for, named, given up on at `--lock-timeout`, removed by `wsctl unlock --force`,
//! and taken over once its lease runs out; a refused lock write stops `up` before it changes
//! anything. The real binary against moto, through the test proxy.

use support::project;

use std::process::{Output, Stdio};

use project::Project;

async fn api_count(p: &Project, project: &str) -> usize {
    let apigw = aws_sdk_apigatewayv2::Client::new(&p.sdk().await);
    let out = apigw.get_apis().max_results("100").send().await.unwrap();
    out.items()
        .iter()
        .filter(|a| a.name() == Some(format!("{project}-websocket").as_str()))
        .count()
}

async fn lock_table_exists(p: &Project, project: &str) -> bool {
    let dynamo = aws_sdk_dynamodb::Client::new(&p.sdk().await);
    let tables = dynamo.list_tables().send().await.unwrap();
    tables
        .table_names()
        .iter()
        .any(|t| *t == format!("{project}_wsctl_lock"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ups_on_two_machines_at_once_make_one_stack() {
    let p = Project::new("pair");
    let machines = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut waited = 0;
    for round in 0..5 {
        let project = format!("pair{round}");
        p.write_config(&format!("project = \"{project}\"\n"));
        let spawn = |machine: &tempfile::TempDir| {
            p.command(&["up", "--handler-zip", "handler.zip", "--yes"])
                .env("TMPDIR", machine.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(&machines[0]), spawn(&machines[1]));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "round {round}: {}", text(&a));
        assert!(b.status.success(), "round {round}: {}", text(&b));
        assert_eq!(
            api_count(&p, &project).await,
            1,
            "round {round}: one API\n{}\n{}",
            text(&a),
            text(&b)
        );
        let lock_waits = [&a, &b]
            .iter()
            .filter(|o| text(o).contains("waiting for the stack lock held by"))
            .count();
        assert!(lock_waits <= 1, "both waited: {}\n{}", text(&a), text(&b));
        waited += lock_waits;
        // Each machine's lock was its own: neither waited on a lock file.
        assert!(
            !text(&a).contains("waiting for another wsctl")
                && !text(&b).contains("waiting for another wsctl"),
            "the runs shared a machine lock"
        );
    }
    // The runs did overlap, so the lock in DynamoDB, not luck, kept them apart.
    assert!(waited > 0, "no run ever waited for the other's lock");
}

/// Starts `up` with a lease of `lease` seconds and SIGKILLs it after its lock's writes (the
/// lock table, the lock) and one write to the stack; returns its pid.
fn up_killed_holding_the_lock(p: &Project, lease: &str) -> u32 {
    let mut child = p
        .command(&["up", "--handler-zip", "handler.zip", "--yes"])
        .env("WSCTL_LOCK_LEASE", lease)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    p.proxy.kill_after_writes(pid, 3);
    let status = child.wait().unwrap();
    assert!(p.proxy.killed(), "up was not killed: {status}");
    p.proxy.kill_after_writes(0, usize::MAX);
    pid
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_is_named_given_up_on_unlocked_and_taken_over() {
    let p = Project::new("heldlock");
    p.write_config("project = \"heldlock\"\n");

    // A holder killed with a long lease: the next run gives up at its --lock-timeout and
    // names the holder.
    let first = up_killed_holding_the_lock(&p, "300");
    let out = p.wsctl(&[
        "up",
        "--handler-zip",
        "handler.zip",
        "--yes",
        "--lock-timeout",
        "1s",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!("pid {first}")) && out.stderr.contains("--lock-timeout"),
        "the holder is named: {out:?}"
    );
    assert!(
        out.stderr.contains("waiting for the stack lock held by"),
        "{out:?}"
    );

    // unlock shows it and, its lease still running, removes it only with --force.
    let out = p.wsctl(&["unlock"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!("pid {first}")) && out.stdout.contains("--force"),
        "{out:?}"
    );
    let out = p.wsctl(&["unlock", "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("removed the lock held by")
            && out.stdout.contains(&format!("pid {first}")),
        "{out:?}"
    );
    let out = p.wsctl(&["unlock"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("no lock is held"), "{out:?}");

    // A holder killed with a short lease: the next run waits for it, then converges.
    let second = up_killed_holding_the_lock(&p, "2");
    let out = p.up(&["--yes"]);
    assert!(
        out.stderr
            .contains("waiting for the stack lock held by `wsctl up`")
            && out.stderr.contains(&format!("pid {second}")),
        "{out:?}"
    );
    assert_eq!(api_count(&p, "heldlock").await, 1);
    let status = p.wsctl(&["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    // The lock was released: the next run takes it at once and writes nothing to the stack.
    p.proxy.clear();
    let again = p.up(&["--yes", "--lock-timeout", "1s"]);
    assert!(
        p.proxy.writes().is_empty(),
        "{:?}\n{again:?}",
        p.proxy.writes()
    );

    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !lock_table_exists(&p, "heldlock").await,
        "down removes the lock's table"
    );
    assert_eq!(api_count(&p, "heldlock").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_lock_write_stops_up_before_it_changes_anything() {
    let p = Project::new("lockfault");
    p.write_config("project = \"lockfault\"\n");
    p.proxy.fail("PutItem", 1);
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("lockfault_wsctl_lock"),
        "the lock's table is named: {out:?}"
    );
    assert!(p.proxy.writes().is_empty(), "{:?}", p.proxy.writes());
    // The fault passed, the next run converges; status and a dry run take no lock.
    p.up(&["--yes"]);
    p.proxy.clear();
    assert_eq!(p.wsctl(&["status"]).code, 0);
    assert_eq!(
        p.wsctl(&["up", "--dry-run", "--handler-zip", "handler.zip"])
            .code,
        0
    );
    assert!(
        p.proxy.calls().iter().all(|c| !c.on_lock_table()),
        "status and --dry-run touched the lock: {:?}",
        p.proxy
            .calls()
            .iter()
            .filter(|c| c.on_lock_table())
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    );
}
