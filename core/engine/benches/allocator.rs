//! One allocation round at Mesos's DeclineOffers shape (`HierarchicalAllocator_BENCHMARK_Test.
//! DeclineOffers/21`: 10,000 agents of cpus 24 / mem 4096 / disk 4096, 1,000 frameworks),
//! for the built-in DRF and for the same DRF loaded from `libmodhost_examples.so`, in one run.
//!
//! Each measured iteration is one `allocate` that offers every agent (10,000 offers); between
//! iterations, untimed, every offer is given back so the next round offers everything again.
//!
//! criterion's two medians time each allocator right after its own give-back phase, whose
//! 10,000 `recover_resources` calls go through JSON for the module and leave the caches in
//! another state than the built-in's direct calls do. The run then times the same rounds in
//! back-to-back pairs, each round starting from empty caches: that ratio is the round itself
//! (the boundary included), and the noise of this machine moves it least.
//!
//! `cargo bench -p modhost --bench allocator` (set MODHOST_BENCH_AGENTS / _FRAMEWORKS to
//! change the shape).

mod support;

use criterion::Criterion;
use modhost::kinds::AllocatorHandle;
use modhost::{ModuleManager, manifest};
use modhost_drf::HierarchicalDrf;

fn shape() -> (usize, usize) {
    let get = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    (get("MODHOST_BENCH_AGENTS", 10_000), get("MODHOST_BENCH_FRAMEWORKS", 1_000))
}

fn main() {
    let (agents, frameworks) = shape();
    let mut built_in = HierarchicalDrf::default();
    support::populate(&mut built_in, agents, frameworks);

    let json = serde_json::json!({"libraries": [{"file": support::library("libmodhost_examples.so"), "modules": [{"name": "org_modhost_HierarchicalDRF"}]}]});
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json.to_string(), manifest::Origin::Inline).unwrap()).unwrap();
    let mut module: AllocatorHandle = manager.create("org_modhost_HierarchicalDRF", None).unwrap();
    support::populate(&mut module, agents, frameworks);

    let group_name = format!("allocate_{agents}x{frameworks}");
    let mut criterion = Criterion::default().sample_size(20).configure_from_args();
    let mut group = criterion.benchmark_group(&group_name);
    group.bench_function("built_in", |b| b.iter_custom(|n| support::rounds(&mut built_in, n, agents)));
    group.bench_function("module", |b| b.iter_custom(|n| support::rounds(&mut module, n, agents)));
    group.finish();
    criterion.final_summary();

    let median = |bench: &str| support::median_ns(&group_name, bench);
    if let (Some(native), Some(boundary)) = (median("built_in"), median("module")) {
        println!(
            "\n{group_name}: built-in {:.2} ms, module {:.2} ms, ratio {:.2}x (criterion medians, warm)",
            native / 1e6,
            boundary / 1e6,
            boundary / native
        );
    }
    let [low, median, high] = support::paired_cold_ratio(&mut built_in, &mut module, agents, 60);
    println!(
        "{group_name}: module / built-in, 60 paired rounds from empty caches: median {median:.3}x \
         (quartiles {low:.3}x to {high:.3}x)"
    );
}
