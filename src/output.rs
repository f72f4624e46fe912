//! Everything the user sees: results on stdout, messages on stderr.
//!
//! A command returns an [`Outcome`]: a [`Report`] (rendered as text for people
//! or as exactly one JSON document with `--json`), and possibly the error it
//! ended with. [`Output::finish`] is the one place that prints results and
//! errors (`error: …` / `hint: …`) and turns them into an exit code. Warnings and
//! progress go to stderr, never to stdout, so `--json` and plain `whoami` stay
//! machine-readable.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use console::Style;
use serde::Serialize;

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;

/// `--color`: when to use ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self, stream_is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// Applies colour, or does nothing when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    enabled: bool,
}

impl Paint {
    pub fn new(enabled: bool) -> Self {
        Paint { enabled }
    }

    fn apply(&self, style: Style, text: &str) -> String {
        if self.enabled {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    pub fn good(&self, text: &str) -> String {
        self.apply(Style::new().green(), text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.apply(Style::new().red().bold(), text)
    }

    pub fn warn(&self, text: &str) -> String {
        self.apply(Style::new().yellow().bold(), text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.apply(Style::new().bold(), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.apply(Style::new().dim(), text)
    }

    /// `✓` in green or `✗` in red.
    pub fn mark(&self, ok: bool) -> String {
        if ok {
            self.good("✓")
        } else {
            self.bad("✗")
        }
    }
}

/// Text for people. JSON comes from `Serialize`.
pub trait Human {
    /// The text printed on stdout, ending with a newline (or empty).
    fn human(&self, paint: Paint) -> String;
}

/// A command's result, printable either way.
pub trait Report {
    fn json(&self) -> serde_json::Value;
    fn human(&self, paint: Paint) -> String;
}

impl<T: Serialize + Human> Report for T {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({ "error": { "message": format!("cannot encode the result: {e}") } })
        })
    }

    fn human(&self, paint: Paint) -> String {
        Human::human(self, paint)
    }
}

/// How a command ended: what it reports, and the error it ended with, if any.
#[must_use]
pub struct Outcome {
    report: Box<dyn Report>,
    error: Option<Box<dyn Diagnose>>,
    code: ExitCode,
    /// The command printed its output as it went (one line per event):
    /// nothing is left to print but an error.
    streamed: bool,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("report", &self.report.json())
            .field("error", &self.error.as_ref().map(ToString::to_string))
            .field("code", &self.code)
            .finish()
    }
}

impl Outcome {
    /// A successful result.
    pub fn report(report: impl Report + 'static) -> Self {
        Outcome {
            report: Box::new(report),
            error: None,
            code: ExitCode::Success,
            streamed: false,
        }
    }

    /// A command that printed as it went, such as `server watch`'s log
    /// (lines, or JSON lines): nothing more is printed at the end.
    pub fn streamed() -> Self {
        Outcome {
            streamed: true,
            ..Outcome::report(Streamed)
        }
    }

    /// A result that still ends with an error, e.g. `whoami --long` on a key
    /// that does not match: the user sees everything, then the error.
    pub fn with_error(mut self, error: impl Diagnose + 'static) -> Self {
        self.code = error.exit_code();
        self.error = Some(Box::new(error));
        self
    }

    /// A result whose exit code carries the answer, e.g. `acl check` → 1 when denied.
    pub fn with_code(mut self, code: ExitCode) -> Self {
        self.code = code;
        self
    }
}

/// What a streamed command reports at the end: nothing.
#[derive(Serialize)]
struct Streamed;

impl Human for Streamed {
    fn human(&self, _: Paint) -> String {
        String::new()
    }
}

/// The global output settings: `--json`, `-q`, `-v`, `--color`.
#[derive(Debug, Clone)]
pub struct Output {
    json: bool,
    quiet: bool,
    verbose: u8,
    stdout: Paint,
    stderr: Paint,
    stderr_is_terminal: bool,
    /// Spinners and bars on stderr; messages are printed above them. Only
    /// when [`Output::interactive_progress`].
    progress: Option<indicatif::MultiProgress>,
}

impl Output {
    pub fn new(json: bool, quiet: bool, verbose: u8, color: ColorChoice) -> Self {
        let stderr_is_terminal = io::stderr().is_terminal();
        Output {
            json,
            quiet,
            verbose,
            stdout: Paint::new(!json && color.enabled(io::stdout().is_terminal())),
            stderr: Paint::new(color.enabled(stderr_is_terminal)),
            stderr_is_terminal,
            progress: None,
        }
        .with_progress()
    }

