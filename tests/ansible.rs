//! The Ansible role (`ansible/`) run by the real `ansible-playbook` against
//! a broker in a real container and four clients, all on this machine with
//! local connections, each client with its own identity, hosts file and
//! certificate folder:
//!
//! 1. `ansible-lint` passes on `ansible/`;
//! 2. the first run changes every host, and every client's `check` passes;
//! 3. a second run changes nothing (`changed=0` on every host, the ACL not
//!    rewritten);
//! 4. a fourth client: `--check --diff` reports it (and only it) as a change
//!    and changes no file;
//! 5. the real run grants it, with one reload: its round trip delivers.
//!
//! ansible-core and ansible-lint come from PyPI, pinned, in a virtualenv
//! (`.ci/run` makes it); `WOTT_MQTT_ANSIBLE` names its `bin` folder, else
//! `target/ansible-venv/bin` is used when it exists.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::mosquitto::free_port;
use support::server::{ContainerGuard, unique_name};
use support::{Authority, DeviceRequest, docker, random_device_id, skip_without, snapshot, wott};

/// The virtualenv's `bin` folder with ansible-playbook and ansible-lint.
fn ansible_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("WOTT_MQTT_ANSIBLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible-venv/bin"));
    let found = dir.join("ansible-playbook").is_file() && dir.join("ansible-lint").is_file();
    let what = format!(
        "ansible-core and ansible-lint in {} (set WOTT_MQTT_ANSIBLE, or run .ci/run)",
        dir.display()
    );
    (!skip_without(&what, found)).then_some(dir)
}

struct Device {
    id: String,
    certs: PathBuf,
    hosts: PathBuf,
}

/// The inventory's hosts, their files, and how to run the playbook.
struct Fleet {
    root: tempfile::TempDir,
    ansible: PathBuf,
    ca: Authority,
    server: Device,
    clients: Vec<Device>,
    port: u16,
    name: String,
    image: String,
}

/// A host's line of the play recap: ok, changed, failed, …
type Recap = HashMap<String, HashMap<String, u32>>;

struct Play {
    output: String,
    recap: Recap,
}

impl Fleet {
    fn new(ansible: PathBuf, clients: usize) -> Fleet {
        let root = tempfile::tempdir().unwrap();
        let ca = Authority::new("WoTT test CA").unwrap();
        let server = device(&ca, &root.path().join("server"));
        let mut fleet = Fleet {
            ansible,
            ca,
            server,
            clients: Vec::new(),
            port: free_port(),
            name: unique_name("ansible"),
            image: docker::test_image(),
            root,
        };
        for _ in 0..clients {
            fleet.add_client();
        }
        fleet
    }

    fn add_client(&mut self) {
        let dir = self
            .root
            .path()
            .join(format!("client{}", self.clients.len() + 1));
        let client = device(&self.ca, &dir);
        self.clients.push(client);
        self.write_inventory();
    }

    fn server_dir(&self) -> PathBuf {
        self.root.path().join("server/dir")
    }

    fn acl(&self) -> PathBuf {
        self.server_dir().join("permissions.acl")
    }

    /// Local connections without become; each host its own files.
    fn write_inventory(&self) {
        let mut clients = String::new();
        for (i, c) in self.clients.iter().enumerate() {
            clients.push_str(&format!(
                "        client{}:\n          wott_mqtt_cert_dir: {}\n          wott_mqtt_hosts_file: {}\n",
                i + 1,
                c.certs.display(),
                c.hosts.display()
            ));
        }
        let inventory = format!(
            "all:\n  vars:\n    ansible_connection: local\n    ansible_become: false\n    \
             ansible_python_interpreter: {python}\n    wott_mqtt_bin: {bin}\n    \
             wott_mqtt_server_ip: 127.0.0.1\n    wott_mqtt_port: {port}\n  children:\n    \
             mqtt_server:\n      hosts:\n        broker:\n          wott_mqtt_cert_dir: {certs}\n          \
             wott_mqtt_server_dir: {dir}\n          wott_mqtt_image: {image}\n          \
             wott_mqtt_bind: 127.0.0.1\n          wott_mqtt_name: {name}\n    mqtt_clients:\n      hosts:\n{clients}",
            python = self.ansible.join("python3").display(),
            bin = support::bin().display(),
            port = self.port,
            certs = self.server.certs.display(),
            dir = self.server_dir().display(),
            image = self.image,
            name = self.name,
        );
        fs::write(self.root.path().join("inventory.yml"), inventory).unwrap();
    }

