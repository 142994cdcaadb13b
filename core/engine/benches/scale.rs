//! How `modhost simulate` grows with the cluster: Mesos's DeclineOffers shape at 1,000,
//! 10,000 and 50,000 agents with 1,000 frameworks, five allocation rounds each, run as
//! separate processes so that each peak RSS is its own. Built-in DRF and the DRF module.
//!
//! `cargo bench -p modhost --bench scale` (the release `modhost` binary and the example
//! library must be built: `cargo build --release --workspace`).

mod support;

use std::process::Command;
use std::time::Instant;

fn main() {
    // Under `cargo test --benches` a bench binary runs with no `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let profile = support::profile_dir();
    let modhost = profile.join("modhost");
    assert!(modhost.is_file(), "build the release binary first: cargo build --release --workspace");
    let library = profile.join("libmodhost_examples.so");
    let manifest =
        serde_json::json!({"libraries": [{"file": library, "modules": [{"name": "org_modhost_HierarchicalDRF"}]}]});
    let dir = std::env::temp_dir().join(format!("modhost-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    println!(
        "{:>7} {:>6} {:<10} {:>12} {:>12} {:>10} {:>9}",
        "agents", "fwks", "allocator", "allocate p50", "allocate p99", "peak RSS", "wall"
    );
    for agents in [1_000, 10_000, 50_000] {
        let workload = dir.join(format!("decline-{agents}.json"));
        let generated = Command::new(&modhost)
            .args(["workload", "decline-offers", &format!("--agents={agents}"), "--frameworks=1000"])
            .output()
            .unwrap();
        std::fs::write(&workload, generated.stdout).unwrap();
        for allocator in ["hierarchical", "org_modhost_HierarchicalDRF"] {
            let started = Instant::now();
            let output = Command::new(&modhost)
                .args([
                    "simulate",
                    "--json",
                    "--until=4",
                    &format!("--workload={}", workload.display()),
                    &format!("--modules={manifest}"),
                    &format!("--allocator={allocator}"),
                ])
                .output()
                .unwrap();
            let wall = started.elapsed();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let label = if allocator == "hierarchical" { "built-in" } else { "module" };
            println!(
                "{agents:>7} {:>6} {label:<10} {:>9.2} ms {:>9.2} ms {:>6.0} MiB {:>7.2} s",
                1000,
                report["allocator_us"]["median"].as_f64().unwrap() / 1000.0,
                report["allocator_us"]["p99"].as_f64().unwrap() / 1000.0,
                report["peak_rss_kib"].as_f64().unwrap() / 1024.0,
                wall.as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
