//! Records the git commit for `--version`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let commit =
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=WOTT_MQTT_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // Rebuild when HEAD moves; works in worktrees, where .git is a file.
    let dirs = [
        git(&["rev-parse", "--git-dir"]).map(|d| PathBuf::from(d).join("HEAD")),
        git(&["rev-parse", "--git-common-dir"]).map(|d| PathBuf::from(d).join("refs/heads")),
        git(&["rev-parse", "--git-common-dir"]).map(|d| PathBuf::from(d).join("packed-refs")),
    ];
    for path in dirs.into_iter().flatten().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
