//! 64 `wott-mqtt` processes editing the same hosts file, and 64 the same
//! ACL file, all at once, with mixed adds and removes: the final file must be
//! the one the same operations give when run one after the other, and a
//! reader watching the file meanwhile must never see a torn or partial one.
//!
//! Every operation touches its own name, so they commute except for one
//! thing: the order in which new names are appended. The test reads that
//! order from the final file, replays the same operations serially in that
//! order on a copy of the original (through the binary again), and compares
//! the bytes. A lost update would drop a name; a torn write would break a
//! line or the count of untouched ones.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use support::bin;

/// Operations of each kind per file: 16 + 16 + 32 = 64 processes.
const REMOVES: usize = 16;
const UPDATES: usize = 16;
const ADDS: usize = 32;
/// Untouched lines around the edited ones, so that each edit takes a while.
const FILLER: usize = 20_000;

/// A WoTT-shaped ID: the kind's bytes in hex, then the number.
fn name(kind: &str, i: usize) -> String {
    let hex: String = kind.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0>30}{i:02}.d.wott.local")
}

/// One command line, as the binary takes it.
type Op = Vec<String>;

struct Workload {
    original: String,
    ops: Vec<Op>,
    /// Names whose position in the result depends on the order of the runs.
    appended: Vec<String>,
    /// Lines some state of the file may hold; anything else is torn.
    possible_lines: HashSet<String>,
    /// Lines every state of the file holds.
    filler: usize,
}

fn hosts_workload(path: &Path) -> Workload {
    let mut original = String::from("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost\n");
    let mut possible = HashSet::new();
    for i in 0..FILLER {
        original.push_str(&format!("0.0.0.0 ads{i:06}.example.com\n"));
        if i % 1000 == 500 {
            let k = i / 1000;
            if k < REMOVES {
                original.push_str(&format!("10.0.1.{k} {} # wott-mqtt\n", name("rm", k)));
            }
            if k < UPDATES {
                original.push_str(&format!("10.0.2.{k} {} # wott-mqtt\n", name("up", k)));
                possible.insert(format!("10.0.3.{k} {} # wott-mqtt", name("up", k)));
            }
        }
    }
    possible.extend(original.lines().map(str::to_string));
    let file = path.to_str().unwrap().to_string();
    let mut ops = Vec::new();
    for k in 0..REMOVES {
        ops.push(vec![
            "hosts".into(),
            "remove".into(),
            name("rm", k),
            "--hosts-file".into(),
            file.clone(),
        ]);
    }
    for k in 0..UPDATES {
        ops.push(vec![
            "hosts".into(),
            "add".into(),
            name("up", k),
            format!("10.0.3.{k}"),
            "--hosts-file".into(),
            file.clone(),
        ]);
    }
    let mut appended = Vec::new();
    for k in 0..ADDS {
        ops.push(vec![
            "hosts".into(),
            "add".into(),
            name("new", k),
            format!("10.0.4.{k}"),
            "--hosts-file".into(),
            file.clone(),
        ]);
        possible.insert(format!("10.0.4.{k} {} # wott-mqtt", name("new", k)));
        appended.push(name("new", k));
    }
    Workload {
        original,
        ops,
        appended,
        possible_lines: possible,
        filler: FILLER,
    }
}

fn acl_workload(path: &Path) -> Workload {
    let mut original = String::from("# permissions.acl\ntopic read $SYS/broker/load/#\n\n");
    let mut possible = HashSet::new();
    for i in 0..FILLER / 2 {
        original.push_str(&format!(
            "user {i:032x}.d.wott.local\ntopic read wott/{i}/#\n\n"
        ));
        if i % 500 == 250 {
            let k = i / 500;
            if k < REMOVES {
                original.push_str(&format!(
                    "user {}\ntopic readwrite wott/rm/#\n\n",
                    name("rv", k)
                ));
            }
            if k < UPDATES {
                original.push_str(&format!("user {}\ntopic read gr/#\n\n", name("gr", k)));
                possible.insert(format!("topic write extra/{k}"));
            }
        }
    }
    possible.extend(original.lines().map(str::to_string));
    possible.insert("topic readwrite wott/#".into());
    let file = path.to_str().unwrap().to_string();
    let mut ops = Vec::new();
    for k in 0..REMOVES {
        ops.push(vec![
            "acl".into(),
            "revoke".into(),
            name("rv", k),
            "--file".into(),
            file.clone(),
        ]);
    }
    for k in 0..UPDATES {
        ops.push(vec![
            "acl".into(),
            "allow".into(),
            name("gr", k),
            format!("extra/{k}"),
            "--access".into(),
            "write".into(),
            "--file".into(),
            file.clone(),
        ]);
    }
    let mut appended = Vec::new();
    for k in 0..ADDS {
        ops.push(vec![
            "acl".into(),
            "allow".into(),
            name("nw", k),
            "wott/#".into(),
            "--file".into(),
            file.clone(),
        ]);
        possible.insert(format!("user {}", name("nw", k)));
        appended.push(name("nw", k));
    }
    Workload {
        original,
        ops,
        appended,
        possible_lines: possible,
        filler: FILLER / 2,
    }
}

