//! What the benchmarks share: where the build put the binary and the module libraries.

#![allow(dead_code)] // each bench uses its own subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modhost_abi::messages::{AgentInfo, AllocatorOptions, FrameworkInfo, Resources};
use modhost_abi::{AddAgent, AddFramework, Allocate, Allocator, RecoverResources, UpdateQuota};

/// `target/<profile>`, from the bench binary's path (`target/<profile>/deps/<bench>-*`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench binary path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_owned()
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
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

/// Mesos's DeclineOffers shape: `agents` agents of cpus 24 / mem 4096 / disk 4096 and
/// `frameworks` frameworks, each in its own role.
pub fn populate(allocator: &mut dyn Allocator, agents: usize, frameworks: usize) {
    allocator.initialize(&AllocatorOptions { seed: 1, ..AllocatorOptions::default() }).unwrap();
    let resources = Resources::new().with("cpus", 24.0).with("mem", 4096.0).with("disk", 4096.0);
    for i in 0..agents {
        let agent = AgentInfo { id: format!("agent-{i}"), resources: resources.clone(), ..AgentInfo::default() };
        allocator.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
    }
    for i in 0..frameworks {
        let (id, role) = (format!("framework-{i}"), format!("role-{i}"));
        let framework = FrameworkInfo { id: id.clone(), name: id, role, ..FrameworkInfo::default() };
        allocator.add_framework(&AddFramework { framework, used: vec![], active: true }).unwrap();
    }
}

/// Mesos's `LargeAndSmallQuota` shape: `small` roles with a quota of cpus 1 / mem 1024 /
/// disk 1024 and `large` roles with cpus 4 / mem 4096 / disk 4096 (guarantees and limits
/// alike), one framework each, on `small / 5 + large * 5` agents of cpus 2 / mem 2048 /
/// disk 2048.
pub fn populate_quota(allocator: &mut dyn Allocator, small: usize, large: usize) {
    allocator.initialize(&AllocatorOptions { seed: 1, ..AllocatorOptions::default() }).unwrap();
    let amounts = |n: f64| Resources::new().with("cpus", n).with("mem", 1024.0 * n).with("disk", 1024.0 * n);
    for i in 0..small / 5 + large * 5 {
        let agent = AgentInfo { id: format!("agent-{i}"), resources: amounts(2.0), ..AgentInfo::default() };
        allocator.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
    }
    for (kind, count, size) in [("small", small, 1.0), ("large", large, 4.0)] {
        for i in 0..count {
            let role = format!("{kind}-{i}");
            let quota = UpdateQuota { role: role.clone(), guarantees: amounts(size), limits: amounts(size) };
            allocator.update_quota(&quota).unwrap();
            let framework =
                FrameworkInfo { id: format!("framework-{role}"), name: role.clone(), role, ..FrameworkInfo::default() };
            allocator.add_framework(&AddFramework { framework, used: vec![], active: true }).unwrap();
        }
    }
}

/// Whether a timed round starts right after the allocator's own untimed give-back phase
/// (`Warm`), or after the caches were emptied (`Cold`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Caches {
    /// As the give-back phase left them.
    Warm,
    /// Emptied by writing a buffer twice the size of the largest cache (L3 is 32 MiB here).
    Cold,
}

/// Times `iterations` full allocation rounds, each of which must offer all `agents`;
/// between them, untimed, every offer is given back so that each round offers every agent
/// again.
pub fn rounds(allocator: &mut dyn Allocator, iterations: u64, agents: usize) -> Duration {
    rounds_with(allocator, iterations, agents, Caches::Warm)
}

/// [`rounds`], with the caches each round starts from.
pub fn rounds_with(allocator: &mut dyn Allocator, iterations: u64, agents: usize, caches: Caches) -> Duration {
    let mut timed = Duration::ZERO;
    for i in 0..iterations {
        if caches == Caches::Cold {
            empty_caches();
        }
        let started = Instant::now();
        let offers = allocator.allocate(&Allocate { now: i as f64, dry_run: false }).unwrap();
        timed += started.elapsed();
        assert_eq!(offers.len(), agents, "every agent is offered in each round");
        for offer in std::hint::black_box(offers).to_vec() {
            let request = RecoverResources {
                framework_id: offer.framework_id,
                role: String::new(),
                agent_id: offer.agent_id,
                resources: offer.resources,
                filters: None,
            };
            allocator.recover_resources(&request).unwrap();
        }
    }
    timed
}

/// Evicts everything the caches hold by writing one byte per cache line of a 64 MiB buffer.
fn empty_caches() {
    let mut junk = vec![0u8; 64 << 20];
    for line in junk.chunks_mut(64) {
        line[0] = 1;
    }
    std::hint::black_box(&junk);
}

/// The ratio `b / a` of one round's time, measured in `pairs` back-to-back pairs (the order
/// alternating) of rounds that each start from empty caches, as (first quartile, median,
/// third quartile). A pair's two rounds share their moment on a noisy machine, and starting
/// both from the same (empty) caches removes what each allocator's give-back phase left
/// behind, so what differs is the round itself.
pub fn paired_cold_ratio(a: &mut dyn Allocator, b: &mut dyn Allocator, agents: usize, pairs: usize) -> [f64; 3] {
    let mut ratios = Vec::with_capacity(pairs);
    for pair in 0..pairs {
        let (a_time, b_time) = if pair % 2 == 0 {
            let a_time = rounds_with(a, 1, agents, Caches::Cold);
            (a_time, rounds_with(b, 1, agents, Caches::Cold))
        } else {
            let b_time = rounds_with(b, 1, agents, Caches::Cold);
            (rounds_with(a, 1, agents, Caches::Cold), b_time)
        };
        ratios.push(b_time.as_secs_f64() / a_time.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    [at(0.25), at(0.5), at(0.75)]
}
