//! Progress bars per stage on a terminal; one line per finished stage otherwise (logs, CI).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Bars {
    current: Mutex<Option<(ProgressBar, Instant)>>,
    terminal: bool,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            current: Mutex::new(None),
            terminal: std::io::stderr().is_terminal(),
        }
    }
}

impl khop_engine::Progress for Bars {
    fn start(&self, stage: &str, total: Option<u64>) {
        let bar = if !self.terminal {
            ProgressBar::hidden()
        } else if let Some(total) = total {
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            )
        } else {
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:>24} {spinner} {human_pos} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        bar.set_prefix(stage.to_owned());
        if let Ok(mut current) = self.current.lock() {
            *current = Some((bar, Instant::now()));
        }
    }

    fn advance(&self, amount: u64) {
        if let Ok(current) = self.current.lock()
            && let Some((bar, _)) = current.as_ref()
        {
            bar.inc(amount);
        }
    }

    fn finish(&self, stage: &str) {
        if let Ok(mut current) = self.current.lock()
            && let Some((bar, started)) = current.take()
        {
            bar.finish();
            if !self.terminal {
                eprintln!(
                    "{stage:>24} done in {:.2} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}
