//! A small stderr logger for the library's warnings and the scripts' output (which the
//! library logs at info level, tagged with the module), with a cap so a misbehaving module
//! cannot flood the terminal.

use std::sync::atomic::{AtomicU64, Ordering};

use log::{Level, LevelFilter, Metadata, Record};

/// Lines printed before the rest are only counted.
const CAP: u64 = 50;

struct Stderr {
    printed: AtomicU64,
    dropped: AtomicU64,
}

static LOGGER: Stderr = Stderr { printed: AtomicU64::new(0), dropped: AtomicU64::new(0) };

impl log::Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if self.printed.fetch_add(1, Ordering::Relaxed) < CAP {
            let level = if record.level() == Level::Warn { "warning" } else { "info" };
            eprintln!("{level}: {}", record.args());
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Says how many warnings were not printed, if any.
pub fn finish() {
    let dropped = LOGGER.dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        eprintln!("warning: {dropped} further warning(s) not shown");
    }
}