fn spawn(op: &Op) -> Child {
    Command::new(bin())
        .args(op)
        .env_remove("WOTT_MQTT_HOSTS_FILE")
        .env_remove("WOTT_MQTT_ACL_FILE")
        .env_remove("WOTT_MQTT_SERVER_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(op: &Op) {
    let out = spawn(op).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{op:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Problems with one state of the file as a reader sees it.
fn torn(text: &[u8], w: &Workload, filler_prefix: &str) -> Option<String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Some("not UTF-8".into());
    };
    if !text.ends_with('\n') {
        return Some("does not end with a newline".into());
    }
    let mut filler = 0;
    for line in text.lines() {
        if !line.is_empty() && !w.possible_lines.contains(line) {
            return Some(format!("unexpected line {line:?}"));
        }
        filler += usize::from(line.starts_with(filler_prefix));
    }
    (filler != w.filler).then(|| format!("{filler} filler lines instead of {}", w.filler))
}

/// The appended names in the order the final file has them.
fn appended_order(text: &str, w: &Workload) -> Vec<String> {
    let mut order = Vec::new();
    for line in text.lines() {
        for name in &w.appended {
            if line.split_whitespace().any(|word| word == name) && !order.contains(name) {
                order.push(name.clone());
            }
        }
    }
    order
}

struct Outcome {
    reads: usize,
    elapsed: std::time::Duration,
}

/// Runs every operation at once on `path`, replays them serially on
/// `serial`, and compares.
fn hammer(path: &Path, serial: &Path, w: &Workload, filler_prefix: &'static str) -> Outcome {
    fs::write(path, &w.original).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, path) = (done.clone(), path.to_path_buf());
        let w = Workload {
            original: String::new(),
            ops: Vec::new(),
            appended: Vec::new(),
            possible_lines: w.possible_lines.clone(),
            filler: w.filler,
        };
        thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let bytes = fs::read(&path).expect("the file is always there");
                if let Some(problem) = torn(&bytes, &w, filler_prefix) {
                    panic!("a reader saw a torn file: {problem}");
                }
                reads += 1;
            }
            reads
        })
    };
    let start = Instant::now();
    let children: Vec<(Op, Child)> = w.ops.iter().map(|op| (op.clone(), spawn(op))).collect();
    for (op, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{op:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let reads = watcher.join().expect("watcher");

    let result = fs::read_to_string(path).unwrap();
    let order = appended_order(&result, w);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, w.appended, "lost or duplicated appends");

    // The same operations, one after the other, appends in the order observed.
    fs::write(serial, &w.original).unwrap();
    let here = path.to_str().unwrap();
    let there = serial.to_str().unwrap();
    let retarget = |op: &Op| -> Op {
        op.iter()
            .map(|a| {
                if a == here {
                    there.to_string()
                } else {
                    a.clone()
                }
            })
            .collect()
    };
    for op in &w.ops {
        if !w.appended.iter().any(|n| op.contains(n)) {
            run(&retarget(op));
        }
    }
    for name in &order {
        let op = w.ops.iter().find(|op| op.contains(name)).unwrap();
        run(&retarget(op));
    }
    let expected = fs::read_to_string(serial).unwrap();
    assert!(
        result == expected,
        "concurrent result differs from the serial one"
    );
    let leftovers: Vec<PathBuf> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".wott-mqtt."))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    Outcome { reads, elapsed }
}

#[test]
fn sixty_four_processes_per_file_lose_nothing_and_tear_nothing() {
    let hosts_dir = tempfile::tempdir().unwrap();
    let acl_dir = tempfile::tempdir().unwrap();
    let serial_dir = tempfile::tempdir().unwrap();
    let hosts = hosts_dir.path().join("hosts");
    let acl = acl_dir.path().join("permissions.acl");
    let hosts_work = hosts_workload(&hosts);
    let acl_work = acl_workload(&acl);
    assert_eq!(hosts_work.ops.len(), 64);
    assert_eq!(acl_work.ops.len(), 64);

    // Both files at once: 128 processes.
    let (serial_hosts, serial_acl) = (
        serial_dir.path().join("hosts"),
        serial_dir.path().join("permissions.acl"),
    );
    let hosts_thread = thread::spawn(move || {
        let outcome = hammer(&hosts, &serial_hosts, &hosts_work, "0.0.0.0 ads");
        (outcome, hosts_dir)
    });
    let acl_outcome = hammer(&acl, &serial_acl, &acl_work, "topic read wott/");
    let (hosts_outcome, _keep) = hosts_thread.join().expect("hosts run");
    eprintln!(
        "hosts: 64 processes in {:?}, {} consistent reads; acl: 64 processes in {:?}, {} consistent reads",
        hosts_outcome.elapsed, hosts_outcome.reads, acl_outcome.elapsed, acl_outcome.reads
    );
    assert!(hosts_outcome.reads > 0 && acl_outcome.reads > 0);
}
