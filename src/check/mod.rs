//! The staged mTLS probe behind `check`, `server up` readiness and
//! `server status`.
//!
//! Support staff run `check` first, and mosquitto_sub answers half a dozen
//! different faults with "A TLS error occurred." or "The connection was
//! lost.". So the probe takes one step at a time, times each, stops at the
//! first failure (it never reconnects), and turns that failure into a
//! [`CheckError`] that names the cause and the fix:
//!
//! 1. **identity**: `client.crt`, `client.key`, `ca.crt` load, match, are
//!    valid now (before any network);
//! 2. **resolve**: which address the server name gives (or `--connect-to`);
//! 3. **tcp**;
//! 4. **tls**: protocol, cipher, and the server's certificate, recorded
//!    even when it fails verification ([`crate::tls`]);
//! 5. **connect**: CONNECT → CONNACK;
//! 6. **subscribe**: SUBSCRIBE → SUBACK;
//! 7. **message**: any message (`--wait`), or our own probe coming back
//!    (`--roundtrip`).
//!
//! # Library API
//!
//! [`probe`] runs stages 2 to 7 (up to [`Plan::until`]) with an already
//! loaded [`Identity`]; [`check`] adds stage 1 from a [`CertDir`]. Both are
//! async and return a [`Report`]: per-stage results, the addresses, the TLS
//! session, the server certificate as seen on the wire
//! ([`CertInfo`]), and the [`CheckError`] the probe ended with, if any.
//! `server up` waits for readiness, and `server status` reads the
//! certificate the broker serves, with `Until::Connect`:
//!
//! ```ignore
//! # async fn f(identity: &wott_mqtt::identity::Identity) {
//! use std::time::Duration;
//! use wott_mqtt::check::{probe, Host, Plan, Target, Until};
//! let target = Target {
//!     server: Host::parse("4853b630822946019393b16c5b710b9e.d.wott.local").unwrap(),
//!     port: 8883,
//!     connect_to: Some([127, 0, 0, 1].into()),
//!     hosts_file: None,
//! };
//! let report = probe(identity, &target, &Plan::new(Until::Connect, Duration::from_secs(5))).await;
//! if let Some(error) = report.failure() { /* error.stage(), error.to_string(), hint */ }
//! let served = report.server_certificate.as_ref().map(|c| c.not_after);
//! # }
//! ```
//!
//! With TLS 1.3 the broker checks our certificate after the handshake has
//! completed on our side, so a handshake proves only the server's half; the
//! broker's verdict arrives with the first read. The probe therefore reads
//! CONNACK before it declares the TLS stage passed, and a TLS alert at that
//! point is a TLS failure (exit 6), not an MQTT one.
//!
//! The MQTT side uses rumqttc's packet codec over the stream we dial (see
//! `mqtt.rs` for why not its event loop). For `--connect-to`, the socket goes
//! to the given IP while TLS verifies (and sends as SNI) the server ID, like
//! curl `--resolve`.

mod classify;
mod error;
mod exchange;
mod handshake;
mod mqtt;
mod plan;
mod report;
mod resolve;
mod tcp;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::client::TlsStream;
use tokio::time::{Instant, timeout, timeout_at};

pub use error::{ACL_SUBSCRIBE_NOTE, CheckError, OurCa, SeenCert, Via};
pub use plan::{Expect, Host, Plan, Stage, Subscription, Target, Until};
pub use report::{
    HostsFileFinding, MessageReport, Report, Resolution, StageReport, SubscriptionReport,
    TlsSession,
};

use crate::identity::{CertDir, Identity, Timestamp, Validity};
use crate::output::human_duration;
use crate::tls::{self, PeerRecord, TlsOptions};
use mqtt::{Session, SessionError, Transport};
use plan::random_hex;
use report::millis;

/// Stages 1 to 7: loads the identity from `dir` (exit 3 before any network
/// when it is unusable), then [`probe`]s.
pub async fn check(dir: &CertDir, target: &Target, plan: &Plan) -> Report {
    let mut report = Report::new(target);
    let started = Instant::now();
    let loaded = Identity::load(dir)
        .map_err(CheckError::from)
        .and_then(|identity| {
            let (config, record) =
                tls::client_config(identity.credentials(), &TlsOptions::default())?;
            Ok((identity, config, record))
        });
    let (identity, config, record) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            let detail = format!("cert dir {}", dir.path().display());
            report.failure = Some(report.fail(started, detail, e));
            return report;
        }
    };
    report.pass(Stage::Identity, started, identity_detail(&identity));
    report.warnings = identity.warnings.clone();
    run(&mut report, &identity, config, record, target, plan).await;
    report
}

