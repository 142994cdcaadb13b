//! The plugin's counters: calls, refusals, errors, timeouts, reloads, the latency of a call
//! (p50, p99, mean) and what the shadows did, written as JSON to `job_submit_modhost.stats.json` in slurmctld's
//! StateSaveLocation at most once a second, so that they can be read while slurmctld runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shadow::Counters;

/// Latency buckets: 1 us to about 17 s, four per power of two.
const BUCKETS: usize = 4 * 24;

pub(crate) struct Stats {
    pub(crate) calls: u64,
    pub(crate) refusals: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) reloads: u64,
    pub(crate) reloads_failed: u64,
    /// The shadows' counters, when the manifest has shadows.
    pub(crate) shadow: Option<Arc<Counters>>,
    histogram: [u64; BUCKETS],
    /// The calls' summed time, for their mean.
    total: Duration,
    path: Option<PathBuf>,
    written: Option<Instant>,
}

/// The bucket of a latency: its log2 in quarters, from 1 us.
fn bucket(latency: Duration) -> usize {
    let us = latency.as_secs_f64() * 1e6;
    if us <= 1.0 { 0 } else { ((us.log2() * 4.0) as usize).min(BUCKETS - 1) }
}

/// The upper bound of a bucket, in microseconds.
fn bound(bucket: usize) -> f64 {
    2f64.powf((bucket + 1) as f64 / 4.0)
}

impl Stats {
    pub(crate) fn new(state_dir: Option<&Path>) -> Stats {
        Stats {
            calls: 0,
            refusals: 0,
            errors: 0,
            timeouts: 0,
            reloads: 0,
            reloads_failed: 0,
            shadow: None,
            histogram: [0; BUCKETS],
            total: Duration::ZERO,
            path: state_dir.map(|d| d.join("job_submit_modhost.stats.json")),
            written: None,
        }
    }

    /// Counts a call, and writes the file when the last write is a second old.
    pub(crate) fn record(&mut self, latency: Duration) {
        self.calls += 1;
        self.histogram[bucket(latency)] += 1;
        self.total += latency;
        if self.written.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            self.written = Some(Instant::now());
            self.write();
        }
    }

    /// The latency under which `fraction` of the calls finished (a bucket's upper bound,
    /// within 19 %), in microseconds.
    fn quantile(&self, fraction: f64) -> f64 {
        let total: u64 = self.histogram.iter().sum();
        let wanted = (total as f64 * fraction).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return bound(i);
            }
        }
        0.0
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mean = if self.calls == 0 { 0.0 } else { self.total.as_secs_f64() * 1e6 / self.calls as f64 };
        let mut json = serde_json::json!({
            "calls": self.calls,
            "refusals": self.refusals,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "reloads": self.reloads,
            "reloads_failed": self.reloads_failed,
            "latency_p50_us": self.quantile(0.5),
            "latency_p99_us": self.quantile(0.99),
            "latency_mean_us": mean,
        });
        if let Some(shadow) = &self.shadow {
            json["shadow"] = shadow.to_json();
        }
        json
    }

    /// Writes the file beside, then renames it over: a reader never sees half of it.
    pub(crate) fn write(&self) {
        let Some(path) = &self.path else { return };
        let staged = path.with_extension("json.new");
        let text = format!("{:#}\n", self.to_json());
        if let Err(e) = std::fs::write(&staged, text).and_then(|()| std::fs::rename(&staged, path)) {
            log::warn!("cannot write {}: {e}", path.display());
        }
    }
}

impl Drop for Stats {
    /// The last figures are written when the plugin stops.
    fn drop(&mut self) {
        self.write();
    }
}
