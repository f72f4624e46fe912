//! "The engine stops", without stopping the machine's engine (other tests
//! use it): `DOCKER_HOST` points at a Unix-socket relay to the real engine,
//! which can go silent — every connection dropped and the socket gone — on
//! a given request ([`Relay::cutting_at`]) or when told ([`Relay::cut`]),
//! and come back ([`Relay::restore`]).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The machine's engine, which the relay forwards to.
pub const ENGINE: &str = "/var/run/docker.sock";

pub struct Relay {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    /// Whether it went silent.
    pub cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<UnixStream>>>,
    cut_at: Option<&'static str>,
}

impl Relay {
    /// A relay that forwards until told otherwise.
    pub fn new() -> Relay {
        Self::start(None)
    }

    /// A relay that goes silent when a request line contains `cut_at`.
    pub fn cutting_at(cut_at: &'static str) -> Relay {
        Self::start(Some(cut_at))
    }

    fn start(cut_at: Option<&'static str>) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay {
            path: dir.path().join("engine.sock"),
            _dir: dir,
            cut: Arc::default(),
            open: Arc::default(),
            cut_at,
        };
        relay.listen();
        relay
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// The engine "stops": every connection drops, the socket is gone.
    pub fn cut(&self) {
        go_silent(&self.cut, &self.open, &self.path);
    }

    /// The engine answers again, at the same address.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.listen();
    }

    fn listen(&self) {
        let listener = UnixListener::bind(&self.path).unwrap();
        let (cut, open, path, cut_at) = (
            self.cut.clone(),
            self.open.clone(),
            self.path.clone(),
            self.cut_at,
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if cut.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { break };
                let engine = UnixStream::connect(ENGINE).unwrap();
                open.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), engine.try_clone().unwrap()]);
                forward(client, engine, cut_at, (&cut, &open, &path));
            }
        });
    }
}

impl Default for Relay {
    fn default() -> Self {
        Self::new()
    }
}

type Shared<'a> = (
    &'a Arc<AtomicBool>,
    &'a Arc<Mutex<Vec<UnixStream>>>,
    &'a PathBuf,
);

/// Copies both ways; a request line holding `cut_at` cuts the relay.
fn forward(client: UnixStream, engine: UnixStream, cut_at: Option<&'static str>, shared: Shared) {
    let (cut, open, path) = (shared.0.clone(), shared.1.clone(), shared.2.clone());
    let mut from_client = client.try_clone().unwrap();
    let mut to_engine = engine.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = from_client.read(&mut buf) {
            if n == 0 {
                break;
            }
            let first_line = buf[..n].split(|&b| b == b'\r').next().unwrap_or_default();
            if cut_at.is_some_and(|at| String::from_utf8_lossy(first_line).contains(at)) {
                go_silent(&cut, &open, &path);
                return;
            }
            if to_engine.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let (mut from_engine, mut to_client) = (engine, client);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_engine, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
}

fn go_silent(cut: &AtomicBool, open: &Mutex<Vec<UnixStream>>, path: &Path) {
    cut.store(true, Ordering::SeqCst);
    for s in open.lock().unwrap().drain(..) {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    // Wakes the accept loop, which then sees the cut and ends.
    let _ = UnixStream::connect(path);
    let _ = std::fs::remove_file(path);
}
