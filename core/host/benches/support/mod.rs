//! What the benchmarks share: where the build put the binary and the module libraries.

#![allow(dead_code)] // each bench uses its own subset

use std::path::{Path, PathBuf};

/// `target/<profile>`, from the bench binary's path (`target/<profile>/deps/<bench>-*`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench binary path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_owned()
}

/// The newest copy of a workspace cdylib (`cargo build` puts it in target/<profile>,
/// `cargo bench` in deps/).
pub fn library(file: &str) -> PathBuf {
    let profile = profile_dir();
    [profile.join(file), profile.join("deps").join(file)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("{file} not found: cargo build --release --workspace"))
}

/// criterion's median estimate of `group/bench` from this run, in nanoseconds.
pub fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let path = profile_dir().parent()?.join("criterion").join(group).join(bench).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}
