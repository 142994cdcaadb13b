//! A small stderr logger for the library's warnings and the scripts' output (which the
//! library logs at info level, tagged with the module), with a cap so a misbehaving module
//! cannot flood the terminal.

use std::sync::atomic::{AtomicU64, Ordering};

use log::{Level, LevelFilter, Metadata, Record};

/// Lines printed before the rest are only counted, unless `MODHOST_LOG_LIMIT` says otherwise.
const DEFAULT_CAP: u64 = 50;

/// The environment variable that sets the cap (`0` prints every line).
const CAP_VARIABLE: &str = "MODHOST_LOG_LIMIT";

struct Stderr {
    cap: AtomicU64,
    printed: AtomicU64,
    dropped: AtomicU64,
}

static LOGGER: Stderr =
    Stderr { cap: AtomicU64::new(DEFAULT_CAP), printed: AtomicU64::new(0), dropped: AtomicU64::new(0) };

impl log::Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if self.printed.fetch_add(1, Ordering::Relaxed) < self.cap.load(Ordering::Relaxed) {
            let level = if record.level() == Level::Warn { "warning" } else { "info" };
            eprintln!("{level}: {}", record.args());
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once), with the cap `MODHOST_LOG_LIMIT` gives; a value that is not a
/// number is an error rather than a silent default.
pub fn install() -> anyhow::Result<()> {
    if let Ok(text) = std::env::var(CAP_VARIABLE) {
        let cap: u64 = text
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{CAP_VARIABLE}={text}: expected a number of lines (0 for no limit)"))?;
        LOGGER.cap.store(if cap == 0 { u64::MAX } else { cap }, Ordering::Relaxed);
    }
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    Ok(())
}

/// Says how many warnings were not printed, if any.
pub fn finish() {
    let dropped = LOGGER.dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        eprintln!("warning: {dropped} further log line(s) not shown ({CAP_VARIABLE}=0 shows them all)");
    }
}
