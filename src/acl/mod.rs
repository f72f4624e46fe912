//! Mosquitto's acl_file (`permissions.acl`): a lossless document, edits, and
//! an evaluator that answers "may this device read or write this topic, and
//! which line decides?" exactly as Mosquitto 2.x does.
//!
//! Granting access is the step users get wrong without any sign: with an
//! acl_file, Mosquitto grants every SUBSCRIBE and silently drops the messages
//! the ACL does not allow. So the evaluator follows Mosquitto's source
//! (`src/security_default.c`, `src/security.c`, `lib/util_topic.c` of 2.0.11)
//! rather than the MQTT spec, and a differential test holds it to a real
//! broker's deliveries.
//!
//! - [`document`]: every line, its bytes and its meaning; edits as patches.
//! - [`eval`]: the rules that apply to a client, and the decision.
//! - [`blocks`]: the one pass that makes devices' grants what they should
//!   be, under `allow`, `revoke` and `apply`.
//! - [`edit`]: `allow` and `revoke`.
//! - [`desired`] and [`apply`]: `acl apply`'s input, and many devices'
//!   grants made exactly that in one pass.
//! - [`file`]: those edits applied to the file on disk, locked and atomic.
//! - [`lint`]: what `validate` reports.
//! - [`audit`]: what `doctor` judges in the grants (too wide, shadowed,
//!   usernames that are no WoTT device).
//! - [`topic`]: filter validity and matching.

pub mod apply;
pub mod audit;
pub mod blocks;
pub mod desired;
pub mod document;
pub mod edit;
pub mod eval;
pub mod file;
pub mod lint;
pub mod topic;

use std::path::{Path, PathBuf};

pub use document::{Access, Document, Kind, Need};
pub use eval::{Client, Reason, Rules, Section, Verdict};

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::output::shell_word;

/// The name the tutorial (and the managed broker) gives the acl_file.
pub const FILE_NAME: &str = "permissions.acl";

/// Mode of a newly created ACL file: Mosquitto (uid 1883 in the container) reads it.
pub const NEW_FILE_MODE: u32 = 0o644;

#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// The file could not be read (for a command that only reads it).
    #[error(transparent)]
    Unreadable(crate::files::FileError),
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },
    /// The first line Mosquitto refuses, or the NUL byte's from which it
    /// reads nothing (`ignores_rest`: it starts, with the lines before).
    #[error("{}", refusal_message(path, *line, message, *ignores_rest))]
    Refused {
        path: PathBuf,
        line: usize,
        message: String,
        ignores_rest: bool,
    },
    /// `acl validate`'s "no": `errors` lines are wrong; `ignored_from` is
    /// the NUL byte's line when Mosquitto meets that one first.
    #[error("{}", invalid_message(path, *errors, *ignored_from))]
    Invalid {
        path: PathBuf,
        errors: usize,
        ignored_from: Option<usize>,
    },
    #[error(
        "`acl check` needs a topic name, not the filter {topic:?}: Mosquitto checks the topic of each message it delivers, never the SUBSCRIBE"
    )]
    FilterNotTopic { topic: String },
    #[error("invalid client ID {value:?}: {reason}")]
    ClientId { value: String, reason: String },
    #[error(
        "{}:{line} contains a NUL byte: Mosquitto ignores that line and every line after it, so a grant written after it would never apply",
        path.display()
    )]
    NulByte { path: PathBuf, line: usize },
    #[error("{} is 4 GiB or larger: too large for an ACL file", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} bad grant(s) in {input}; nothing was written", problems.len())]
    BadGrants {
        /// The input's name (`-` for stdin).
        input: String,
        problems: Vec<desired::Problem>,
    },
    #[error(
        "{input} lists no grants, and --exclusive would remove every device's grants from {}",
        path.display()
    )]
    NothingExclusive { input: String, path: PathBuf },
}

