//! A command line clap refuses, reported like every other error.
//!
//! Without `--json`, clap prints its own usage error and exits 2. With
//! `--json` anywhere on the command line a script reads stdout, so every
//! refusal becomes the one JSON document every command prints, with
//! `exit_code` and `error: {message, hint}` (and `error:`/`hint:` on
//! stderr). An argument that is not UTF-8 is named here in both cases:
//! clap does not say which one it was.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::CommandFactory;
use clap::error::ErrorKind;

use crate::cli::Cli;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::output::{ColorChoice, Output};

/// Reports `error`, clap's refusal of the process's arguments, and returns the exit code.
pub fn refused(error: clap::Error) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let json = wants_json(&args);
    let usage = if error.kind() == ErrorKind::InvalidUtf8 {
        not_utf8(&args)
    } else if json && error.use_stderr() {
        from_clap(&error, &args)
    } else {
        // Help, --version, and usage errors without --json: clap's own text.
        error.exit()
    };
    Output::new(json, false, 0, ColorChoice::Auto).finish(Err(usage))
}

/// `--json` before any `--` (after it, every word is a value).
fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

fn not_utf8(args: &[OsString]) -> Error {
    let bad: Vec<String> = args
        .iter()
        .filter(|a| a.to_str().is_none())
        .map(|a| escape_bytes(a.as_bytes()))
        .collect();
    Error::usage(
        format!("the argument \"{}\" is not UTF-8 text", bad.join("\", \"")),
        "device IDs, topics and client IDs are UTF-8; re-type the value, or convert it \
         (e.g. with `iconv -t UTF-8`)"
            .to_string(),
    )
}

/// Bytes as text, invalid UTF-8 shown as `\xNN`.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// clap's message (its `error: …` paragraph on one line) and a hint made
/// of its tips and the `--help` of the command that was being parsed.
fn from_clap(error: &clap::Error, args: &[OsString]) -> Error {
    let text = error.render().to_string();
    let path = command_path(args);
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| {
            p.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let message = paragraphs
        .iter()
        .find_map(|p| p.strip_prefix("error: "))
        .or(paragraphs.first().map(String::as_str))
        .unwrap_or("the command line is incomplete")
        .to_string();
    let mut hint: Vec<String> = paragraphs
        .iter()
        .filter_map(|p| p.strip_prefix("tip: "))
        .map(str::to_string)
        .collect();
    hint.push(format!("see `{path} --help`"));
    Error::usage(message, hint.join("; "))
}

/// The (sub)command the arguments name, e.g. `wott-mqtt acl check`.
fn command_path(args: &[OsString]) -> String {
    let mut command = Cli::command();
    let mut path = vec![command.get_name().to_string()];
    for arg in args.iter().take_while(|a| *a != "--") {
        let Some(word) = arg.to_str() else { continue };
        if word.starts_with('-') {
            continue;
        }
        let Some(sub) = command.find_subcommand(word).cloned() else {
            continue;
        };
        path.push(sub.get_name().to_string());
        command = sub;
    }
    path.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn json_counts_only_before_the_end_of_options() {
        assert!(wants_json(&os(&["check", "--json"])));
        assert!(wants_json(&os(&["--json", "acl", "list"])));
        assert!(!wants_json(&os(&["acl", "check", "--", "--json", "t"])));
        assert!(!wants_json(&os(&["check", "--jsonx"])));
    }

    #[test]
    fn the_command_path_follows_subcommands_past_options() {
        let path = command_path(&os(&["--cert-dir", "/x", "acl", "check", "self"]));
        assert_eq!(path, "wott-mqtt acl check");
        assert_eq!(command_path(&os(&["--json", "hosts"])), "wott-mqtt hosts");
        assert_eq!(command_path(&os(&["bogus"])), "wott-mqtt");
    }

    #[test]
    fn invalid_utf8_is_shown_escaped() {
        assert_eq!(escape_bytes(b"ab\xffc"), "ab\\xffc");
    }
}
