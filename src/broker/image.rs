//! `server image`: a Mosquitto image built from this machine's Mosquitto,
//! for engines that cannot pull `eclipse-mosquitto:2` (air-gapped sites,
//! factory networks, CI without a registry).
//!
//! The image keeps the official layout ([`super::image_archive`]), so every
//! other command behaves with it as with the official image: it starts as
//! root and Mosquitto drops to uid 1883, so the key-permission pitfall stays
//! real. It is given to the engine as a `docker load` archive through the
//! Docker API; nothing shells out to `docker`.
//!
//! The image's labels record what it was built from, and a digest of all of
//! it ([`LABEL_INPUTS`]): with the same Mosquitto, the same libraries and
//! the same layout, a second run finds the tag current and changes nothing.
//! A tag that names an image wott-mqtt did not build is never overwritten.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::docker::Engine;
use super::host_mosquitto::HostMosquitto;
use super::image_archive::{self, archive, entries};
use super::{BrokerError, ImageError};
use crate::output::Output;

/// The repository of the local image: `wott-mqtt/mosquitto:<version>-local`.
pub const LOCAL_REPOSITORY: &str = "wott-mqtt/mosquitto";
/// A digest of everything the image is made of; only wott-mqtt's images have it.
pub const LABEL_INPUTS: &str = "org.wott-mqtt.image.inputs";
const LABEL_VERSION: &str = "org.wott-mqtt.image.mosquitto-version";
const LABEL_SHA256: &str = "org.wott-mqtt.image.mosquitto-sha256";
const LABEL_PACKAGE: &str = "org.wott-mqtt.image.mosquitto-package";
const LABEL_SOURCE: &str = "org.wott-mqtt.image.built-from";
/// Bump when the layout changes in a way the inputs do not show.
const LAYOUT_VERSION: u32 = 1;

/// `server image`'s choices.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// `--tag`, already checked by [`parse_tag`]; `None` for the default.
    pub tag: Option<String>,
    /// `--mosquitto`: the binary to build from.
    pub mosquitto: Option<PathBuf>,
    pub dry_run: bool,
}

/// What the image was built from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub path: PathBuf,
    pub version: String,
    /// `mosquitto 2.0.11-1.2+deb12u2` when dpkg installed the binary.
    pub package: Option<String>,
    pub sha256: String,
}

/// One file of the image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageFile {
    pub path: PathBuf,
    /// Where it was copied from, for files of the host.
    pub from: Option<PathBuf>,
    pub bytes: u64,
}

/// What `server image` did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub changed: bool,
    pub dry_run: bool,
    pub tag: String,
    /// The image ID; `None` in a dry run that would build.
    pub id: Option<String>,
    pub engine: String,
    pub mosquitto: Source,
    pub architecture: String,
    pub files: Vec<ImageFile>,
    /// The ID the tag named before, when it named an older build.
    pub replaced: Option<String>,
}

/// `server image`: refuses first (no engine, no usable Mosquitto), then
/// builds unless the tag is current.
pub async fn local_image(output: &Output, opts: &ImageOptions) -> Result<ImageReport, BrokerError> {
    let engine = Engine::connect().await?;
    let host = HostMosquitto::find(opts.mosquitto.as_deref()).await?;
    let tag = match &opts.tag {
        Some(tag) => parse_tag(tag)?,
        None => default_tag(&host),
    };
    ensure(&engine, &host, &tag, opts.dry_run, output).await
}

/// `wott-mqtt/mosquitto:2.0.11-local`.
pub fn default_tag(host: &HostMosquitto) -> String {
    format!("{LOCAL_REPOSITORY}:{}-local", host.version)
}

/// Makes `tag` name a current image of `host`, building it when it does not.
pub(super) async fn ensure(
    engine: &Engine,
    host: &HostMosquitto,
    tag: &str,
    dry_run: bool,
    output: &Output,
) -> Result<ImageReport, BrokerError> {
    let labels = labels(host);
    let inputs = labels.get(LABEL_INPUTS).cloned().unwrap_or_default();
    let mut report = report(engine, host, tag, dry_run);
    let before = engine.image(tag).await?;
    if let Some(image) = &before {
        match image.labels.get(LABEL_INPUTS) {
            None => return Err(ImageError::ForeignTag { tag: tag.into() }.into()),
            Some(current) if *current == inputs => {
                report.id = Some(image.id.clone());
                return Ok(report);
            }
            Some(_) => report.replaced = Some(image.id.clone()),
        }
    }
    report.changed = true;
    if dry_run {
        return Ok(report);
    }
    let built = {
        let _spinner = output.spinner(&format!(
            "building {tag} from {} (Mosquitto {}) …",
            host.binary.source.display(),
            host.version
        ));
        let built = archive(host, tag, &labels).map_err(|e| ImageError::ImportRefused {
            tag: tag.into(),
            reason: format!("cannot assemble the archive: {e}"),
        })?;
        engine.load(tag, built.bytes).await?;
        built.id
    };
    let after = engine.image(tag).await?;
    let Some(image) = after.filter(|i| i.labels.get(LABEL_INPUTS) == Some(&inputs)) else {
        return Err(ImageError::ImportRefused {
            tag: tag.into(),
            reason: "the engine reported success, but the tag does not name the new image".into(),
        }
        .into());
    };
    output.debug(1, &format!("{tag} is {} (built as {built})", image.id));
    if let Some(old) = report.replaced.as_deref().filter(|old| *old != image.id) {
        engine.remove_unused_image(old).await;
    }
    report.id = Some(image.id);
    Ok(report)
}

