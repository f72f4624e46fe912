//! The identity checks: everything `whoami --long` knows, as findings.

use std::os::unix::fs::PermissionsExt;

use super::Finding;
use crate::broker::Context;
use crate::diagnose::Diagnose;
use crate::identity::{Inspection, RENEWAL_THRESHOLD_SECS, Validity};
use crate::names;
use crate::output::{human_duration, shell_word, sudo};

/// The identity's findings, and the device ID when the certificate loads.
pub(super) struct IdentityChecks {
    pub findings: Vec<Finding>,
    pub device_id: Option<String>,
}

const WHY_FILES: &str =
    "every role needs this device's identity: the broker presents it, and clients connect with it";

/// `is_server`: this device runs the managed broker, so clients must be
/// able to verify its certificate by name.
pub(super) fn check(ctx: &Context<'_>, is_server: bool) -> IdentityChecks {
    let dir = ctx.cert_dir;
    let inspection = match Inspection::load(dir) {
        Ok(inspection) => inspection,
        Err(e) => {
            return IdentityChecks {
                findings: vec![
                    Finding::failure("identity.files", e.to_string(), WHY_FILES)
                        .maybe_fix(e.hint()),
                ],
                device_id: None,
            };
        }
    };
    let cert = &inspection.cert;
    let info = &cert.info;
    let id = cert.device_id().to_string();
    let mut out = Vec::new();

    let broken: Vec<_> = [inspection.key.as_ref().err(), inspection.ca.as_ref().err()]
        .into_iter()
        .flatten()
        .collect();
    if broken.is_empty() {
        out.push(Finding::ok(
            "identity.files",
            format!(
                "client.crt, client.key and ca.crt load from {}",
                dir.path().display()
            ),
        ));
    }
    for e in broken {
        out.push(Finding::failure("identity.files", e.to_string(), WHY_FILES).maybe_fix(e.hint()));
    }

    out.push(match names::wott_shape(&id) {
        Ok(()) => Finding::ok("identity.device-id", format!("device ID {id}")),
        Err(problem) => Finding::warning(
            "identity.device-id",
            format!("the certificate's CN {id:?} is not a WoTT device ID: {problem}"),
            "WoTT device IDs are 32 lower-case hex characters and .d.wott.local; this identity was not issued by WoTT, so the tutorial's names and ACL rules may not fit it",
        ),
    });

    out.push(match info.validity_at(inspection.now) {
        Validity::Expired { seconds_ago } => Finding::failure(
            "identity.expiry",
            format!(
                "the certificate expired {} ago ({})",
                human_duration(seconds_ago),
                info.not_after
            ),
            "an expired certificate is refused by every broker and client: this device cannot connect, and a broker presenting it admits nobody",
        )
        .fix(AGENT_FIX),
        Validity::NotYetValid { seconds_until } => Finding::failure(
            "identity.expiry",
            format!(
                "the certificate is not valid for another {} ({})",
                human_duration(seconds_until),
                info.not_before
            ),
            "a certificate that is not valid yet is refused like an expired one; usually the clock is wrong",
        )
        .fix("check the clock: timedatectl status"),
        Validity::Valid { seconds_left } if seconds_left < RENEWAL_THRESHOLD_SECS => {
            Finding::warning(
                "identity.expiry",
                format!(
                    "the certificate expires in {} ({})",
                    human_duration(seconds_left),
                    info.not_after
                ),
                "the agent renews certificates when fewer than 3 days are left, so this renewal is overdue; when it expires the device stops connecting",
            )
            .fix(AGENT_FIX)
        }
        Validity::Valid { seconds_left } => Finding::ok(
            "identity.expiry",
            format!(
                "valid until {} ({} left)",
                info.not_after,
                human_duration(seconds_left)
            ),
        ),
    });

    match inspection.key_matches() {
        Some(true) => out.push(Finding::ok(
            "identity.key-match",
            "client.key belongs to client.crt",
        )),
        Some(false) => out.push(
            Finding::failure(
                "identity.key-match",
                format!(
                    "{} does not belong to {} (the public keys differ)",
                    dir.key_path().display(),
                    cert.path.display()
                ),
                "TLS needs the certificate's own key: nothing can connect with this pair. Usually a renewal was interrupted between the two files",
            )
            .fix(AGENT_FIX),
        ),
        None => {}
    }

    if inspection.ca.is_ok() {
        out.push(match inspection.ca_signer() {
            Some(signer) => Finding::ok(
                "identity.chain",
                format!("ca.crt ({}) signed client.crt", signer.subject),
            ),
            None => Finding::failure(
                "identity.chain",
                format!(
                    "{} did not sign {} (its issuer is {})",
                    dir.ca_path().display(),
                    cert.path.display(),
                    info.issuer
                ),
                "the broker trusts ca.crt and clients verify the broker against it: with another CA, no connection verifies",
            )
            .fix(AGENT_FIX),
        });
    }

    out.push(key_quality(info));

    out.push(if info.has_dns_name(&id) {
        Finding::ok("identity.cn-in-san", format!("{id} is a DNS name of the certificate"))
    } else {
        let found = format!(
            "the CN {id} is not among the certificate's DNS names ({})",
            if info.dns_names.is_empty() {
                "none".to_string()
            } else {
                info.dns_names.join(", ")
            }
        );
        let why = "TLS clients check names against the DNS names only, never the CN, so clients cannot verify this device as a server";
        if is_server {
            Finding::failure("identity.cn-in-san", found, why).fix(AGENT_FIX)
        } else {
            Finding::warning("identity.cn-in-san", found, why)
        }
    });

    if let Ok(meta) = std::fs::metadata(dir.key_path()) {
        let mode = meta.permissions().mode() & 0o7777;
        let path = dir.key_path();
        out.push(if mode & 0o077 == 0 {
            Finding::ok("identity.key-mode", format!("client.key has mode {mode:04o}"))
        } else {
            Finding::failure(
                "identity.key-mode",
                format!("{} has mode {mode:04o}", path.display()),
                "other users of this machine can read the private key, and with it act as this device",
            )
            .fix(format!(
                "{}chmod 600 {}",
                sudo(),
                shell_word(&path.display().to_string())
            ))
        });
    }

    IdentityChecks {
        findings: out,
        device_id: Some(id),
    }
}

