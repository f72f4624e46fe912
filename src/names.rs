//! Validated names: device IDs and MQTT topics.
//!
//! Values from the command line, prompts and environment are checked here,
//! once, at the edge. A `DeviceId` or `TopicFilter` that exists is safe to
//! write into /etc/hosts or permissions.acl: no newline, NUL, comment marker or
//! whitespace can smuggle a second entry into either file.

use std::fmt;
use std::str::FromStr;

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;

/// The domain every WoTT device ID lives in.
pub const WOTT_DOMAIN: &str = ".d.wott.local";

/// The environment variable that turns on `--any-id`.
pub const ANY_ID_ENV: &str = "WOTT_MQTT_ANY_ID";

/// Which device IDs a person may type: the agent's shape only (the default:
/// a typo there is written, and afterwards nothing matches), or any DNS name
/// (`--any-id`, for devices of one's own CA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdPolicy {
    #[default]
    Wott,
    Any,
}

/// A value that is not a valid device ID or topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid device ID {value:?}: {reason}")]
    DeviceId { value: String, reason: String },
    #[error(
        "{value:?} is not a WoTT device ID: {reason}{}",
        did_you_mean(suggestion)
    )]
    NotWott {
        value: String,
        reason: String,
        suggestion: Option<String>,
    },
    #[error("invalid MQTT topic {value:?}: {reason}")]
    Topic { value: String, reason: String },
}

/// What a WoTT device ID looks like, and how to take another name.
pub fn not_wott_hint() -> String {
    format!(
        "a WoTT device ID is 32 lower-case hex characters and {WOTT_DOMAIN}, as \
         `wott-mqtt whoami` on that device prints it; for a device of your own CA with \
         another name, pass --any-id or set {ANY_ID_ENV}=1"
    )
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default()
}

impl Diagnose for NameError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            NameError::DeviceId { .. } => format!(
                "a device ID is a DNS name such as 4853b630822946019393b16c5b710b9e{WOTT_DOMAIN}; \
                 `wott-mqtt whoami` on that device prints it"
            ),
            NameError::NotWott { .. } => not_wott_hint(),
            NameError::Topic { .. } => "MQTT topics are UTF-8 without control characters; \
                 `+` and `#` must fill a whole level and `#` must come last (e.g. sensors/+/temperature, wott/#)"
                .to_string(),
        })
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// A device ID: the certificate CN, a DNS name such as `<32 hex>.d.wott.local`.
///
/// Letters, digits and `-` in dot-separated labels of 1–63 characters, at most
/// 253 characters in all, no label starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn new(value: &str) -> Result<Self, NameError> {
        if !is_plain_dns_name(value.as_bytes()) {
            Self::check(value)?;
        }
        Ok(DeviceId(value.to_string()))
    }

    /// A device ID a person typed (a flag, a prompt, a line of `acl apply`):
    /// valid, and under [`IdPolicy::Wott`] shaped as the agent's IDs are,
    /// else refused with what is wrong and, where it is clear, the ID meant.
    /// A value that is not even a DNS name gets that (more precise) error.
    pub fn typed(value: &str, policy: IdPolicy) -> Result<Self, NameError> {
        let id = Self::new(value)?;
        if policy == IdPolicy::Wott
            && let Err(problem) = wott_shape(value)
        {
            return Err(NameError::NotWott {
                value: truncate_for_message(value),
                reason: problem.reason,
                suggestion: problem.suggestion,
            });
        }
        Ok(id)
    }

    /// Every rule, each with its own message.
    fn check(value: &str) -> Result<(), NameError> {
        let fail = |reason: &str| NameError::DeviceId {
            value: truncate_for_message(value),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(fail("it is empty"));
        }
        if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail(&format!(
                "it contains the character {c:?}; whitespace and control characters are not allowed"
            )));
        }
        if let Some(c) = value.chars().find(|c| matches!(c, '#' | '+' | '/')) {
            return Err(fail(&format!(
                "it contains {c:?}, which is not allowed in a DNS name"
            )));
        }
        if value.len() > 253 {
            return Err(fail(&format!(
                "it is {} characters long; a DNS name has at most 253",
                value.len()
            )));
        }
        for label in value.split('.') {
            if label.is_empty() {
                return Err(fail(
                    "it has an empty label (two dots in a row, or a leading or trailing dot)",
                ));
            }
            if label.len() > 63 {
                return Err(fail(&format!(
                    "the label {:?} is {} characters long; a DNS label has at most 63",
                    truncate_for_message(label),
                    label.len()
                )));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(fail(&format!(
                    "it contains {c:?}; a DNS name has only letters, digits, '-' and '.'"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(fail(&format!(
                    "the label {label:?} starts or ends with '-'"
                )));
            }
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is shaped as an agent-issued ID (`<32 hex>.d.wott.local`).
    pub fn is_wott(&self) -> bool {
        is_wott_shaped(&self.0)
    }
}

/// Why a name is not shaped as a WoTT device ID, and the ID probably meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    pub reason: String,
    /// Set when the fix is certain: case, a missing or misspelt domain.
    pub suggestion: Option<String>,
}

impl fmt::Display for ShapeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.reason, did_you_mean(&self.suggestion))
    }
}

