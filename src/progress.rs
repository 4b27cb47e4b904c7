//! The terminal: every line ocitool prints, and the progress of a fleet-wide run.
//!
//! A run over many clusters shows a progress bar on stderr when stderr is a terminal, and one plain
//! `[i/n] cluster` line per cluster otherwise (CI logs, pipes, tests), so the same run reads well in
//! both. While a bar is drawn, a line printed around it would tear it, so all of ocitool's output
//! goes through [`out`] and [`err`] (and their kin), which hide the bar for the moment of printing
//! and write through [`crate::term`] (closed pipes, colour).
//!
//! This module only moves text: it never decides what to say and never sees secret values
//! unredacted — callers pass text through [`ocitool_core::redact`] first.

use crate::term::{self, Stream};
use indicatif::{ProgressBar, ProgressStyle};
use std::cell::RefCell;
use std::io::IsTerminal;

thread_local! {
    /// The bar of the run in progress, if one is drawn. Scripts run on one thread.
    static ACTIVE_BAR: RefCell<Option<ProgressBar>> = const { RefCell::new(None) };
}

/// Print a line on stdout without tearing a progress bar.
pub fn out(line: &str) {
    around_bar(|| term::line(Stream::Out, line));
}

/// Print a line on stderr without tearing a progress bar.
pub fn err(line: &str) {
    around_bar(|| term::line(Stream::Err, line));
}

/// Print `text` (its own newlines) on stdout without tearing a progress bar.
pub fn out_text(text: &str) {
    around_bar(|| term::write(Stream::Out, text));
}

/// Print `text` (its own newlines) on stderr without tearing a progress bar.
pub fn err_text(text: &str) {
    around_bar(|| term::write(Stream::Err, text));
}

/// `error: message` on stderr.
pub fn error(message: &str) {
    err(&format!("{} {message}", term::error_prefix()));
}

/// `warning: message` on stderr.
pub fn warning(message: &str) {
    err(&format!("{} {message}", term::warning_prefix()));
}

fn around_bar(print: impl FnOnce()) {
    let bar = ACTIVE_BAR.with(|active| active.borrow().clone());
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// An updating bar (stderr is a terminal).
    Bar,
    /// One `[i/n] unit` line per unit on stderr.
    Lines,
}

impl Display {
    /// A bar for a person at a terminal, plain lines for logs and pipes.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Display::Bar
        } else {
            Display::Lines
        }
    }
}

/// Progress through `total` units of work (clusters). Dropping it clears the bar.
pub struct Progress {
    total: usize,
    started: usize,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start(total: usize, display: Display) -> Self {
        let bar = (display == Display::Bar).then(|| {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
                .expect("the progress template is valid");
            bar.set_style(style);
            ACTIVE_BAR.with(|active| *active.borrow_mut() = Some(bar.clone()));
            bar
        });
        Progress {
            total,
            started: 0,
            bar,
        }
    }

    /// The next unit, `label`, begins; the line says so (`[i/n] label`).
    pub fn begin(&mut self, label: &str) -> String {
        self.started += 1;
        let line = format!("[{}/{}] {label}", self.started, self.total);
        match &self.bar {
            Some(bar) => {
                bar.set_position((self.started - 1) as u64);
                bar.set_message(label.to_string());
            }
            None => err(&line),
        }
        line
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            ACTIVE_BAR.with(|active| *active.borrow_mut() = None);
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_units_from_one() {
        let mut progress = Progress::start(3, Display::Lines);
        assert_eq!(progress.begin("acme/dev"), "[1/3] acme/dev");
        assert_eq!(progress.begin("acme/prod"), "[2/3] acme/prod");
    }

    #[test]
    fn a_bar_is_active_only_while_the_run_lasts() {
        let active = || ACTIVE_BAR.with(|a| a.borrow().is_some());
        {
            let mut progress = Progress::start(2, Display::Bar);
            progress.begin("acme/dev");
            assert!(active());
        }
        assert!(!active(), "dropping the progress clears the bar");
    }
}