impl Diagnose for AclError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            AclError::File(e) | AclError::Unreadable(e) => return e.hint(),
            AclError::NotFound { path } => format!(
                "grant a first device with `wott-mqtt acl allow <DEVICE_ID> <TOPIC> --acl-file {}`, or pass the right --acl-file",
                shell_word(&path.display().to_string())
            ),
            AclError::Refused { path, .. } | AclError::Invalid { path, .. } => format!(
                "fix the line; `wott-mqtt acl validate --acl-file {}` lists every problem",
                shell_word(&path.display().to_string())
            ),
            AclError::FilterNotTopic { .. } => {
                "check a topic a publisher really uses, e.g. wott/temperature instead of wott/#"
                    .into()
            }
            AclError::ClientId { .. } => {
                "pass the client ID the device connects with, e.g. --client-id sensor-1".into()
            }
            AclError::TooLarge { .. } => "check that --acl-file names the ACL file".into(),
            AclError::BadGrants { problems, .. } => format!(
                "write one grant per line as `<device-id> <topic-filter> <read|write|readwrite>`, or a JSON array of {}; \
                 every entry is checked before the ACL file is touched{}",
                r#"{"device": ID, "topic": FILTER, "access": ACCESS}"#,
                if problems.iter().any(|p| p.not_wott) {
                    format!("; {}", crate::names::not_wott_hint())
                } else {
                    String::new()
                }
            ),
            AclError::NothingExclusive { .. } => {
                "list the devices that keep their grants, or remove devices one by one with \
                 `wott-mqtt acl revoke <DEVICE_ID>`"
                    .into()
            }
            AclError::NulByte { path, line } => format!(
                "remove the NUL byte from line {line} (e.g. `sed -i 's/\\x00//g' {}`), then grant again",
                path.display()
            ),
        })
    }

    fn details(&self) -> Vec<String> {
        match self {
            AclError::BadGrants { input, problems } => problems
                .iter()
                .map(|p| match p.element {
                    Some(i) => format!("{input}:{}: element [{i}]: {}", p.line, p.message),
                    None => format!("{input}:{}: {}", p.line, p.message),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Reading commands answer with 0 and 1 (`acl check`: allowed, denied;
    /// `acl validate`: accepted, refused), so a file they cannot use has a
    /// code of its own.
    fn exit_code(&self) -> ExitCode {
        match self {
            AclError::File(e) => e.exit_code(),
            AclError::FilterNotTopic { .. }
            | AclError::ClientId { .. }
            | AclError::BadGrants { .. }
            | AclError::NothingExclusive { .. } => ExitCode::Usage,
            AclError::NotFound { .. } => ExitCode::AclMissing,
            AclError::Unreadable(_) | AclError::TooLarge { .. } => ExitCode::AclUnreadable,
            AclError::Refused { .. } => ExitCode::AclRefused,
            AclError::Invalid { .. } | AclError::NulByte { .. } => ExitCode::Failure,
        }
    }
}

/// The lint code of a line with a NUL byte: Mosquitto starts with such a
/// file, but ignores that line and every line after it.
pub const NUL_BYTE: &str = "nul-byte";

fn refusal_message(path: &Path, line: usize, message: &str, ignores_rest: bool) -> String {
    if ignores_rest {
        format!("{}:{line}: {message}", path.display())
    } else {
        format!(
            "Mosquitto would refuse {}:{line}: {message}",
            path.display()
        )
    }
}

fn invalid_message(path: &Path, errors: usize, ignored_from: Option<usize>) -> String {
    match ignored_from {
        Some(line) => format!(
            "{} has {errors} line(s) in error: Mosquitto ignores it from line {line} on (a NUL byte)",
            path.display()
        ),
        None => format!("{} has {errors} line(s) Mosquitto refuses", path.display()),
    }
}

/// Checks a client ID as Mosquitto's CONNECT does: UTF-8 without control characters.
pub fn check_client_id(value: &str) -> Result<(), AclError> {
    let fail = |reason: &str| AclError::ClientId {
        value: value.chars().take(80).collect(),
        reason: reason.to_string(),
    };
    if value.is_empty() {
        return Err(fail(
            "it is empty; an empty client ID makes Mosquitto assign a random one",
        ));
    }
    if value.len() > topic::MAX_LEN {
        return Err(fail("it is longer than 65535 bytes"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(fail(&format!(
            "it contains the control character {c:?}, which Mosquitto refuses"
        )));
    }
    Ok(())
}

/// Parses the bytes of the ACL file at `path`.
pub fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<Document<'a>, AclError> {
    Document::parse(bytes).map_err(|_| AclError::TooLarge {
        path: path.to_path_buf(),
    })
}

/// A word-at-a-time multiplicative hash (as in rustc's FxHash): the ACL's
/// tables (`validate`, `apply`) hold tens of thousands of short keys from a local file, where
/// SipHash's flood resistance buys nothing and costs most of the time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WordHash(u64);

impl WordHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for WordHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut rest = [0u8; 8];
        rest[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(rest));
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A `HashMap` with [`WordHash`].
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<WordHash>>;

/// The first line Mosquitto refuses, as an error.
pub fn refusal(doc: &Document, path: &Path) -> Option<AclError> {
    let (index, invalid) = doc.first_invalid()?;
    let (code, message) = lint::explain(doc, index, invalid);
    Some(AclError::Refused {
        path: path.to_path_buf(),
        line: index + 1,
        message,
        ignores_rest: code == NUL_BYTE,
    })
}
