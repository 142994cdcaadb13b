//! The Vm module's parameters.

use std::path::PathBuf;
use std::time::Duration;

use modhost_abi::{CallError, Parameters};

/// What a Lua Vm is created with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The script (required).
    pub script: PathBuf,
    /// Restricted standard library (default on).
    pub sandbox: bool,
    /// Bytes the Lua state may allocate (default 64 MiB).
    pub memory_limit: usize,
    /// Longest a call may run (default 1000 ms).
    pub timeout: Duration,
    /// Extra `require` patterns (`/path/?.lua`), besides the script's own folder.
    pub package_path: Vec<String>,
    /// Messages reach the script as views read on demand (`messages=views`), not as tables
    /// (`messages=tables`, the default).
    pub views: bool,
    /// Lua source run in the script's environment before the script, each time it is loaded
    /// (`prelude`): what a host that embeds scripts of a known convention gives every script
    /// (a `slurm` table, say). Its chunk counts as the bridge's own, so errors and timeouts
    /// name the script's lines, not the prelude's.
    pub prelude: Option<String>,
    /// Lua's generational collector (`gc=generational`) rather than the incremental one
    /// (`gc=incremental`). The default follows `messages`: generational with views, which
    /// are for hooks (short calls whose garbage dies young), incremental with tables, where
    /// an allocator policy keeps much of what it builds (measured in BENCHMARKS.md).
    pub generational_gc: bool,
}

/// Parameter names this module reads; any other is an error (a misspelt limit must not
/// silently become the default). `kind`, `fallback`, `reload` and `reload_poll_ms` belong to the
/// host's adapter; `on_error` to the hosts that embed it (the Slurm plugin).
const KNOWN: [&str; 13] = [
    "script",
    "prelude",
    "sandbox",
    "memory_limit",
    "timeout_ms",
    "package_path",
    "messages",
    "gc",
    "kind",
    "fallback",
    "reload",
    "reload_poll_ms",
    "on_error",
];

fn bad(key: &str, value: &str, expected: &str) -> CallError {
    CallError::failed(format!("parameter {key}={value}: expected {expected}"))
}

/// `64MiB`, `512KiB`, `1GiB` or a number of bytes.
fn parse_size(key: &str, value: &str) -> Result<usize, CallError> {
    let (number, scale) = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        .into_iter()
        .find_map(|(suffix, scale)| value.strip_suffix(suffix).map(|n| (n, scale)))
        .unwrap_or((value, 1));
    let n: usize = number.trim().parse().map_err(|_| bad(key, value, "a size such as 64MiB"))?;
    n.checked_mul(scale).filter(|n| *n >= 1 << 20).ok_or_else(|| bad(key, value, "a size of at least 1MiB"))
}

impl Settings {
    /// Reads the parameters.
    pub fn from_parameters(parameters: &Parameters) -> Result<Settings, CallError> {
        if let Some(p) = parameters.iter().find(|p| !KNOWN.contains(&p.key.as_str())) {
            return Err(CallError::failed(format!("unknown parameter '{}' (known: {})", p.key, KNOWN.join(", "))));
        }
        let script = parameters.get("script").ok_or_else(|| CallError::failed("parameter 'script' is required"))?;
        let sandbox = match parameters.get("sandbox").unwrap_or("true") {
            "true" | "on" => true,
            "false" | "off" => false,
            other => return Err(bad("sandbox", other, "true or false")),
        };
        let memory_limit = parameters.get("memory_limit").map_or(Ok(64 << 20), |v| parse_size("memory_limit", v))?;
        let timeout = match parameters.get("timeout_ms") {
            None => Duration::from_millis(1000),
            Some(v) => {
                let ms: u64 =
                    v.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| bad("timeout_ms", v, "milliseconds > 0"))?;
                Duration::from_millis(ms)
            }
        };
        let package_path = parameters
            .get("package_path")
            .map(|p| p.split(';').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let views = match parameters.get("messages").unwrap_or("tables") {
            "tables" => false,
            "views" => true,
            other => return Err(bad("messages", other, "tables or views")),
        };
        let generational_gc = match parameters.get("gc") {
            None => views,
            Some("generational") => true,
            Some("incremental") => false,
            Some(other) => return Err(bad("gc", other, "incremental or generational")),
        };
        let prelude = parameters.get("prelude").map(str::to_owned);
        Ok(Settings {
            script: script.into(),
            sandbox,
            memory_limit,
            timeout,
            package_path,
            views,
            prelude,
            generational_gc,
        })
    }
}
