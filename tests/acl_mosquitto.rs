//! `acl check` against a real Mosquitto: random ACL files, random topics,
//! certificate-authenticated clients, and the broker's actual deliveries as
//! the judge.
//!
//! For each trial a fresh `mosquitto` runs with a random permissions.acl
//! (anonymous rules, user blocks split and repeated, `deny`, `pattern` with
//! `%u` and `%c`, `$`-topics, odd spacing and CRLF). Test clients connect with
//! device certificates (CN = username) and chosen client IDs. Then:
//!
//! - write: each client publishes (QoS 1) to every topic; an observer with
//!   full access subscribed to every topic sees which messages got through;
//! - read: the observer publishes to every topic; each client, subscribed to
//!   every topic, sees which messages reach it.
//!
//! Each phase ends with a SUBSCRIBE used as a fence: Mosquitto never checks
//! subscriptions against the ACL, and answers a SUBACK only after the
//! deliveries queued before it, so "not received before the SUBACK" means
//! "denied". The library evaluator must agree on every case, and a sample
//! of cases also goes through the `wott-mqtt acl check` binary.
//!
//! Reproduce a failure with `WOTT_ACL_SEED=<seed> cargo test --test acl_mosquitto`;
//! `WOTT_ACL_TRIALS` sets the number of trials.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use support::deliveries::{Tester, observe};
use support::mosquitto::{Broker, BrokerConfig};
use support::{Authority, DeviceIdentity, DeviceRequest, random_device_id, wott};
use wott_mqtt::acl::{Client, Document, Need, Rules};

