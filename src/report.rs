//! Progress on stderr (indicatif spinners on a terminal, plain lines otherwise) and the
//! rendering of results (text or JSON) on stdout.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Progress reporting. Cheap to clone; safe to use from concurrent tasks.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    multi: Option<MultiProgress>,
    quiet: bool,
}

/// One resource being worked on.
pub struct Step {
    bar: Option<ProgressBar>,
    label: String,
    progress: Progress,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let multi = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            inner: Arc::new(Inner { multi, quiet }),
        }
    }

    /// A one-line note.
    pub fn note(&self, message: impl AsRef<str>) {
        if self.inner.quiet {
            return;
        }
        match &self.inner.multi {
            Some(m) => {
                let _ = m.println(message.as_ref());
            }
            None => eprintln!("{}", message.as_ref()),
        }
    }

    pub fn step(&self, label: impl Into<String>, doing: &str) -> Step {
        let label = label.into();
        let bar = self.inner.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.clone());
            bar.set_message(doing.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        if bar.is_none() && !self.inner.quiet {
            eprintln!("{label}: {doing}");
        }
        Step {
            bar,
            label,
            progress: self.clone(),
        }
    }
}

impl Step {
    pub fn done(self, message: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                self.progress
                    .note(format!("✓ {} {}", self.label, message.as_ref()));
            }
            None => self
                .progress
                .note(format!("{}: {}", self.label, message.as_ref())),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// Prints a result once: JSON, or its text rendering.
pub fn print<T: serde::Serialize + std::fmt::Display>(output: Output, value: &T) {
    match output {
        Output::Json => match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot render the result as JSON: {e}"),
        },
        Output::Text => print!("{value}"),
    }
}