    fn with_progress(mut self) -> Self {
        if self.interactive_progress() {
            self.progress = Some(indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ));
        }
        self
    }

    /// Draws `bar` with the others on stderr, below the messages; a hidden
    /// bar when progress is not drawn (no terminal, `-q`, `--json`).
    pub fn add_progress(&self, bar: indicatif::ProgressBar) -> indicatif::ProgressBar {
        match &self.progress {
            Some(multi) => multi.add(bar),
            None => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
                bar
            }
        }
    }

    /// A spinner saying `message` on a terminal, gone when dropped;
    /// elsewhere (and with `--json`) the message is a plain line on stderr,
    /// unless `-q`.
    pub fn spinner(&self, message: &str) -> Spinner {
        if self.progress.is_none() {
            self.note(message);
            return Spinner(indicatif::ProgressBar::hidden());
        }
        let bar = self.add_progress(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(80));
        Spinner(bar)
    }

    /// Prints a line on stderr, above any spinner or bar.
    fn eprint(&self, line: &str) {
        match &self.progress {
            Some(multi) => multi.suspend(|| write_stderr(line)),
            None => write_stderr(line),
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Whether progress bars and spinners may be drawn (stderr is a terminal, not `-q`, not `--json`).
    pub fn interactive_progress(&self) -> bool {
        self.stderr_is_terminal && !self.quiet && !self.json
    }

    /// Colour for stdout (none with `--json` or when it is not a terminal).
    pub fn paint_stdout(&self) -> Paint {
        self.stdout
    }

    /// Colour for stderr.
    pub fn paint_stderr(&self) -> Paint {
        self.stderr
    }

    /// `warning: …` on stderr, unless `-q`.
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            self.eprint(&format!("{} {}", self.stderr.warn("warning:"), message));
        }
    }

    /// A progress or status line on stderr, unless `-q`.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            self.eprint(message);
        }
    }

    /// A line on stderr shown with `-v` (level 1) or `-vv` (level 2).
    pub fn debug(&self, level: u8, message: &str) {
        if self.verbose >= level {
            self.eprint(&self.stderr.dim(message));
        }
    }

    /// Prints the outcome of a command and returns the process exit code.
    pub fn finish<E: Diagnose + 'static>(&self, result: Result<Outcome, E>) -> ExitCode {
        let (report, error, code) = match result {
            Ok(outcome) if outcome.streamed && outcome.error.is_none() => return outcome.code,
            Ok(outcome) => (Some(outcome.report), outcome.error, outcome.code),
            Err(error) => {
                let code = error.exit_code();
                (None, Some(Box::new(error) as Box<dyn Diagnose>), code)
            }
        };
        let printed = if self.json {
            self.print_json(report.as_deref(), error.as_deref(), code)
        } else {
            match &report {
                Some(report) => write_stdout(&report.human(self.stdout)),
                None => Ok(()),
            }
        };
        if let Some(error) = &error {
            self.print_error(error.as_ref());
        }
        if code == ExitCode::Interrupted && self.stderr_is_terminal {
            // The terminal echoed `^C` where the cursor was: end that line,
            // so the shell's prompt starts on a new one.
            write_stderr("");
        }
        match printed {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                write_stderr(&format!("error: cannot write to stdout: {e}"));
                ExitCode::Failure
            }
            _ => code,
        }
    }

    fn print_json(
        &self,
        report: Option<&dyn Report>,
        error: Option<&dyn Diagnose>,
        code: ExitCode,
    ) -> io::Result<()> {
        let mut doc = report.map_or_else(|| serde_json::json!({}), Report::json);
        if let serde_json::Value::Object(map) = &mut doc {
            if let Some(error) = error {
                let mut json =
                    serde_json::json!({ "message": error.to_string(), "hint": error.hint() });
                let details = error.details();
                if !details.is_empty() {
                    json["details"] = details.into();
                }
                map.insert("error".into(), json);
            }
            map.insert("exit_code".into(), code.code().into());
        }
        let mut text = serde_json::to_string_pretty(&doc).map_err(io::Error::other)?;
        text.push('\n');
        write_stdout(&text)
    }

    /// `error: …` and `hint: …` on stderr. Errors are shown even with `-q`;
    /// an interruption (Ctrl-C) is not an error to explain.
    pub fn print_error(&self, error: &dyn Diagnose) {
        if error.exit_code() == ExitCode::Interrupted {
            return;
        }
        let p = self.stderr;
        write_stderr(&format!(
            "{} {}",
            p.bad("error:"),
            sanitize(&error.to_string())
        ));
        for detail in error.details() {
            write_stderr(&format!("  {}", sanitize(&detail)));
        }
        if let Some(hint) = error.hint() {
            write_stderr(&format!("{} {}", p.bold("hint:"), sanitize(&hint)));
        }
    }
}