/// The report before anything is decided: unchanged, no ID yet.
fn report(engine: &Engine, host: &HostMosquitto, tag: &str, dry_run: bool) -> ImageReport {
    ImageReport {
        changed: false,
        dry_run,
        tag: tag.to_string(),
        id: None,
        engine: engine.endpoint().to_string(),
        mosquitto: Source {
            path: host.binary.source.clone(),
            version: host.version.to_string(),
            package: host.package.clone(),
            sha256: host.binary.sha256.clone(),
        },
        architecture: host.architecture.to_string(),
        files: entries(host)
            .into_iter()
            .map(|e| ImageFile {
                path: e.path,
                from: e.source.map(PathBuf::from),
                bytes: e.bytes.len() as u64,
            })
            .collect(),
        replaced: None,
    }
}

/// The image's labels, the last of them the digest of all the rest and of
/// every file.
fn labels(host: &HostMosquitto) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (LABEL_VERSION.to_string(), host.version.to_string()),
        (LABEL_SHA256.to_string(), host.binary.sha256.clone()),
        (
            LABEL_PACKAGE.to_string(),
            host.package.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            LABEL_SOURCE.to_string(),
            host.binary.source.display().to_string(),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            host.version.to_string(),
        ),
        (
            "org.opencontainers.image.description".to_string(),
            format!(
                "Mosquitto {} from this machine in the eclipse-mosquitto:2 layout (wott-mqtt server image)",
                host.version
            ),
        ),
    ]);
    let mut text = format!(
        "layout={LAYOUT_VERSION}\narchitecture={}\nenv={:?}\ncmd={:?}\n",
        host.architecture,
        image_archive::env(host),
        image_archive::CMD
    );
    for (key, value) in &labels {
        text.push_str(&format!("label {key}={value}\n"));
    }
    for entry in entries(host) {
        let digest = ring::digest::digest(&ring::digest::SHA256, entry.bytes);
        text.push_str(&format!(
            "file {} {:o} {} {}\n",
            entry.path.display(),
            entry.mode,
            entry.uid,
            super::hex(digest.as_ref())
        ));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    labels.insert(
        LABEL_INPUTS.to_string(),
        format!("sha256:{}", super::hex(digest.as_ref())),
    );
    labels
}

/// A tag the engine accepts: `[host[:port]/]name[/name…][:tag]`, lower-case
/// name parts, no digest. A missing tag means `latest`, as for `docker`.
pub fn parse_tag(value: &str) -> Result<String, ImageError> {
    let invalid = |reason: &str| ImageError::InvalidTag {
        tag: value.to_string(),
        reason: reason.to_string(),
    };
    if value.contains('@') {
        return Err(invalid("a digest cannot be a tag"));
    }
    let name_start = value.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match value[name_start..].rfind(':') {
        Some(i) => (&value[..name_start + i], &value[name_start + i + 1..]),
        None => (value, "latest"),
    };
    let tag_ok = tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !tag_ok {
        return Err(invalid(
            "the tag after `:` is letters, digits, `_`, `.` and `-` (at most 128)",
        ));
    }
    if name.is_empty() || name.len() > 255 {
        return Err(invalid("the name is empty or longer than 255 characters"));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost") {
        let (host, port) = first.split_once(':').unwrap_or((first, "0"));
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
        if !host_ok || port.parse::<u16>().is_err() {
            return Err(invalid(
                "the registry host before the first `/` is not a host[:port]",
            ));
        }
        parts.remove(0);
    }
    if !parts.iter().all(|p| name_part_ok(p)) {
        return Err(invalid(
            "each name part is lower-case letters and digits, separated by `.`, `_`, `__` or `-`",
        ));
    }
    Ok(format!("{name}:{tag}"))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn name_part_ok(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().copied().is_some_and(alnum) || !bytes.last().copied().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_like_the_engine_does() {
        assert_eq!(
            parse_tag("wott-mqtt/mosquitto:2.0.11-local").unwrap(),
            "wott-mqtt/mosquitto:2.0.11-local"
        );
        assert_eq!(parse_tag("mosquitto").unwrap(), "mosquitto:latest");
        assert_eq!(
            parse_tag("registry.local:5000/org/mq:1").unwrap(),
            "registry.local:5000/org/mq:1"
        );
        assert_eq!(parse_tag("a__b/c-d/e.f").unwrap(), "a__b/c-d/e.f:latest");
        for bad in [
            "",
            "Upper/case:1",
            "trailing-/x",
            "x:",
            "x:-dash",
            "x@sha256:abc",
            "x y:1",
            "a/-b",
            "a...b",
            "host:port/x",
        ] {
            assert!(parse_tag(bad).is_err(), "{bad:?}");
        }
    }
}
