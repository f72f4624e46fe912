//! The global options, resolved once into plain values.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::broker::{Context, DEFAULT_SERVER_DIR};
use crate::cli::{ColorArg, GlobalArgs};
use crate::identity::{CertDir, DEFAULT_CERT_DIR};
use crate::names::IdPolicy;
use crate::output::{ColorChoice, Output};

/// What every command needs to know, with defaults and environment applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub cert_dir: CertDir,
    pub server_dir: PathBuf,
    pub output: Output,
    /// Which device IDs may be typed: `--any-id` / `WOTT_MQTT_ANY_ID`.
    pub id_policy: IdPolicy,
}

impl Config {
    /// What the domains and the tutorial's flows work with.
    pub fn context(&self) -> Context<'_> {
        Context {
            cert_dir: &self.cert_dir,
            server_dir: &self.server_dir,
            output: &self.output,
        }
    }

    pub fn from_args(args: &GlobalArgs) -> Self {
        Config {
            cert_dir: CertDir::new(resolve_cert_dir(
                args.cert_dir.clone().map(PathBuf::from),
                std::env::var_os("CONFIG_PATH").map(PathBuf::from),
            )),
            server_dir: non_empty(args.server_dir.clone())
                .map_or_else(|| PathBuf::from(DEFAULT_SERVER_DIR), PathBuf::from),
            output: Output::new(args.json, args.quiet, args.verbose, color(args.color)),
            id_policy: if args.any_id {
                IdPolicy::Any
            } else {
                IdPolicy::Wott
            },
        }
    }
}

fn color(arg: ColorArg) -> ColorChoice {
    match arg {
        ColorArg::Auto => ColorChoice::Auto,
        ColorArg::Always => ColorChoice::Always,
        ColorArg::Never => ColorChoice::Never,
    }
}

/// `--cert-dir` or `CERT_PATH`, else `$CONFIG_PATH/certs`, else /opt/wott/certs:
/// the agent's own order. Empty values count as unset.
fn resolve_cert_dir(explicit: Option<PathBuf>, config_path: Option<PathBuf>) -> PathBuf {
    let non_empty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    non_empty(explicit)
        .or_else(|| non_empty(config_path).map(|c| c.join("certs")))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CERT_DIR))
}

fn non_empty(value: Option<OsString>) -> Option<OsString> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_dir_follows_the_agents_order() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(resolve_cert_dir(p("/x"), p("/cfg")), PathBuf::from("/x"));
        assert_eq!(
            resolve_cert_dir(None, p("/cfg")),
            PathBuf::from("/cfg/certs")
        );
        assert_eq!(
            resolve_cert_dir(p(""), p("")),
            PathBuf::from(DEFAULT_CERT_DIR)
        );
        assert_eq!(
            resolve_cert_dir(None, None),
            PathBuf::from(DEFAULT_CERT_DIR)
        );
    }
}