/// A spinner from [`Output::spinner`]; it disappears when dropped, also
/// when the work it shows is cancelled.
#[derive(Debug)]
pub struct Spinner(indicatif::ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// One line on stderr. A closed or full stderr is not worth failing a
/// command over (`eprintln!` would panic): the line is dropped.
pub fn write_stderr(line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

fn write_stdout(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// At most `max` characters of `text`, then `… (N bytes)`: one 10,000-character
/// line from a file must not bury the message that quotes it.
pub fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..cut], text.len())),
    }
}

/// Escapes control characters so that text read from files or certificates
/// cannot move the cursor, clear the screen or forge output lines, and
/// Unicode format characters (bidirectional overrides such as U+202E,
/// zero-width characters), which make text read other than it is. Newlines
/// stay: for text of several lines. A single value goes through
/// [`sanitize_field`].
pub fn sanitize(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n')
}

/// [`sanitize`] for a single value (a name, a certificate's subject): a
/// newline in it is escaped too, so it cannot start a line of its own.
pub fn sanitize_field(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() || is_format(c)) && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Unicode's format characters (category Cf) that terminals honour or
/// that hide text: bidirectional marks, embeddings, overrides and isolates,
/// zero-width characters, the byte-order mark, interlinear annotations and
/// tags.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// `sudo ` for a user who is not root, and nothing in a root shell (which
/// may have no sudo at all): the start of a printed command that needs root.
pub fn sudo() -> &'static str {
    if rustix::process::geteuid().is_root() {
        ""
    } else {
        "sudo "
    }
}

/// `value` as one word of a shell command: as it is when it holds only
/// characters no shell treats specially, else in single quotes. Every value
/// in a command printed for the user to run goes through this, so a
/// certificate's CN or a path cannot add a second command.
pub fn shell_word(value: &str) -> Cow<'_, str> {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("'{}'", value.replace('\'', "'\\''")))
    }
}

/// `2d 4h`, `3h 12m`, `45s`: a duration the way people read expiry times.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_long_text_and_says_how_long_it_was() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("ééééé", 5), "ééééé");
        assert_eq!(excerpt("ééééé", 2), "éé… (10 bytes)");
    }

    #[test]
    fn sanitize_escapes_terminal_controls_only() {
        assert_eq!(sanitize("plain ünïcode"), "plain ünïcode");
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(sanitize("tab\there"), "tab\\there");
        assert_eq!(sanitize("two\nlines"), "two\nlines");
        assert_eq!(sanitize("abc\u{202E}fed"), "abc\\u{202e}fed");
        assert_eq!(sanitize("zero\u{200B}width"), "zero\\u{200b}width");
        assert_eq!(sanitize_field("two\nlines"), "two\\nlines");
        assert_eq!(
            sanitize_field("CN=a\u{1b}]0;title\u{7}"),
            "CN=a\\u{1b}]0;title\\u{7}"
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/opt/wott/mosquitto"), "/opt/wott/mosquitto");
        assert_eq!(shell_word("a.d.wott.local"), "a.d.wott.local");
        assert_eq!(shell_word("my dir"), "'my dir'");
        assert_eq!(shell_word("a;touch${IFS}/tmp/x;"), "'a;touch${IFS}/tmp/x;'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(3 * 3600 + 12 * 60), "3h 12m");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600 + 5), "2d 4h");
        assert_eq!(human_duration(-90), "1m 30s");
    }

    #[test]
    fn no_color_and_never_turn_colour_off() {
        assert!(!ColorChoice::Never.enabled(true));
        assert!(ColorChoice::Always.enabled(false));
        assert!(!ColorChoice::Auto.enabled(false));
        assert_eq!(Paint::new(false).mark(true), "✓");
        assert!(Paint::new(true).mark(false).contains("\x1b["));
    }
}
