//! `whoami`: which device is this, and is its identity healthy?

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Config;
use crate::cli::WhoamiArgs;
use crate::diagnose::Diagnose;
use crate::error::Error;
use crate::identity::{self, CertInfo, Inspection, Timestamp, Validity, Warning};
use crate::output::{Human, Outcome, Paint, human_duration, sanitize, sanitize_field};

pub fn run(config: &Config, args: &WhoamiArgs) -> Result<Outcome, Error> {
    let out = &config.output;
    if !args.long && !out.is_json() {
        // Exactly what `wott-agent whoami` does: read client.crt, print the CN.
        let cert = identity::device_id(&config.cert_dir)?;
        let now = Timestamp::now();
        for warning in identity::certificate_warnings(&cert, &config.cert_dir.key_path(), now) {
            out.warn(&sanitize(&warning.message));
        }
        return Ok(Outcome::report(DeviceIdLine(cert.device_id().to_string())));
    }

    let inspection = Inspection::load(&config.cert_dir)?;
    for warning in &inspection.warnings {
        out.warn(&sanitize(&warning.message));
    }
    let problem = inspection.problems().into_iter().next();
    let report = WhoamiReport::new(&inspection);
    Ok(match problem {
        Some(problem) => Outcome::report(report).with_error(problem),
        None => Outcome::report(report),
    })
}

/// Plain `whoami`: the ID and a newline, nothing else.
#[derive(Debug, Serialize)]
struct DeviceIdLine(String);

impl Human for DeviceIdLine {
    fn human(&self, _: Paint) -> String {
        format!("{}\n", sanitize_field(&self.0))
    }
}

/// `whoami --long` / `--json`. The schema is documented in docs/whoami.md.
#[derive(Debug, Serialize)]
struct WhoamiReport {
    device_id: String,
    cert_dir: String,
    certificate: CertificateSection,
    key: KeySection,
    ca: CaSection,
    warnings: Vec<Warning>,
}

#[derive(Debug, Serialize)]
struct CertificateSection {
    path: String,
    #[serde(flatten)]
    info: CertInfo,
    validity: Validity,
    certificates_in_file: usize,
}

#[derive(Debug, Serialize)]
struct KeySection {
    path: String,
    loaded: bool,
    matches_certificate: Option<bool>,
    /// Octal file mode, e.g. "0600".
    mode: Option<String>,
    error: Option<Problem>,
}

#[derive(Debug, Serialize)]
struct CaSection {
    path: String,
    loaded: bool,
    verifies_certificate: Option<bool>,
    /// The subject of the CA certificate that signed client.crt.
    signer: Option<String>,
    error: Option<Problem>,
}

#[derive(Debug, Serialize)]
struct Problem {
    message: String,
    hint: Option<String>,
}

