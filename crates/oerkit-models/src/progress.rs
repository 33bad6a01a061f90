//! Progress reporting on stderr (indicatif). Hidden in tests and when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// How fetching and verifying report progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Bars on stderr (indicatif hides them itself when stderr is not a terminal).
    pub fn stderr() -> Self {
        Self { visible: true }
    }

    /// No output at all.
    pub fn hidden() -> Self {
        Self { visible: false }
    }

    /// A byte-count bar of `total` bytes.
    pub(crate) fn bytes(&self, total: u64, message: String) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar
    }

    /// A spinner for work of unknown length (pip download).
    pub(crate) fn spinner(&self, message: String) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]") {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