/// Stages 2 to 7 with an identity already loaded. A client configuration
/// that cannot be built from it is reported as a failed identity stage.
pub async fn probe(identity: &Identity, target: &Target, plan: &Plan) -> Report {
    let mut report = Report::new(target);
    let started = Instant::now();
    match tls::client_config(identity.credentials(), &TlsOptions::default()) {
        Ok((config, record)) => run(&mut report, identity, config, record, target, plan).await,
        Err(e) => {
            let detail = format!("cert dir {}", identity.dir.path().display());
            report.failure = Some(report.fail(started, detail, e.into()));
        }
    }
    report
}

async fn run(
    report: &mut Report,
    identity: &Identity,
    config: Arc<rustls::ClientConfig>,
    record: PeerRecord,
    target: &Target,
    plan: &Plan,
) {
    report.device_id = Some(identity.device_id().to_string());
    let mut probe = Probe {
        report,
        identity,
        target,
        plan,
        deadline: Instant::now() + plan.timeout,
    };
    if let Err(e) = probe.run(config, record).await {
        probe.report.failure = Some(e);
    }
}

fn identity_detail(identity: &Identity) -> String {
    let info = &identity.cert.info;
    let validity = match info.validity_at(Timestamp::now()) {
        Validity::Valid { seconds_left } => format!("{} left", human_duration(seconds_left)),
        other => format!("{other:?}"),
    };
    let ca = identity
        .ca
        .signer_of(&identity.cert)
        .map_or_else(String::new, |ca| format!(", CA {}", ca.subject));
    format!("{} ({validity}){ca}", identity.device_id())
}

/// One run: the report being filled, and the deadline for all of it.
struct Probe<'a> {
    report: &'a mut Report,
    identity: &'a Identity,
    target: &'a Target,
    plan: &'a Plan,
    deadline: Instant,
}

type Tls = TlsStream<Transport>;

impl Probe<'_> {
    /// Fails `stage` with a timeout error once the whole probe's deadline passes.
    async fn bounded<T>(
        &self,
        stage: Stage,
        step: impl Future<Output = Result<T, CheckError>>,
    ) -> Result<T, CheckError> {
        match timeout_at(self.deadline, step).await {
            Ok(result) => result,
            Err(_) => Err(CheckError::Timeout {
                stage,
                limit: self.plan.timeout,
            }),
        }
    }

    async fn run(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        record: PeerRecord,
    ) -> Result<(), CheckError> {
        let (addresses, via) = self.resolve().await?;
        let (tcp, addr) = self.tcp(&addresses).await?;
        let (tls, tls_started) = self.tls(config, &record, tcp, addr, via).await?;
        // The TLS stage is only recorded as passed once the broker has
        // answered: with TLS 1.3 it judges our certificate after the handshake.
        let tls_detail = self.tls_summary(&tls);
        let tls_elapsed = tls_started.elapsed();
        let mut session = Session::new(tls);
        self.connect(&mut session, tls_started, tls_elapsed, tls_detail)
            .await?;
        let result = self.mqtt(&mut session).await;
        let _ = timeout(Duration::from_millis(200), session.close()).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::plan::random_client_id;
    use super::tcp::connect_reason;
    use super::*;

    #[test]
    fn hosts_are_addresses_or_dns_names() {
        assert_eq!(
            Host::parse("127.0.0.1").unwrap().ip(),
            Some([127, 0, 0, 1].into())
        );
        assert!(Host::parse("::1").unwrap().ip().is_some());
        let id = "4853b630822946019393b16c5b710b9e.d.wott.local";
        assert_eq!(Host::parse(id).unwrap().to_string(), id);
        assert!(Host::parse("bad name").is_err());
        assert!(Host::parse("evil\nhost").is_err());
    }

    #[test]
    fn client_ids_fit_mqtt_311_and_differ() {
        let a = random_client_id();
        assert_eq!(a.len(), 23, "{a}");
        assert_ne!(a, random_client_id());
    }

    #[test]
    fn stages_run_in_order() {
        assert!(Stage::Identity < Stage::Resolve && Stage::Resolve < Stage::Tcp);
        assert!(Stage::Tls < Stage::Connect && Stage::Subscribe < Stage::Message);
    }

    #[test]
    fn reasons_lose_the_os_noise() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(connect_reason(&e), "connection refused");
    }
}