/// `" --any-id"` for a command line that passes `id` on, when `id` (read
/// from a certificate) is not WoTT-shaped and would otherwise be refused.
pub fn any_id_flag(id: &str) -> &'static str {
    if is_wott_shaped(id) { "" } else { " --any-id" }
}

/// Whether `value` is exactly 32 lower-case hex characters and `.d.wott.local`.
pub fn is_wott_shaped(value: &str) -> bool {
    value
        .strip_suffix(WOTT_DOMAIN)
        .is_some_and(|head| head.len() == 32 && head.bytes().all(is_lower_hex))
}

/// Checks the WoTT shape; the problem names every way `value` misses it
/// (length, case, domain) and suggests the ID when only case or the domain
/// is off. Mosquitto compares usernames byte for byte, so a near miss would
/// be a rule that never applies.
pub fn wott_shape(value: &str) -> Result<(), ShapeProblem> {
    if is_wott_shaped(value) {
        return Ok(());
    }
    let (head, domain) = match value.find('.') {
        Some(dot) => (&value[..dot], Some(&value[dot..])),
        None => (value, None),
    };
    let hex = !head.is_empty() && head.bytes().all(|b| b.is_ascii_hexdigit());
    let mut reasons = Vec::new();
    if !hex {
        return Err(ShapeProblem {
            reason: format!(
                "its first label {:?} is not hex; a WoTT device ID is 32 lower-case hex \
                 characters and {WOTT_DOMAIN}",
                truncate_for_message(head)
            ),
            suggestion: None,
        });
    }
    if head.len() != 32 {
        reasons.push(format!(
            "its hex part has {} characters, a WoTT device ID's has 32 (shortened or cut off?)",
            head.len()
        ));
    }
    if head.bytes().any(|b| b.is_ascii_uppercase()) {
        reasons.push(
            "it has upper-case letters; Mosquitto compares usernames byte for byte, and the \
             agent's IDs are lower case"
                .to_string(),
        );
    }
    let domain_fixable = match domain {
        None => {
            reasons.push(format!("it lacks the domain {WOTT_DOMAIN}"));
            true
        }
        Some(d) if d == WOTT_DOMAIN => true,
        Some(d) if d.eq_ignore_ascii_case(WOTT_DOMAIN) || near(d, WOTT_DOMAIN) => {
            reasons.push(format!(
                "its domain is {:?}, a WoTT device ID's is {WOTT_DOMAIN}",
                truncate_for_message(d)
            ));
            true
        }
        Some(d) => {
            reasons.push(format!(
                "its domain is {:?}, not {WOTT_DOMAIN}",
                truncate_for_message(d)
            ));
            false
        }
    };
    let suggestion = (head.len() == 32 && domain_fixable)
        .then(|| format!("{}{WOTT_DOMAIN}", head.to_ascii_lowercase()));
    Err(ShapeProblem {
        reason: reasons.join("; "),
        suggestion,
    })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// A misspelling of `target`: at most two edits (insert, delete, substitute)
/// apart, ignoring case.
fn near(value: &str, target: &str) -> bool {
    let (a, b) = (value.to_ascii_lowercase(), target.as_bytes());
    let a = a.as_bytes();
    if a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let substitute = previous + usize::from(x != y);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()] <= 2
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeviceId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceId::new(s)
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A `DeviceId` hashes and compares as its text, so maps keyed by it can be
/// searched with a `&str` that has not been validated (again).
impl std::borrow::Borrow<str> for DeviceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An MQTT topic filter (wildcards allowed), as used in SUBSCRIBE and ACL rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

impl TopicFilter {
    pub fn new(value: &str) -> Result<Self, NameError> {
        if !is_plain_filter(value.as_bytes()) {
            Self::check(value)?;
        }
        Ok(TopicFilter(value.to_string()))
    }

    /// Every rule, each with its own message.
    fn check(value: &str) -> Result<(), NameError> {
        check_topic_text(value)?;
        for level in value.split('/') {
            let wildcard = level.contains('+') || level.contains('#');
            if wildcard && level.len() != 1 {
                return Err(topic_error(
                    value,
                    &format!("the level {level:?} mixes a wildcard with other characters"),
                ));
            }
        }
        if let Some(pos) = value.find('#')
            && pos != value.len() - 1
        {
            return Err(topic_error(value, "'#' must be the last level"));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn has_wildcards(&self) -> bool {
        self.0.contains(['+', '#'])
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TopicFilter {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicFilter::new(s)
    }
}

/// An MQTT topic name (no wildcards), as used in PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    pub fn new(value: &str) -> Result<Self, NameError> {
        check_topic_text(value)?;
        if value.contains(['+', '#']) {
            return Err(topic_error(
                value,
                "a topic to publish to or check cannot contain the wildcards '+' or '#'",
            ));
        }
        Ok(TopicName(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TopicName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicName::new(s)
    }
}

/// The common device ID, accepted in one pass over its bytes (`acl apply`
/// checks tens of thousands): the rules of [`DeviceId::new`] for a name of
/// ASCII letters, digits, `-` and `.`. Anything else takes the precise path,
/// which names the problem.
fn is_plain_dns_name(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > 253 {
        return false;
    }
    let (mut label, mut previous) = (0, b'.');
    for &b in bytes {
        match b {
            b'.' if label == 0 || previous == b'-' => return false,
            b'.' => label = 0,
            b'-' if label == 0 => return false,
            b'-' => label += 1,
            _ if b.is_ascii_alphanumeric() => label += 1,
            _ => return false,
        }
        if label > 63 {
            return false;
        }
        previous = b;
    }
    label > 0 && previous != b'-'
}

/// The common topic filter, accepted in one pass: printable ASCII without
/// spaces, wildcards filling whole levels, `#` last, not too many levels.
/// Anything else takes the precise path of [`TopicFilter::new`].
fn is_plain_filter(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > 65_535 {
        return false;
    }
    let (mut separators, mut level_start) = (0, 0);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'/' => {
                separators += 1;
                level_start = i + 1;
            }
            b'+' | b'#' => {
                let last = i + 1 == bytes.len();
                let whole = level_start == i && (last || bytes[i + 1] == b'/');
                if !whole || (b == b'#' && !last) {
                    return false;
                }
            }
            0x21..=0x7e => {}
            _ => return false,
        }
    }
    separators <= MAX_TOPIC_SEPARATORS
}

/// Mosquitto refuses a topic with more `/` than this (`TOPIC_HIERARCHY_LIMIT`).
pub const MAX_TOPIC_SEPARATORS: usize = 200;

fn check_topic_text(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(topic_error(value, "it is empty"));
    }
    if value.len() > 65_535 {
        return Err(topic_error(
            value,
            &format!(
                "it is {} bytes long; MQTT allows at most 65535",
                value.len()
            ),
        ));
    }
    let separators = value.bytes().filter(|&b| b == b'/').count();
    if separators > MAX_TOPIC_SEPARATORS {
        return Err(topic_error(
            value,
            &format!(
                "it has {} levels; Mosquitto refuses topics with more than {}",
                separators + 1,
                MAX_TOPIC_SEPARATORS + 1
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(topic_error(
            value,
            &format!("it contains the control character {c:?}"),
        ));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(topic_error(
            value,
            "it starts or ends with whitespace, which permissions.acl cannot keep",
        ));
    }
    Ok(())
}

fn topic_error(value: &str, reason: &str) -> NameError {
    NameError::Topic {
        value: truncate_for_message(value),
        reason: reason.to_string(),
    }
}

/// Keeps error messages readable when someone passes a megabyte of input.
pub(crate) fn truncate_for_message(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        return value.to_string();
    }
    let head: String = value.chars().take(MAX).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast paths accept exactly what every rule accepts, where they apply.
        #[test]
        fn the_fast_paths_agree_with_the_rules(
            id in "[a-zA-Z0-9.-]{0,70}|[ -~\\t\\n_é]{0,12}",
            filter in "[a-z/+#$ ]{0,12}|[ -~\\t\\né]{0,12}",
        ) {
            let plain = is_plain_dns_name(id.as_bytes());
            prop_assert!(!plain || DeviceId::check(&id).is_ok(), "{:?}", id);
            if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
                prop_assert_eq!(plain, DeviceId::check(&id).is_ok(), "{:?}", id);
            }
            let plain = is_plain_filter(filter.as_bytes());
            prop_assert!(!plain || TopicFilter::check(&filter).is_ok(), "{:?}", filter);
            if filter.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                prop_assert_eq!(plain, TopicFilter::check(&filter).is_ok(), "{:?}", filter);
            }
        }
    }

    #[test]
    fn typed_ids_must_be_wott_shaped_unless_any() {
        let good = "4853b630822946019393b16c5b710b9e.d.wott.local";
        assert!(DeviceId::typed(good, IdPolicy::Wott).is_ok());
        let cases = [
            (
                "4853b630822946019393b16c5b710b9e",
                Some(good),
                "lacks the domain",
            ),
            (
                "4853B630822946019393B16C5B710B9E.d.wott.local",
                Some(good),
                "upper-case",
            ),
            (
                "4853b630822946019393b16c5b710b9e.d.wott.locl",
                Some(good),
                "domain is",
            ),
            (
                "4853b630822946019393b16c5b710b9e.D.WOTT.LOCAL",
                Some(good),
                "domain is",
            ),
            (
                "4853b630822946019393b16c5b710b9e.wott.local",
                Some(good),
                "domain is",
            ),
            (
                "4853b630822946019393b16c5b71.d.wott.local",
                None,
                "has 28 characters",
            ),
            (
                "4853b630822946019393b16c5b710b9e.example.com",
                None,
                "not .d.wott.local",
            ),
            ("broker.example.com", None, "not hex"),
        ];
        for (value, suggestion, reason) in cases {
            let problem = wott_shape(value).unwrap_err();
            assert_eq!(problem.suggestion.as_deref(), suggestion, "{value}");
            assert!(
                problem.reason.contains(reason),
                "{value}: {}",
                problem.reason
            );
            let err = DeviceId::typed(value, IdPolicy::Wott).unwrap_err();
            assert!(matches!(err, NameError::NotWott { .. }), "{value}");
            if let Some(s) = suggestion {
                assert!(
                    err.to_string().ends_with(&format!("did you mean {s}?")),
                    "{err}"
                );
            }
        }
        assert!(DeviceId::typed("broker.example.com", IdPolicy::Any).is_ok());
        assert!(matches!(
            DeviceId::typed("a b", IdPolicy::Any),
            Err(NameError::DeviceId { .. })
        ));
        assert!(
            !DeviceId::new("4853B630822946019393B16C5B710B9E.d.wott.local")
                .unwrap()
                .is_wott()
        );
    }

    #[test]
    fn wott_ids_and_plain_hostnames_are_device_ids() {
        let id = DeviceId::new("4853b630822946019393b16c5b710b9e.d.wott.local").unwrap();
        assert!(id.is_wott());
        assert!(!DeviceId::new("broker.example.com").unwrap().is_wott());
        assert!(DeviceId::new("a").is_ok());
    }

    #[test]
    fn injection_is_refused_with_the_reason() {
        for bad in [
            "",
            "a b",
            "a\nb",
            "a\0b",
            "host#x",
            "a+b",
            "-rf",
            "a..b",
            ".a",
            "a.",
            "under_score",
            "dev/1",
        ] {
            let err = DeviceId::new(bad).unwrap_err();
            assert!(matches!(err, NameError::DeviceId { .. }), "{bad:?}");
        }
        let long_label = "a".repeat(64);
        assert!(
            DeviceId::new(&long_label)
                .unwrap_err()
                .to_string()
                .contains("at most 63")
        );
        let long_name = vec!["a".repeat(60); 5].join(".");
        assert!(
            DeviceId::new(&long_name)
                .unwrap_err()
                .to_string()
                .contains("at most 253")
        );
    }

    #[test]
    fn topic_filters_follow_mqtt_wildcard_rules() {
        for ok in [
            "wott/temperature",
            "a/+/c",
            "#",
            "a/#",
            "+",
            "$SYS/#",
            "/",
            "home/living room",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a/#/c", "a#", "a/b+", "a\nb", "a\0", " a", "a ", "a\tb"] {
            assert!(TopicFilter::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_stay_within_mosquittos_level_limit() {
        assert!(TopicFilter::new(&("a/".repeat(200) + "a")).is_ok());
        let err = TopicFilter::new(&("a/".repeat(201) + "a")).unwrap_err();
        assert!(err.to_string().contains("202 levels"), "{err}");
        assert!(TopicName::new(&"/".repeat(201)).is_err());
    }

    #[test]
    fn topic_names_have_no_wildcards() {
        assert!(TopicName::new("wott/temperature").is_ok());
        assert!(TopicName::new("wott/+").is_err());
        assert!(TopicName::new("wott/#").is_err());
    }

    #[test]
    fn huge_values_are_truncated_in_messages() {
        let huge = "x".repeat(10_000);
        let message = DeviceId::new(&huge).unwrap_err().to_string();
        assert!(message.len() < 300, "{}", message.len());
    }
}
