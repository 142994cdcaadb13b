//! `modhost simulate`: an in-process cluster on a virtual clock (what `mesos-local` was for
//! Mesos), for watching what an allocator, hooks and isolators do to a workload.

mod chart;
mod engine;
pub mod report;
pub mod workload;

pub use chart::html;
pub use engine::{Progress, SimConfig, Simulation};

use modhost_abi::Allocator;

use modhost::{CreateError, ModuleManager};

/// The names of the built-in allocator (Mesos accepted the legacy `HierarchicalDRF` too).
pub const BUILT_IN_ALLOCATORS: [&str; 2] = ["hierarchical", "HierarchicalDRF"];

/// Why `--allocator` could not be honoured.
#[derive(Debug, thiserror::Error)]
#[error("Failed to create allocator '{name}': {cause}")]
pub struct AllocatorError {
    /// The name given.
    pub name: String,
    /// Why.
    pub cause: CreateError,
}

/// The allocator named by `--allocator`: the built-in DRF for `hierarchical`, else the
/// Allocator module of that name, or a Vm module's script through the adapter.
pub fn create_allocator(manager: &ModuleManager, name: &str) -> Result<Box<dyn Allocator>, AllocatorError> {
    if BUILT_IN_ALLOCATORS.contains(&name) {
        return Ok(Box::new(modhost_drf::HierarchicalDrf::default()));
    }
    modhost::script::create_allocator(manager, name).map_err(|cause| AllocatorError { name: name.to_owned(), cause })
}

/// Parses a duration the way Mesos's flags write them (`1secs`, `500ms`, `2mins`, `1hrs`,
/// `1days`, `1weeks`, `10us`, `10ns`), or a plain number of seconds; returns seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration (try 1secs or 500ms)"))?;
    let scale = match unit {
        "" | "s" | "secs" => 1.0,
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86400.0,
        "weeks" => 604800.0,
        other => return Err(format!("'{text}': unknown unit '{other}' (ns, us, ms, secs, mins, hrs, days, weeks)")),
    };
    let seconds = value * scale;
    if seconds > 0.0 && seconds.is_finite() {
        Ok(seconds)
    } else {
        Err(format!("'{text}' must be a positive duration"))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_like_mesos_flags() {
        for (text, seconds) in [("1secs", 1.0), ("500ms", 0.5), ("2mins", 120.0), ("1.5", 1.5), ("10us", 1e-5)] {
            let parsed = parse_duration(text).unwrap();
            assert!((parsed - seconds).abs() < 1e-12, "{text}: {parsed}");
        }
        for text in ["", "secs", "1parsecs", "0ms", "-1secs"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }
}
