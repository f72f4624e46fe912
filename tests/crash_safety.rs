//! `kill -9` at random moments while wott-mqtt rewrites a large file: a
//! 200,000-line hosts file (`hosts add` changing the address on line 2) and a
//! 60,000-line ACL (`acl allow` / `acl revoke` in the first block). Both
//! edits move every byte after them, so a write that was not atomic (say, in
//! place) and was killed halfway would leave a mix the test sees; an append
//! at the end could not tell. After every kill the file must hold
//! exactly the old content or the new one, keep its mode, and the folder may
//! hold at most the one temp file of the killed run, which the next run
//! removes under the lock.
//!
//! Each run toggles the file between two known states, A and B. The delay
//! before the kill is drawn uniformly from 0 to 1.2 times the time an
//! uninterrupted run takes for half the kills, and from 0.6 to 1.1 times it
//! for the other half, so kills land while the file is read, while the temp
//! file is written and fsynced, around the rename, and after the end.
//! `CRASH_SEED` replays a run; `CRASH_KILLS` changes the count per file.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::bin;

/// xorshift64*: enough randomness for delays, and a seed to replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..max`.
    fn below(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos().max(1) as u64;
        Duration::from_nanos(self.next() % nanos)
    }
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

/// An ad-block list with a managed line near the top: changing its address
/// to one of another length shifts every byte after it, so a write that is
/// not atomic would show up as a mix.
fn ad_block_list(lines: usize, name: &str) -> Vec<u8> {
    let mut text = format!("127.0.0.1 localhost\n10.0.0.9 {name} # wott-mqtt\n");
    for i in 0..lines - 2 {
        text.push_str(&format!("0.0.0.0 ads{i:06}.tracker{:02}.com\n", i % 97));
    }
    text.into_bytes()
}

/// A comment and 20,000 devices, three lines each: 60,000 lines, the last
/// one not blank.
fn big_acl() -> Vec<u8> {
    let mut text = String::from("# permissions.acl\n");
    for i in 0..20_000 {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!(
            "user {i:032x}.d.wott.local\ntopic read wott/{i}/#\n"
        ));
    }
    text.into_bytes()
}

fn command(args: &[String]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .env_remove("WOTT_MQTT_HOSTS_FILE")
        .env_remove("WOTT_MQTT_ACL_FILE")
        .env_remove("WOTT_MQTT_SERVER_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn run(args: &[String]) -> Duration {
    let start = Instant::now();
    let status = command(args).status().unwrap();
    assert!(status.success(), "{args:?}");
    start.elapsed()
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".wott-mqtt.") && n.ends_with(".tmp"))
        .collect()
}

#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    /// The file still held the old content.
    old: usize,
    /// The file held the new content, though the process was killed.
    new: usize,
    /// The run had finished before the kill.
    finished: usize,
    /// A killed run left its temp file (the kill landed mid-write).
    leftovers: usize,
    /// Milliseconds an uninterrupted run takes (printed with the tally).
    #[allow(dead_code)]
    run_ms: u128,
}

