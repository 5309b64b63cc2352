//! Log lines in the original's format, on standard error:
//! `[2019-02-03 16:35:20,947]    INFO      add (new) A for x.example : 5.6.7.8`.
//! Only this crate's messages are shown (dependencies log through `tracing`, which
//! has no subscriber, or below our level). Secrets never reach a log call: they
//! are [`crate::secret::Secret`]s, which print `***`.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct OriginalFormat {
    level: LevelFilter,
}

impl Log for OriginalFormat {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level && metadata.target().starts_with("cryptdomainmgr")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
        let line = format!("[{now}]    {level:<10}{}", record.args());
        crate::progress::above_bars(|| {
            // A closed stderr must not stop the run.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }

    fn flush(&self) {}
}

/// Installs the logger. `verbosity` 0 is INFO; each `-v` adds a level, each `-q`
/// removes one.
pub fn init(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-2 => LevelFilter::Error,
        -1 => LevelFilter::Warn,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    if log::set_boxed_logger(Box::new(OriginalFormat { level })).is_ok() {
        log::set_max_level(level);
    }
}
