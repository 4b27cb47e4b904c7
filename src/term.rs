//! The two streams ocitool writes to, stdout and stderr: the only code that touches them.
//!
//! Everything printed — script `print`, host messages, diffs, `ocitool api`, completions — ends in
//! [`write`], which
//! - stops quietly when the reader has gone away (`ocitool run … | head`): Rust ignores SIGPIPE, so
//!   a write to a closed pipe fails with `BrokenPipe`, and `println!` would panic on it (exit 101,
//!   or 134 with a backtrace). As ripgrep does, a closed pipe is a graceful stop of the output, not
//!   an error (ripgrep's `main`: "if err.kind() == io::ErrorKind::BrokenPipe { return exit 0 }"):
//!   the stream is marked closed and later writes to it are dropped. The run itself goes on, so a
//!   run that staged changes still applies them and its exit status still says how it went;
//! - colours only where colour is wanted, through `anstream`: on a terminal, unless `NO_COLOR` is
//!   set or `--color=never` was given (<https://no-color.org>; `--color=always` overrides both).
//!   Colour is used sparingly: the `error:`/`warning:` prefixes and diff lines.
//!
//! This module moves bytes and paints prefixes; it never decides what to say, and it never sees
//! unredacted secrets (callers redact first).

use anstyle::{AnsiColor, Style};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// One of the two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
/// A write to stdout failed for a reason other than a closed pipe (e.g. a full disk).
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

impl Stream {
    fn closed(self) -> &'static AtomicBool {
        match self {
            Stream::Out => &STDOUT_CLOSED,
            Stream::Err => &STDERR_CLOSED,
        }
    }
}

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    Always,
    Never,
}

/// Apply `--color` for the rest of the process.
pub fn set_color(when: ColorWhen) {
    let choice = match when {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
}

/// Write `text` as it is (it may carry styles; they are stripped where colour is off).
pub fn write(stream: Stream, text: &str) {
    if stream.closed().load(Ordering::Relaxed) {
        return;
    }
    let result = match stream {
        Stream::Out => write_all(&mut anstream::stdout().lock(), text),
        Stream::Err => write_all(&mut anstream::stderr().lock(), text),
    };
    if let Err(err) = result {
        stream.closed().store(true, Ordering::Relaxed);
        if stream == Stream::Out && err.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            write(
                Stream::Err,
                &format!("{} cannot write to stdout: {err}\n", error_prefix()),
            );
        }
    }
}

fn write_all(w: &mut impl Write, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.flush()
}

/// Write `line` and a newline.
pub fn line(stream: Stream, line: &str) {
    write(stream, &format!("{line}\n"));
}

/// Whether stdout failed for a reason other than a closed pipe: the output is incomplete, so the
/// run must not report success.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();

/// `error:`, red and bold where colour is on.
pub fn error_prefix() -> String {
    paint(ERROR, "error:")
}

/// `warning:`, yellow and bold where colour is on.
pub fn warning_prefix() -> String {
    paint(WARNING, "warning:")
}

/// A unified diff with its `+`/`-` lines green/red and hunk headers cyan (file headers bold).
pub fn paint_diff(diff: &str) -> String {
    diff.split_inclusive('\n')
        .map(|line| {
            let (body, end) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            let style = if body.starts_with("+++") || body.starts_with("---") {
                Style::new().bold()
            } else if body.starts_with('+') {
                AnsiColor::Green.on_default()
            } else if body.starts_with('-') {
                AnsiColor::Red.on_default()
            } else if body.starts_with("@@") {
                AnsiColor::Cyan.on_default()
            } else {
                return line.to_string();
            };
            format!("{}{end}", paint(style, body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_keeps_its_text_and_lines_when_painted() {
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same";
        let painted = paint_diff(diff);
        let stripped = anstream::adapter::strip_str(&painted).to_string();
        assert_eq!(stripped, diff);
        assert!(painted.contains(&paint(AnsiColor::Green.on_default(), "+new")));
        assert!(painted.contains(&paint(AnsiColor::Red.on_default(), "-old")));
    }
}