/// Toggles the file at `path` between `a` and `b` with `to_b` / `to_a`,
/// killing each run at a random moment, `count` times.
fn torture(
    path: &Path,
    a: &[u8],
    to_b: &[String],
    to_a: &[String],
    count: usize,
    rng: &mut Rng,
) -> Tally {
    let dir = path.parent().unwrap();
    fs::write(path, a).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o640)).unwrap();
    // The two states, and how long a run takes (the median of three each way).
    let mut times = Vec::new();
    let mut b = Vec::new();
    for _ in 0..3 {
        times.push(run(to_b));
        b = fs::read(path).unwrap();
        assert_ne!(b, a);
        times.push(run(to_a));
        assert_eq!(
            fs::read(path).unwrap(),
            a,
            "{to_a:?} does not undo {to_b:?}"
        );
    }
    times.sort();
    let typical = times[times.len() / 2];
    let window = typical.mul_f64(1.2);

    let mut tally = Tally {
        run_ms: typical.as_millis(),
        ..Tally::default()
    };
    let mut at_b = false;
    for _ in 0..count {
        let (args, old, new) = if at_b {
            (to_a, &b[..], a)
        } else {
            (to_b, a, &b[..])
        };
        let mut child = command(args).spawn().unwrap();
        // Half the kills anywhere in the run, half in its last part, where
        // the temp file is written, fsynced and renamed.
        let delay = if rng.next().is_multiple_of(2) {
            rng.below(window)
        } else {
            typical.mul_f64(0.6) + rng.below(typical.mul_f64(0.5))
        };
        thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; fails only when it has already exited
        let status = child.wait().unwrap();
        tally.kills += 1;
        let content = fs::read(path).expect("the file must always exist");
        if status.success() {
            tally.finished += 1;
            assert!(content == new, "a finished run left the old content");
        } else if content == old {
            tally.old += 1;
        } else if content == new {
            tally.new += 1;
        } else {
            panic!(
                "after a kill the file is neither the old nor the new content ({} bytes; old {}, new {})",
                content.len(),
                old.len(),
                new.len()
            );
        }
        at_b = content == b;
        assert_eq!(
            fs::metadata(path).unwrap().permissions().mode() & 0o7777,
            0o640,
            "mode lost"
        );
        let temps = temp_files(dir);
        assert!(temps.len() <= 1, "temp files pile up: {temps:?}");
        tally.leftovers += temps.len();
    }
    // A leftover temp file goes with the next run, which must not be killed.
    if temp_files(dir).is_empty() {
        let orphan = dir.join(format!(
            ".{}.wott-mqtt.999999.tmp",
            path.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&orphan, &b[..b.len() / 2]).unwrap();
    }
    run(if at_b { to_a } else { to_b });
    assert!(
        temp_files(dir).is_empty(),
        "the next run did not clean up: {:?}",
        temp_files(dir)
    );
    tally
}

#[test]
fn kill_9_at_random_moments_leaves_the_old_file_or_the_new_one() {
    let seed = seed();
    let mut rng = Rng(seed);
    let count = kills();
    let started = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let file = hosts.to_str().unwrap().to_string();
    let name = "4853b630822946019393b16c5b710b9e.d.wott.local".to_string();
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|a| a.to_string()).collect() };
    let list = ad_block_list(200_000, &name);
    assert_eq!(list.iter().filter(|&&b| b == b'\n').count(), 200_000);
    let hosts_tally = torture(
        &hosts,
        &list,
        &s(&["hosts", "add", &name, "10.100.200.9", "--hosts-file", &file]),
        &s(&["hosts", "add", &name, "10.0.0.9", "--hosts-file", &file]),
        count,
        &mut rng,
    );

    let dir = tempfile::tempdir().unwrap();
    let acl_path = dir.path().join("permissions.acl");
    let file = acl_path.to_str().unwrap().to_string();
    // A grant added to, then revoked from, the first device's block: every
    // byte after it moves.
    let first = "00000000000000000000000000000000.d.wott.local";
    let acl = big_acl();
    assert_eq!(acl.iter().filter(|&&b| b == b'\n').count(), 60_000);
    let acl_tally = torture(
        &acl_path,
        &acl,
        &s(&["acl", "allow", first, "wott/extra/#", "--file", &file]),
        &s(&["acl", "revoke", first, "wott/extra/#", "--file", &file]),
        count,
        &mut rng,
    );

    eprintln!(
        "seed {seed} (CRASH_SEED={seed} replays it), {:?} in all",
        started.elapsed()
    );
    eprintln!("hosts (200,000 lines): {hosts_tally:?}");
    eprintln!("acl (60,000 lines): {acl_tally:?}");
    for tally in [&hosts_tally, &acl_tally] {
        assert_eq!(tally.kills, count);
        // The kills must really land mid-edit, not only after the end.
        assert!(
            tally.old + tally.new > count / 10,
            "too few kills landed during a run: {tally:?}"
        );
    }
}
