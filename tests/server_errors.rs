//! `server up` refusals: each names the cause and the fix, and changes nothing.

#![allow(clippy::unwrap_used)]

mod support;

use support::server::Server;
use support::{docker, snapshot};

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    if !docker::available() {
        return;
    }
    let server = Server::new("dry");
    let run = server.up().arg("--dry-run").run();
    println!("{}\n{}", run.stdout, run.stderr);
    run.success();
    assert!(!server.dir().exists());
    assert_eq!(server.inspect("{{.Id}}"), None);
}

#[test]
fn an_unreachable_engine_says_what_was_tried() {
    let server = Server::new("noengine");
    let run = server.up().env("DOCKER_HOST", "tcp://127.0.0.1:1").run();
    println!("{}\n{}", run.stdout, run.stderr);
    run.code(1);
    assert!(!server.dir().exists());
    let _ = snapshot;
}
