//! A real Mosquitto broker (Debian's `mosquitto` package) for the tests.
//!
//! Each [`Broker`] runs its own `mosquitto -c` process on a free loopback
//! port with a generated config, in its own temp dir, and is killed on drop.
//! Under `CI=true` a missing `mosquitto` binary fails the test; elsewhere the
//! test says loudly that it was skipped ([`Broker::available`]).

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::DeviceIdentity;

/// What to put in mosquitto.conf.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    /// The identity the broker serves (its cert, key) and the CA it trusts for clients.
    pub tls: Option<DeviceIdentity>,
    /// Trust this CA for client certificates instead of `tls`'s own CA.
    pub client_ca_pem: Option<String>,
    pub require_certificate: bool,
    pub use_identity_as_username: bool,
    /// Contents of the acl_file.
    pub acl: Option<String>,
    /// e.g. `tlsv1.2`; Mosquitto 2 reads it as the minimum version.
    pub tls_version: Option<String>,
    pub allow_anonymous: bool,
    /// Further lines appended to the listener's section.
    pub extra: Vec<String>,
    /// Run the broker with its clock shifted, e.g. `+10d` (needs `faketime`):
    /// how a broker with a wrong clock sees our certificates.
    pub clock_offset: Option<String>,
    /// Cap the TLS version OpenSSL offers, e.g. `TLSv1.2`, like a broker on an
    /// old OpenSSL. (Mosquitto's own `tls_version` sets only the minimum.)
    pub max_tls_version: Option<String>,
}

impl BrokerConfig {
    /// The tutorial's broker: TLS with the server's WoTT identity, client
    /// certificates required, the client's CN as its username, an ACL file.
    pub fn wott(server: &DeviceIdentity, acl: &str) -> Self {
        BrokerConfig {
            tls: Some(server.clone()),
            require_certificate: true,
            use_identity_as_username: true,
            acl: Some(acl.to_string()),
            tls_version: Some("tlsv1.2".into()),
            ..Default::default()
        }
    }

    /// Plain MQTT, anonymous, no TLS: the "wrong port" case.
    pub fn plain() -> Self {
        BrokerConfig {
            allow_anonymous: true,
            ..Default::default()
        }
    }
}

/// A running broker. Killed when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Broker {
    /// Whether `mosquitto` is installed; under CI its absence fails the test.
    /// Returns false (after saying so) when the caller should skip.
    pub fn available() -> bool {
        let found = Command::new("mosquitto")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        !super::skip_without(
            "mosquitto (apt-get install mosquitto mosquitto-clients)",
            found,
        )
    }

    /// Starts a broker with `config` and waits until its port accepts connections.
    pub fn start(config: &BrokerConfig) -> Broker {
        let mut last_error = String::new();
        for _ in 0..5 {
            match Self::try_start(config) {
                Ok(broker) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("mosquitto did not start: {last_error}");
    }

    /// One attempt at [`Broker::start`]: `Err` with the broker's log when it
    /// exits (e.g. because it refuses the ACL file) or does not open its port.
    pub fn try_start(config: &BrokerConfig) -> Result<Broker, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let conf = render(config, dir.path(), port);
        let conf_path = dir.path().join("mosquitto.conf");
        fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.path().join("stderr.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new("mosquitto");
        if let Some(offset) = &config.clock_offset {
            // libfaketime preloaded into mosquitto itself (the `faketime`
            // wrapper forks, and killing it would orphan the broker).
            command
                .env(
                    "LD_PRELOAD",
                    libfaketime().ok_or_else(|| "libfaketime is not installed".to_string())?,
                )
                .env("FAKETIME", offset);
        }
        if let Some(max) = &config.max_tls_version {
            let path = dir.path().join("openssl.cnf");
            let cnf = format!(
                "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n\
                 [ssl_sect]\nsystem_default = system_default_sect\n\
                 [system_default_sect]\nMaxProtocol = {max}\n"
            );
            fs::write(&path, cnf).map_err(|e| e.to_string())?;
            command.env("OPENSSL_CONF", path);
        }
        let mut child = command
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run mosquitto: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut text = String::new();
                let _ = fs::File::open(dir.path().join("mosquitto.log"))
                    .and_then(|mut f| f.read_to_string(&mut text));
                let _ = fs::File::open(dir.path().join("stderr.log"))
                    .and_then(|mut f| f.read_to_string(&mut text));
                return Err(format!("mosquitto exited with {status}:\n{text}"));
            }
            // Ours, not another program's on the same port: our broker says
            // it runs (after opening its listener) and the port answers.
            let running = fs::read_to_string(dir.path().join("mosquitto.log")).is_ok_and(|log| {
                log.contains(&format!("listen socket on port {port}.")) && log.contains(" running")
            });
            if running && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(Broker { child, port, dir });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("mosquitto did not open its port within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Waits until the broker's log has `needle` (e.g. `Sending SUBACK to
    /// sub-1`: that client's subscription is in place) and returns the log;
    /// panics with the log after 10 s.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the broker never logged {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn acl_path(&self) -> PathBuf {
        self.dir.path().join("permissions.acl")
    }

    /// Makes the broker re-read its ACL file and certificates (SIGHUP).
    pub fn reload(&self) {
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's `/usr/lib/<multiarch>/faketime/libfaketime.so.1`, if installed.
pub fn libfaketime() -> Option<PathBuf> {
    fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
}

/// A loopback port nobody listens on right now, for a server that will
/// bind it: the OS picks it, and this process never hands out the same port
/// twice, so parallel tests do not collide. Another program can still take
/// it in between; [`Broker::start`] then tries another one.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A loopback port that refuses connections for as long as this lives: a
/// socket bound to it that never listens (the OS picks the port, and nobody
/// else can take it meanwhile).
pub struct ClosedPort {
    _socket: socket2::Socket,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind a loopback port");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("the bound port");
        ClosedPort {
            _socket: socket,
            port,
        }
    }
}

fn render(config: &BrokerConfig, dir: &Path, port: u16) -> String {
    let mut lines = vec![
        "persistence false".to_string(),
        format!("log_dest file {}", dir.join("mosquitto.log").display()),
        "log_type all".to_string(),
    ];
    if super::is_root() {
        // Keep root, so the broker can read the test's 0700 temp dir.
        lines.push("user root".into());
    }
    lines.push(format!("listener {port} 127.0.0.1"));
    lines.push(format!("allow_anonymous {}", config.allow_anonymous));
    if let Some(tls) = &config.tls {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::write(&path, text).expect("write broker file");
            path
        };
        let ca = write(
            "ca.crt",
            config.client_ca_pem.as_deref().unwrap_or(&tls.ca_pem),
        );
        let cert = write("server.crt", &tls.cert_pem);
        let key = write("server.key", &tls.key_pem);
        lines.push(format!("cafile {}", ca.display()));
        lines.push(format!("certfile {}", cert.display()));
        lines.push(format!("keyfile {}", key.display()));
        lines.push(format!(
            "require_certificate {}",
            config.require_certificate
        ));
        lines.push(format!(
            "use_identity_as_username {}",
            config.use_identity_as_username
        ));
        if let Some(v) = &config.tls_version {
            lines.push(format!("tls_version {v}"));
        }
    }
    if let Some(acl) = &config.acl {
        let path = dir.join("permissions.acl");
        fs::write(&path, acl).expect("write acl");
        lines.push(format!("acl_file {}", path.display()));
    }
    lines.extend(config.extra.iter().cloned());
    lines.join("\n") + "\n"
}