/// SplitMix64: small, seedable, and good enough to shuffle test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    match std::env::var("WOTT_ACL_SEED") {
        Ok(s) => s.parse().expect("WOTT_ACL_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// Everything one trial needs to write an ACL and pick topics.
struct Vocabulary {
    /// Usernames that get random rules (test devices, and one that never connects).
    users: Vec<String>,
    /// Client IDs that may appear in topics (no `+` or `#`).
    client_ids: Vec<String>,
    /// The topics the trial checks; most filters are made from them.
    topics: Vec<String>,
}

impl Vocabulary {
    fn level(&self, rng: &mut Rng) -> String {
        match rng.below(100) {
            0..=19 => "a".into(),
            20..=34 => "b".into(),
            35..=44 => "c".into(),
            45..=52 => String::new(),
            53..=74 => rng.pick(&self.users).clone(),
            _ => rng.pick(&self.client_ids).clone(),
        }
    }

    fn topic(&self, rng: &mut Rng) -> String {
        loop {
            let topic = match rng.below(100) {
                0..=11 => format!("$x/{}", self.level(rng)),
                12..=13 => "$x".to_string(),
                14..=16 => "$SYS/broker/connection/a/state".to_string(),
                17..=18 => "$SYS/a".to_string(),
                _ => {
                    let n = 1 + rng.below(3);
                    (0..n)
                        .map(|_| self.level(rng))
                        .collect::<Vec<_>>()
                        .join("/")
                }
            };
            if !topic.is_empty() {
                return topic;
            }
        }
    }

    fn filter(&self, rng: &mut Rng, pattern: bool) -> String {
        // Wildcard-first patterns reach `$`-topics only through the `$` rule.
        if pattern && rng.chance(15) {
            return rng
                .pick(&["#", "+/#", "+", "+/+", "%c/#", "+/%u"])
                .to_string();
        }
        if rng.chance(70) {
            return self.derived_filter(rng, pattern);
        }
        match rng.below(100) {
            0..=5 => return "#".into(),
            6..=9 => return "+/#".into(),
            10..=14 => return format!("$x/{}", rng.pick(&["#", "+", "a", "b/#"])),
            15..=17 => {
                return rng
                    .pick(&["$SYS/#", "$SYS/broker/connection/+/state"])
                    .to_string();
            }
            _ => {}
        }
        let n = 1 + rng.below(3);
        let mut levels: Vec<String> = (0..n)
            .map(|_| match rng.below(100) {
                0..=19 => "+".into(),
                20..=34 if pattern => rng.pick(&["%c", "%u"]).to_string(),
                35..=37 => rng.pick(&["%c", "%u"]).to_string(),
                _ => self.level(rng),
            })
            .collect();
        if rng.chance(20) {
            levels.push("#".into());
        }
        let filter = levels.join("/");
        if filter.is_empty() {
            return "+".into();
        }
        filter
    }

    /// A filter made from one of the trial's topics, so that it matches
    /// something: levels turned into `+`, `%u` or `%c`, or cut off with `#`.
    fn derived_filter(&self, rng: &mut Rng, pattern: bool) -> String {
        let topic = rng.pick(&self.topics).clone();
        let mut levels: Vec<String> = topic
            .split('/')
            .enumerate()
            .map(|(i, level)| {
                let keep_dollar = i == 0 && level.starts_with('$');
                if pattern && self.users.iter().any(|u| u == level) && rng.chance(70) {
                    "%u".into()
                } else if pattern && self.client_ids.iter().any(|c| c == level) && rng.chance(70) {
                    "%c".into()
                } else if !keep_dollar && rng.chance(20) {
                    "+".into()
                } else {
                    level.to_string()
                }
            })
            .collect();
        if rng.chance(25) {
            let keep = 1 + rng.below(levels.len());
            levels.truncate(keep);
            levels.push("#".into());
        }
        let filter = levels.join("/");
        if filter.is_empty() {
            "+".into()
        } else {
            filter
        }
    }
}

fn spaces(rng: &mut Rng) -> String {
    " ".repeat(1 + rng.below(3) * usize::from(rng.chance(25)))
}

fn decorate(rng: &mut Rng, line: String) -> String {
    let lead = if rng.chance(10) { " " } else { "" };
    let trail = if rng.chance(12) {
        *rng.pick(&[" ", "\t", " \t ", "  "])
    } else {
        ""
    };
    format!("{lead}{line}{trail}")
}

fn rule_line(rng: &mut Rng, vocab: &Vocabulary, pattern: bool) -> String {
    let word = if pattern { "pattern" } else { "topic" };
    let filter = vocab.filter(rng, pattern);
    let access = match rng.below(100) {
        0..=19 => None,
        20..=44 => Some("read"),
        45..=64 => Some("write"),
        65..=77 => Some("readwrite"),
        _ => Some("deny"),
    };
    let line = match access {
        Some(access) => format!("{word}{}{access}{}{filter}", spaces(rng), spaces(rng)),
        None => format!("{word}{}{filter}", spaces(rng)),
    };
    decorate(rng, line)
}

fn filler(rng: &mut Rng) -> String {
    rng.pick(&["# a comment", "", "  ", "#topic read x", "##"])
        .to_string()
}

/// A random ACL file, with the observer's block somewhere among the users'.
fn random_acl(rng: &mut Rng, vocab: &Vocabulary, observer: &str) -> String {
    let mut lines = Vec::new();
    let section = |rng: &mut Rng, lines: &mut Vec<String>, max: usize| {
        for _ in 0..rng.below(max + 1) {
            match rng.below(100) {
                0..=14 => lines.push(filler(rng)),
                15..=29 => lines.push(rule_line(rng, vocab, true)),
                _ => lines.push(rule_line(rng, vocab, false)),
            }
        }
    };
    section(rng, &mut lines, 3);
    let mut blocks: Vec<Option<&String>> = Vec::new();
    for user in &vocab.users {
        let n = *rng.pick(&[0, 1, 1, 1, 2, 2, 3]);
        for _ in 0..n {
            blocks.push(Some(user));
        }
    }
    blocks.push(None);
    for i in (1..blocks.len()).rev() {
        blocks.swap(i, rng.below(i + 1));
    }
    for block in blocks {
        match block {
            Some(user) => {
                let line = format!("user{}{user}", spaces(rng));
                lines.push(decorate(rng, line));
                section(rng, &mut lines, 7);
            }
            None => {
                lines.push(format!("user {observer}"));
                lines.push("topic readwrite #".into());
                lines.push("topic readwrite $x/#".into());
                lines.push("topic readwrite $SYS/#".into());
            }
        }
    }
    let newline = if rng.chance(20) { "\r\n" } else { "\n" };
    let mut text = lines.join(newline);
    if rng.chance(85) {
        text.push_str(newline);
    }
    text
}

/// Lines Mosquitto refuses, to check that `acl validate` refuses the same,
/// each with what Mosquitto 2.0.11 logs when it refuses it: the proof that
/// the broker refused the file for that line, not for another reason.
const REFUSED: &[(&str, &str)] = &[
    (" # indented comment", "Error: Invalid line in acl_file"),
    ("\ttopic read a", "Error: Invalid line in acl_file"),
    ("Topic read a", "Error: Invalid line in acl_file"),
    ("topic", "Error: Empty topic in acl_file"),
    ("user", "Error: Missing username in acl_file"),
    (
        "topic foo bar",
        "Error: Invalid topic access type \"foo\" in acl_file",
    ),
    (
        "topic read a/#/b",
        "Error: Invalid ACL topic \"a/#/b\" in acl_file",
    ),
    (
        "pattern write a+",
        "Error: Invalid ACL topic \"a+\" in acl_file",
    ),
    (
        "topic read $#",
        "Error: Invalid ACL topic \"$#\" in acl_file",
    ),
    ("users x", "Error: Invalid line in acl_file"),
];

/// The reason without its line number, for the tally.
fn reason_kind(reason: wott_mqtt::acl::Reason) -> String {
    match reason {
        wott_mqtt::acl::Reason::Rule { section, .. } => format!("by a {section:?} rule"),
        other => format!("{other:?}"),
    }
}

fn numbered(acl: &str) -> String {
    acl.split('\n')
        .enumerate()
        .map(|(i, l)| format!("{:>4} | {}\n", i + 1, l.escape_debug()))
        .collect()
}

#[test]
fn acl_check_agrees_with_mosquitto_deliveries() {
    if !Broker::available() {
        return;
    }
    let seed = seed();
    let trials: usize = std::env::var("WOTT_ACL_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(12);
    eprintln!(
        "acl differential test: seed {seed} ({trials} trials); reproduce with WOTT_ACL_SEED={seed}"
    );
    let mut rng = Rng(seed);

    let ca = Authority::new("WoTT test CA").unwrap();
    let server = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()).ip_address([127, 0, 0, 1].into()))
        .unwrap();
    let observer = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap();
    let devices: Vec<DeviceIdentity> = (0..3)
        .map(|_| {
            ca.issue(&DeviceRequest::new(&random_device_id().unwrap()))
                .unwrap()
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut cases = 0;
    let mut unobservable = 0;
    let mut through_binary = 0;
    let mut refusals_checked = 0;
    let mut failures = Vec::new();
    let mut tally: HashMap<String, usize> = HashMap::new();
    for trial in 0..trials {
        let mut users: Vec<String> = devices.iter().map(|d| d.device_id.clone()).collect();
        users.push("never-connects.d.wott.local".into());
        let id_pool = ["c1", "a", "x/y", "sensor-7", "b"];
        let mut testers: Vec<Tester> = Vec::new();
        let mut used: HashSet<String> = HashSet::new();
        for _ in 0..4 {
            let identity = rng.pick(&devices);
            let client_id = loop {
                let id = match rng.below(100) {
                    0..=19 => identity.device_id.clone(),
                    20..=29 => rng.pick(&["dev+1", "b#"]).to_string(),
                    _ => rng.pick(&id_pool).to_string(),
                };
                if used.insert(id.clone()) {
                    break id;
                }
            };
            testers.push(Tester {
                identity,
                client_id,
            });
        }
        let mut vocab = Vocabulary {
            users,
            topics: Vec::new(),
            client_ids: id_pool
                .iter()
                .filter(|id| !id.contains(['+', '#']))
                .map(|s| s.to_string())
                .chain(testers.iter().map(|t| t.client_id.clone()))
                .filter(|id| !id.contains(['+', '#']))
                .collect(),
        };
        while vocab.topics.len() < 14 {
            let topic = vocab.topic(&mut rng);
            if !vocab.topics.contains(&topic) {
                vocab.topics.push(topic);
            }
        }
        let topics = vocab.topics.clone();
        let mut acl = random_acl(&mut rng, &vocab, &observer.device_id);

        // Now and then a line Mosquitto refuses: validate must refuse it too.
        if rng.chance(25) {
            let (bad, logged) = *rng.pick(REFUSED);
            let mut lines: Vec<&str> = acl.split('\n').collect();
            let at = rng.below(lines.len());
            lines.insert(at, bad);
            acl = lines.join("\n");
            // Refused for that line: the log names it and the acl_file.
            let log = match Broker::try_start(&BrokerConfig::wott(&server, &acl)) {
                Ok(_) => String::new(),
                Err(log) => log,
            };
            let refused =
                log.contains(&format!("{logged} \"")) && log.contains("permissions.acl\"");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("permissions.acl");
            std::fs::write(&path, &acl).unwrap();
            let run = wott().args(["acl", "validate", "--file"]).arg(&path).run();
            let named = run.stdout.contains(&format!(":{}: error:", at + 1));
            if !refused || run.code != 1 || !named {
                failures.push(format!(
                    "trial {trial}: line {} {bad:?}: Mosquitto {} (log: {log:?}), `acl validate` \
                     exited {}{}:\n{}{}",
                    at + 1,
                    if refused {
                        "refused the file for it"
                    } else {
                        "did not refuse it for that line"
                    },
                    run.code,
                    if named {
                        ""
                    } else {
                        " without naming the line"
                    },
                    run.stdout,
                    numbered(&acl)
                ));
            }
            refusals_checked += 1;
            continue;
        }

        let doc = Document::parse(acl.as_bytes()).unwrap();
        assert!(
            doc.first_invalid().is_none(),
            "seed {seed}: the generated ACL is invalid:\n{}",
            numbered(&acl)
        );
        let broker = Broker::start(&BrokerConfig::wott(&server, &acl));
        let observed = runtime.block_on(observe(broker.port, &observer, &testers, &topics));
        let mut trial_failures = Vec::new();
        let mut keys: Vec<_> = observed.keys().copied().collect();
        keys.sort_by_key(|&(c, t, n)| (c, t, n == Need::Write));
        for (ci, ti, need) in keys {
            let Some(actual) = observed[&(ci, ti, need)] else {
                unobservable += 1;
                continue;
            };
            cases += 1;
            let tester = &testers[ci];
            let username = tester.identity.device_id.as_bytes();
            let verdict = Rules::for_user(&doc, Some(username)).check(
                Client {
                    username: Some(username),
                    client_id: Some(tester.client_id.as_bytes()),
                },
                topics[ti].as_bytes(),
                need,
            );
            *tally
                .entry(format!(
                    "{} {}",
                    if actual { "allowed" } else { "denied" },
                    reason_kind(verdict.reason)
                ))
                .or_default() += 1;
            if verdict.allowed != actual {
                trial_failures.push(format!(
                    "  {} (client ID {:?}) {} {:?}: Mosquitto {}, wott-mqtt says {} ({:?})",
                    tester.identity.device_id,
                    tester.client_id,
                    need.word(),
                    topics[ti],
                    if actual { "allowed" } else { "denied" },
                    if verdict.allowed { "allowed" } else { "denied" },
                    verdict.reason
                ));
            }
            // A sample goes through the binary as a user would run it.
            if rng.chance(3) {
                through_binary += 1;
                let run = wott()
                    .args(["acl", "check", "--json", "--file"])
                    .arg(broker.acl_path())
                    .args([
                        tester.identity.device_id.as_str(),
                        topics[ti].as_str(),
                        "--access",
                        need.word(),
                        "--client-id",
                        tester.client_id.as_str(),
                    ])
                    .run();
                let expected = if actual { 0 } else { 1 };
                if run.code != expected || run.json()["allowed"] != actual {
                    trial_failures.push(format!(
                        "  binary: {} exited {} (expected {expected}):\n{}{}",
                        run.line, run.code, run.stdout, run.stderr
                    ));
                }
            }
        }
        if !trial_failures.is_empty() {
            let mut report = format!("trial {trial}, ACL:\n{}", numbered(&acl));
            for f in trial_failures.iter().take(15) {
                let _ = writeln!(report, "{f}");
            }
            failures.push(report);
        }
        drop(broker);
    }
    eprintln!(
        "acl differential test: {cases} cases agreed ({through_binary} through the binary), \
         {unobservable} unobservable, {refusals_checked} refused files"
    );
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort();
    for (what, n) in &tally {
        eprintln!("  {n:>5}  {what}");
    }
    let allowed: usize = tally
        .iter()
        .filter(|(w, _)| w.starts_with("allowed"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        failures.is_empty(),
        "seed {seed}: `acl check` disagrees with Mosquitto (WOTT_ACL_SEED={seed} reproduces):\n{}",
        failures.join("\n")
    );
    assert!(
        cases >= 300 || trials < 12,
        "seed {seed}: only {cases} cases were observable"
    );
    assert!(
        allowed * 10 >= cases && allowed * 10 <= cases * 9,
        "seed {seed}: {allowed} of {cases} cases allowed: the generator is lopsided"
    );
}

/// A NUL byte is not a refusal: Mosquitto starts, and ignores the line
/// that holds it and every line after it (docs/acl.md). `acl validate`
/// says exactly that, and `acl check` gives no answer (exit 11).
#[test]
fn mosquitto_ignores_the_nul_line_and_the_rest_and_the_binary_says_so() {
    if !Broker::available() {
        return;
    }
    let ca = Authority::new("WoTT test CA").unwrap();
    let issue = || {
        ca.issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap()
    };
    let server = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()).ip_address([127, 0, 0, 1].into()))
        .unwrap();
    let (observer, device) = (issue(), issue());
    let acl = format!(
        "user {}\ntopic readwrite #\nuser {}\ntopic read a\ntopic read b\0x\ntopic read c\n",
        observer.device_id, device.device_id
    );
    let broker = Broker::try_start(&BrokerConfig::wott(&server, &acl))
        .unwrap_or_else(|log| panic!("Mosquitto refused a file with a NUL byte:\n{log}"));
    let topics: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let testers = [Tester {
        identity: &device,
        client_id: "nul-reader".into(),
    }];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let observed = runtime.block_on(observe(broker.port, &observer, &testers, &topics));
    let read: Vec<Option<bool>> = (0..3).map(|t| observed[&(0, t, Need::Read)]).collect();
    assert_eq!(
        read,
        [Some(true), Some(false), Some(false)],
        "a before the NUL line, b on it, c after it:\n{}",
        broker.log()
    );

    let file = broker.acl_path();
    wott()
        .args(["acl", "validate", "--file"])
        .arg(&file)
        .run()
        .code(1)
        .stdout_has(":5: error: the line contains a NUL byte: Mosquitto starts, but silently ignores this line and every line after it [nul-byte]")
        .stdout_has(&format!(
            "✗ Mosquitto starts with {} but ignores line 5 and every line after it",
            file.display()
        ))
        .error("Mosquitto ignores it from line 5 on (a NUL byte)", "acl validate");
    let doc = wott()
        .args(["acl", "validate", "--json", "--file"])
        .arg(&file)
        .run()
        .json();
    assert_eq!(doc["ignored_from"], 5);
    assert_eq!(doc["valid"], false);
    wott()
        .args([
            "acl",
            "check",
            &device.device_id,
            "a",
            "--access",
            "read",
            "--file",
        ])
        .arg(&file)
        .run()
        .code(11)
        .error(
            &format!("{}:5: the line contains a NUL byte", file.display()),
            "acl validate",
        )
        .stderr_lacks("would refuse");
}
