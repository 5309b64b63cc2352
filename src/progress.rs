//! Progress of long work: generating DH parameters, a round with many steps
//! (orders, keys, deploys of an `--auto` run). When standard error is a
//! terminal, a spinner or bar (`indicatif`) shows it; log lines are written
//! above the bars. When it is not (cron, systemd, a log file), a plain INFO
//! line says every [`PLAIN_EVERY`] that the work goes on, so a log never
//! shows minutes of silence.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain line reports work that goes on.
pub(crate) const PLAIN_EVERY: Duration = Duration::from_secs(30);
/// Rounds with fewer steps than this show no bar.
pub(crate) const MIN_STEPS: usize = 4;

/// The bars on the terminal, when standard error is one.
fn terminal() -> Option<&'static MultiProgress> {
    static MULTI: OnceLock<Option<MultiProgress>> = OnceLock::new();
    MULTI
        .get_or_init(|| {
            std::io::stderr()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        })
        .as_ref()
}

/// Runs `write` (a log line to standard error) with the bars hidden, so the
/// line is not drawn over them.
pub(crate) fn above_bars(write: impl FnOnce()) {
    match terminal() {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

/// True when a plain line is due: `every` has passed since the last one.
pub(crate) fn plain_line_due(last: Duration, now: Duration, every: Duration) -> bool {
    now.saturating_sub(last) >= every
}

/// Runs `work` while a spinner (terminal) or a line every [`PLAIN_EVERY`]
/// (log) says `what` is under way.
pub(crate) async fn while_running<T>(what: &str, work: impl Future<Output = T>) -> T {
    let spinner = terminal().map(|multi| {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let started = Instant::now();
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            () = tokio::time::sleep(PLAIN_EVERY), if spinner.is_none() => {
                log::info!("{what}: still at it after {} s", started.elapsed().as_secs());
            }
        }
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    result
}

/// Counted work: `total` steps, shown as a bar on a terminal; in a log, a
/// line every [`PLAIN_EVERY`] as steps finish.
pub(crate) struct Steps {
    what: String,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    state: Mutex<(u64, Duration)>,
}

impl Steps {
    /// `None` for fewer than [`MIN_STEPS`] steps: short work needs no report.
    pub(crate) fn start(what: &str, total: usize) -> Option<Steps> {
        if total < MIN_STEPS {
            return None;
        }
        let total = total as u64;
        let bar = terminal().map(|multi| {
            let bar = multi.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(what.to_string());
            bar
        });
        Some(Steps {
            what: what.to_string(),
            total,
            bar,
            started: Instant::now(),
            state: Mutex::new((0, Duration::ZERO)),
        })
    }

    /// One step finished.
    pub(crate) fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.0 += 1;
        let now = self.started.elapsed();
        if state.0 < self.total && plain_line_due(state.1, now, PLAIN_EVERY) {
            state.1 = now;
            log::info!(
                "{}: {} of {} done after {} s",
                self.what,
                state.0,
                self.total,
                now.as_secs()
            );
        }
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Calls [`Steps::done`] when there is a report.
pub(crate) fn step_done(steps: &Option<Steps>) {
    if let Some(steps) = steps {
        steps.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_every_period() {
        let every = Duration::from_secs(30);
        assert!(!plain_line_due(
            Duration::ZERO,
            Duration::from_secs(29),
            every
        ));
        assert!(plain_line_due(
            Duration::ZERO,
            Duration::from_secs(30),
            every
        ));
        assert!(!plain_line_due(
            Duration::from_secs(30),
            Duration::from_secs(45),
            every
        ));
    }

    #[test]
    fn short_work_has_no_report() {
        assert!(Steps::start("steps", MIN_STEPS - 1).is_none());
        assert!(Steps::start("steps", MIN_STEPS).is_some());
    }
}