    /// A tool of the virtualenv, in the fleet's folder, with a clean environment.
    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.ansible.join(name));
        for var in support::ENV_VARS {
            command.env_remove(var);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.ansible.clone()];
        paths.extend(std::env::split_paths(&path));
        let tmp = self.root.path().join("ansible-tmp");
        command
            .current_dir(self.root.path())
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", &tmp)
            .env("ANSIBLE_REMOTE_TEMP", &tmp)
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0");
        command
    }

    fn playbook(&self, extra: &[&str]) -> Play {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/site.yml");
        let out = self
            .tool("ansible-playbook")
            .arg("-i")
            .arg(self.root.path().join("inventory.yml"))
            .arg(&site)
            .args(extra)
            .output()
            .unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "ansible-playbook {extra:?} failed:\n{output}"
        );
        let recap = recap(&output);
        Play { output, recap }
    }

    /// Every file the play may touch, with its bytes; not the broker's own
    /// log, which every connection (the clients' checks) adds to.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let log = self.server_dir().join("log");
        let mut files = snapshot(&self.root.path().join("server"));
        files.retain(|(path, _)| !path.starts_with(&log));
        for c in &self.clients {
            files.extend(snapshot(c.certs.parent().unwrap()));
        }
        files
    }

    /// `check --roundtrip` as a client: a delivered message proves its grant
    /// is in force in the running broker.
    fn roundtrip(&self, client: &Device) {
        wott()
            .cert_dir(&client.certs)
            .args(["check", "--roundtrip", "--server", &self.server.id])
            .args([
                "--port",
                &self.port.to_string(),
                "--connect-to",
                "127.0.0.1",
            ])
            .run()
            .success()
            .stdout_has("our probe came back");
    }
}

/// A device of the CA in `dir`: `certs/` and a hosts file.
fn device(ca: &Authority, dir: &Path) -> Device {
    let id = random_device_id().unwrap();
    let certs = dir.join("certs");
    ca.issue(&DeviceRequest::new(&id))
        .unwrap()
        .write_to(&certs)
        .unwrap();
    let hosts = dir.join("hosts");
    fs::write(&hosts, "127.0.0.1\tlocalhost\n").unwrap();
    Device { id, certs, hosts }
}

/// The `PLAY RECAP` lines: `host : ok=7 changed=1 …`.
fn recap(output: &str) -> Recap {
    let tail = output.rsplit("PLAY RECAP").next().unwrap_or_default();
    tail.lines()
        .filter_map(|line| {
            let (host, counts) = line.split_once(" : ")?;
            let counts = counts
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0)))
                .collect();
            Some((host.trim().to_string(), counts))
        })
        .collect()
}

/// The hosts a task's section of the output reports with `status`
/// (`ok`, `changed`, `skipping`, …).
fn reported(output: &str, task: &str, status: &str) -> Vec<String> {
    let section = output
        .split("TASK [")
        .find(|s| s.starts_with(&format!("wott_mqtt : {task}")))
        .unwrap_or_else(|| panic!("no task {task:?} in:\n{output}"));
    let prefix = format!("{status}: [");
    let mut hosts: Vec<String> = section
        .lines()
        .filter_map(|l| {
            l.strip_prefix(&prefix)?
                .split(']')
                .next()
                .map(str::to_string)
        })
        .collect();
    hosts.sort();
    hosts
}

/// The paths whose bytes differ (or that appeared or vanished) between two snapshots.
#[track_caller]
fn assert_same_files(before: &[(PathBuf, Vec<u8>)], after: &[(PathBuf, Vec<u8>)], what: &str) {
    let mut differ: Vec<String> = Vec::new();
    for (path, bytes) in before {
        match after.iter().find(|(p, _)| p == path) {
            Some((_, now)) if now == bytes => {}
            Some((_, now)) => differ.push(format!(
                "{} changed:\n--- before\n{}\n--- after\n{}",
                path.display(),
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(now)
            )),
            None => differ.push(format!("{} vanished", path.display())),
        }
    }
    for (path, _) in after {
        if !before.iter().any(|(p, _)| p == path) {
            differ.push(format!("{} appeared", path.display()));
        }
    }
    assert!(differ.is_empty(), "{what}:\n{}", differ.join("\n"));
}