impl Problem {
    fn from(error: &identity::IdentityError) -> Self {
        Problem {
            message: error.to_string(),
            hint: error.hint(),
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

impl WhoamiReport {
    fn new(inspection: &Inspection) -> Self {
        let cert = &inspection.cert;
        let key_matches = inspection.key_matches();
        let mismatch = inspection
            .problems()
            .into_iter()
            .find(|p| matches!(p, identity::IdentityError::KeyMismatch { .. }));
        let not_signed = inspection
            .problems()
            .into_iter()
            .find(|p| matches!(p, identity::IdentityError::NotSignedByCa { .. }));
        WhoamiReport {
            device_id: cert.device_id().to_string(),
            cert_dir: display(inspection.dir.path()),
            certificate: CertificateSection {
                path: display(&cert.path),
                info: cert.info.clone(),
                validity: cert.info.validity_at(inspection.now),
                certificates_in_file: cert.count,
            },
            key: KeySection {
                path: display(&inspection.dir.key_path()),
                loaded: inspection.key.is_ok(),
                matches_certificate: key_matches,
                mode: inspection
                    .key
                    .as_ref()
                    .ok()
                    .map(|k| format!("{:04o}", k.mode)),
                error: match &inspection.key {
                    Err(e) => Some(Problem::from(e)),
                    Ok(_) => mismatch.as_ref().map(Problem::from),
                },
            },
            ca: CaSection {
                path: display(&inspection.dir.ca_path()),
                loaded: inspection.ca.is_ok(),
                verifies_certificate: inspection
                    .ca
                    .as_ref()
                    .ok()
                    .map(|_| inspection.ca_signer().is_some()),
                signer: inspection.ca_signer().map(|s| s.subject.clone()),
                error: match &inspection.ca {
                    Err(e) => Some(Problem::from(e)),
                    Ok(_) => not_signed.as_ref().map(Problem::from),
                },
            },
            warnings: inspection.warnings.clone(),
        }
    }
}

impl Human for WhoamiReport {
    fn human(&self, p: Paint) -> String {
        let info = &self.certificate.info;
        let mut s = String::new();
        let row = |s: &mut String, label: &str, value: &str| {
            let _ = writeln!(s, "  {:<13}{}", label, sanitize_field(value));
        };
        let heading = |s: &mut String, label: &str, value: &str| {
            let _ = writeln!(
                s,
                "{}{}",
                p.bold(&format!("{label:<15}")),
                sanitize_field(value)
            );
        };
        heading(&mut s, "Device ID", &self.device_id);
        heading(&mut s, "Certificate", &self.certificate.path);
        row(&mut s, "Subject", &info.subject);
        row(
            &mut s,
            "DNS names",
            &if info.dns_names.is_empty() {
                "(none)".to_string()
            } else {
                info.dns_names.join(", ")
            },
        );
        if !info.ip_addresses.is_empty() {
            row(&mut s, "IP addresses", &info.ip_addresses.join(", "));
        }
        row(&mut s, "Issuer", &info.issuer);
        row(&mut s, "Serial", &info.serial);
        let (ok, state) = match self.certificate.validity {
            Validity::Valid { seconds_left } => {
                (true, format!("{} left", human_duration(seconds_left)))
            }
            Validity::Expired { seconds_ago } => (
                false,
                format!("expired {} ago", human_duration(seconds_ago)),
            ),
            Validity::NotYetValid { seconds_until } => (
                false,
                format!("not valid for another {}", human_duration(seconds_until)),
            ),
        };
        let _ = writeln!(
            s,
            "  {:<13}{} → {}  {} {}",
            "Valid",
            info.not_before,
            info.not_after,
            p.mark(ok),
            state
        );
        let key = match (&info.curve, info.key_bits) {
            (Some(curve), _) => format!("{} {curve}", info.key_algorithm),
            (None, Some(bits)) => format!("{} {bits} bits", info.key_algorithm),
            (None, None) => info.key_algorithm.clone(),
        };
        row(&mut s, "Public key", &key);
        row(&mut s, "SHA-256", &info.fingerprint_sha256);

        let key_line = match (&self.key.error, self.key.matches_certificate) {
            (None, Some(true)) => format!(
                "{} matches the certificate (mode {})",
                p.mark(true),
                self.key.mode.as_deref().unwrap_or("?")
            ),
            (Some(problem), _) => format!("{} {}", p.mark(false), sanitize(&problem.message)),
            _ => format!("{} not checked", p.mark(false)),
        };
        heading(&mut s, "Private key", &self.key.path);
        let _ = writeln!(s, "  {key_line}");
        let ca_line = match (&self.ca.error, &self.ca.signer) {
            (None, Some(signer)) => format!(
                "{} signed the certificate ({})",
                p.mark(true),
                sanitize(signer)
            ),
            (Some(problem), _) => format!("{} {}", p.mark(false), sanitize(&problem.message)),
            _ => format!("{} not checked", p.mark(false)),
        };
        heading(&mut s, "CA", &self.ca.path);
        let _ = writeln!(s, "  {ca_line}");
        s
    }
}
