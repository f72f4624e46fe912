//! The one way a test skips: when a prerequisite (root, a Docker engine,
//! `mosquitto`, mount namespaces, …) is missing.
//!
//! Under `CI=true` a missing prerequisite fails the test: CI installs them
//! all, so a skip there would hide a test that never ran. Elsewhere the test
//! returns early, and says so where a person sees it: a `SKIPPED:` line
//! written straight to stderr (the test runner's capture does not hide it)
//! and a line appended to the skip log, which `.ci/run` counts and prints at
//! the end of the run. The log is `$WOTT_MQTT_SKIP_LOG`, else
//! `test-skips.log` in the cargo target directory.
//!
//! This file is self-contained so that unit tests in `src/` can include it
//! too (`#[path = "../../tests/support/skip.rs"] mod skip;`).

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// True under CI=true: a missing prerequisite must fail the run there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `true` when the caller should return early because `prerequisite` is
/// not `available`; under CI a missing prerequisite panics instead.
///
/// ```ignore
/// if skip_without("root (to run the binary as nobody)", is_root()) {
///     return;
/// }
/// ```
#[track_caller]
pub fn skip_without(prerequisite: &str, available: bool) -> bool {
    if available {
        return false;
    }
    if in_ci() {
        panic!("{prerequisite} is required under CI=true but is not available");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed test")
        .to_string();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|n| n.to_string_lossy().into_owned()))
        .map(|name| match name.rsplit_once('-') {
            // `acl-0123abcd…`: the test target, without cargo's hash.
            Some((target, _)) => target.to_string(),
            None => name,
        })
        .unwrap_or_default();
    let line = format!("SKIPPED: {binary} {test}: needs {prerequisite}\n");
    // Straight to the process's stderr: `eprintln!` would be captured.
    let _ = std::io::stderr().write_all(line.as_bytes());
    record(&line);
    true
}

/// Appends `line` to the skip log, in one write so that parallel tests
/// never interleave.
fn record(line: &str) {
    let Some(path) = log_path() else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// `$WOTT_MQTT_SKIP_LOG`, else `test-skips.log` in the target directory
/// (the folder above the test binary that holds cargo's `CACHEDIR.TAG`).
pub fn log_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WOTT_MQTT_SKIP_LOG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|target| target.join("test-skips.log"))
}