#[track_caller]
fn assert_changed(play: &Play, expected: &[(&str, u32)]) {
    assert_eq!(play.recap.len(), expected.len(), "{}", play.output);
    for (host, changed) in expected {
        let counts = &play.recap[*host];
        assert_eq!(counts["failed"], 0, "{host}:\n{}", play.output);
        assert_eq!(
            counts["changed"], *changed,
            "{host} changed:\n{}",
            play.output
        );
    }
}

#[test]
fn the_role_provisions_a_fleet_idempotently_and_in_check_mode() {
    let Some(ansible) = ansible_bin() else { return };
    if !docker::available() {
        return;
    }
    let lint = Command::new(ansible.join("ansible-lint"))
        .args(["--offline", "--nocolor", "ansible/"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                ansible.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "ansible-lint failed:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let mut fleet = Fleet::new(ansible, 3);
    let _container = ContainerGuard(fleet.name.clone());

    // 1. Everything is new: every host changes, every client's check passes.
    let first = fleet.playbook(&[]);
    assert_changed(
        &first,
        &[
            ("broker", 2),
            ("client1", 1),
            ("client2", 1),
            ("client3", 1),
        ],
    );
    assert_eq!(
        reported(&first.output, "Check the connection to the broker", "ok"),
        ["client1", "client2", "client3"]
    );
    let acl = fs::read_to_string(fleet.acl()).unwrap();
    for c in &fleet.clients {
        assert!(
            acl.contains(&format!(
                "user {}\ntopic readwrite wott/temperature\n",
                c.id
            )),
            "{acl}"
        );
        let hosts = fs::read_to_string(&c.hosts).unwrap();
        assert_eq!(
            hosts,
            format!(
                "127.0.0.1\tlocalhost\n127.0.0.1 {} # wott-mqtt\n",
                fleet.server.id
            )
        );
    }
    fleet.roundtrip(&fleet.clients[0]);

    // 2. Nothing to do: changed=0 everywhere, no file rewritten; also with
    // wott_mqtt_any_id, which adds --any-id to every call.
    let before = fleet.files();
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(fleet.acl()).unwrap());
    let second = fleet.playbook(&["-e", "wott_mqtt_any_id=true"]);
    assert_changed(
        &second,
        &[
            ("broker", 0),
            ("client1", 0),
            ("client2", 0),
            ("client3", 0),
        ],
    );
    assert_same_files(&before, &fleet.files(), "the second run changed a file");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(fleet.acl()).unwrap()),
        inode
    );

    // 3. A fourth client, in check mode: reported, nothing written.
    fleet.add_client();
    let before = fleet.files();
    let check = fleet.playbook(&["--check", "--diff"]);
    let all = [
        ("broker", 1),
        ("client1", 0),
        ("client2", 0),
        ("client3", 0),
        ("client4", 1),
    ];
    assert_changed(&check, &all);
    let new = &fleet.clients[3].id;
    assert!(
        check.output.contains(&format!("\"+user {new}\",")),
        "{}",
        check.output
    );
    assert!(
        check
            .output
            .contains(&format!("\"+127.0.0.1 {} # wott-mqtt\"", fleet.server.id))
    );
    assert_eq!(
        reported(
            &check.output,
            "Grant every client, in one write (a dry run in check mode)",
            "changed"
        ),
        ["broker"]
    );
    assert_same_files(&before, &fleet.files(), "check mode changed a file");

    // 4. For real: the fourth client is granted, and its grant is in force.
    let last = fleet.playbook(&[]);
    assert_changed(&last, &all);
    let acl = fs::read_to_string(fleet.acl()).unwrap();
    assert!(
        acl.ends_with(&format!(
            "\n\nuser {new}\ntopic readwrite wott/temperature\n"
        )),
        "{acl}"
    );
    fleet.roundtrip(&fleet.clients[3]);
}