const AGENT_FIX: &str =
    "sudo wott-agent (it renews the identity), and check that the agent's service runs";

/// The key's algorithm and size, and the certificate's signature.
fn key_quality(info: &crate::identity::CertInfo) -> Finding {
    let algorithm = info.key_algorithm.as_str();
    let curve = info.curve.as_deref();
    let bits = info.key_bits.unwrap_or(0);
    let described = match (curve, info.key_bits) {
        (Some(curve), _) => format!("{algorithm} {curve}"),
        (None, Some(bits)) => format!("{algorithm} {bits} bits"),
        (None, None) => algorithm.to_string(),
    };
    let found = format!("{described}, signed with {}", info.signature_algorithm);
    let weak_signature = {
        let s = info.signature_algorithm.to_ascii_lowercase();
        s.contains("sha1") || s.contains("md5")
    };
    let strong_key = match algorithm {
        "EC" => matches!(curve, Some("P-256" | "P-384" | "P-521")),
        "RSA" => bits >= 2048,
        "Ed25519" | "Ed448" => true,
        _ => false,
    };
    if algorithm == "RSA" && bits < 2048 {
        return Finding::failure(
            "identity.key-quality",
            found,
            "RSA keys below 2048 bits can be broken; OpenSSL's default security level refuses them",
        )
        .fix(AGENT_FIX);
    }
    if weak_signature {
        return Finding::failure(
            "identity.key-quality",
            found,
            "SHA-1 and MD5 signatures can be forged; current TLS libraries refuse them",
        )
        .fix(AGENT_FIX);
    }
    if strong_key {
        Finding::ok("identity.key-quality", found)
    } else {
        Finding::warning(
            "identity.key-quality",
            found,
            "the WoTT agent's keys are EC P-256; this key type is unusual, and Mosquitto or its clients may not accept it",
        )
    }
}
