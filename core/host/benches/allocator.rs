//! One allocation round at Mesos's DeclineOffers shape (`HierarchicalAllocator_BENCHMARK_Test.
//! DeclineOffers/21`: 10,000 agents of cpus 24 / mem 4096 / disk 4096, 1,000 frameworks),
//! for the built-in DRF and for the same DRF loaded from `libmodhost_examples.so`, in one run.
//!
//! Each measured iteration is one `allocate` that offers every agent (10,000 offers); between
//! iterations, untimed, every offer is given back so the next round offers everything again.
//!
//! `cargo bench -p modhost --bench allocator` (set MODHOST_BENCH_AGENTS / _FRAMEWORKS to
//! change the shape).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use modhost::kinds::AllocatorHandle;
use modhost::{ModuleManager, manifest};
use modhost_abi::messages::{AgentInfo, AllocatorOptions, FrameworkInfo, Resources};
use modhost_abi::{AddAgent, AddFramework, Allocate, Allocator, RecoverResources};
use modhost_drf::HierarchicalDrf;

fn shape() -> (usize, usize) {
    let get = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    (get("MODHOST_BENCH_AGENTS", 10_000), get("MODHOST_BENCH_FRAMEWORKS", 1_000))
}

/// Adds the agents and frameworks of the shape.
fn populate(allocator: &mut dyn Allocator, agents: usize, frameworks: usize) {
    allocator.initialize(AllocatorOptions { seed: 1, ..AllocatorOptions::default() }).unwrap();
    let resources = Resources::new().with("cpus", 24.0).with("mem", 4096.0).with("disk", 4096.0);
    for i in 0..agents {
        let agent = AgentInfo { id: format!("agent-{i}"), resources: resources.clone(), ..AgentInfo::default() };
        allocator.add_agent(AddAgent { agent, used: vec![] }).unwrap();
    }
    for i in 0..frameworks {
        let framework =
            FrameworkInfo { id: format!("framework-{i}"), name: format!("framework-{i}"), role: format!("role-{i}") };
        allocator.add_framework(AddFramework { framework, used: vec![], active: true }).unwrap();
    }
}

/// Times `iterations` full rounds, giving every offer back (untimed) after each.
fn rounds(allocator: &mut dyn Allocator, iterations: u64, agents: usize) -> Duration {
    let mut timed = Duration::ZERO;
    for i in 0..iterations {
        let started = Instant::now();
        let offers = allocator.allocate(Allocate { now: i as f64 }).unwrap();
        timed += started.elapsed();
        assert_eq!(offers.len(), agents, "every agent is offered in each round");
        for offer in black_box(offers) {
            let request = RecoverResources {
                framework_id: offer.framework_id,
                agent_id: offer.agent_id,
                resources: offer.resources,
                filters: None,
            };
            allocator.recover_resources(request).unwrap();
        }
    }
    timed
}

fn main() {
    let (agents, frameworks) = shape();
    let mut built_in = HierarchicalDrf::default();
    populate(&mut built_in, agents, frameworks);

    let json = serde_json::json!({"libraries": [{"file": support::library("libmodhost_examples.so"), "modules": [{"name": "org_modhost_HierarchicalDRF"}]}]});
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json.to_string(), manifest::Origin::Inline).unwrap()).unwrap();
    let mut module: AllocatorHandle = manager.create("org_modhost_HierarchicalDRF", None).unwrap();
    populate(&mut module, agents, frameworks);

    let group_name = format!("allocate_{agents}x{frameworks}");
    let mut criterion = Criterion::default().sample_size(20).configure_from_args();
    let mut group = criterion.benchmark_group(&group_name);
    group.bench_function("built_in", |b| b.iter_custom(|n| rounds(&mut built_in, n, agents)));
    group.bench_function("module", |b| b.iter_custom(|n| rounds(&mut module, n, agents)));
    group.finish();
    criterion.final_summary();

    let median = |bench: &str| support::median_ns(&group_name, bench);
    if let (Some(native), Some(boundary)) = (median("built_in"), median("module")) {
        println!(
            "\n{group_name}: built-in {:.2} ms, module {:.2} ms, ratio {:.2}x (median per round)",
            native / 1e6,
            boundary / 1e6,
            boundary / native
        );
    }
}
