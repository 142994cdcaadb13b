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
//! Then, in the same run, Mesos's quota shape (`BENCHMARK_HierarchicalAllocator_WithQuotaParam.
//! LargeAndSmallQuota/2`: 2,500 roles with a small quota and 500 with a large one, a framework
//! each, on 3,000 agents): as Mesos measures it, the first round, which meets every quota, and
//! the second, which has nothing left to offer within the limits; each from a freshly
//! populated allocator.
//!
//! `cargo bench -p modhost-engine --bench allocator` (set MODHOST_BENCH_AGENTS / _FRAMEWORKS to
//! change the plain shape, MODHOST_BENCH_QUOTA=SMALLxLARGE the quota one).

mod support;

use criterion::Criterion;
use modhost::kinds::AllocatorHandle;
use modhost::{ModuleManager, manifest};
use modhost_abi::{Allocate, Allocator};
use modhost_drf::HierarchicalDrf;
use std::time::Instant;

fn shape() -> (usize, usize) {
    let get = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    (get("MODHOST_BENCH_AGENTS", 10_000), get("MODHOST_BENCH_FRAMEWORKS", 1_000))
}

fn quota_shape() -> (usize, usize) {
    std::env::var("MODHOST_BENCH_QUOTA")
        .ok()
        .and_then(|v| v.split_once('x').and_then(|(s, l)| Some((s.parse().ok()?, l.parse().ok()?))))
        .unwrap_or((2_500, 500))
}

/// Mesos's quota shape, `samples` times from a fresh allocator each: the median time of the
/// round that meets every quota and of the one after it, in ms, and the offers each made.
fn quota_rounds<'m>(make: &mut dyn FnMut() -> Box<dyn Allocator + 'm>, samples: usize) -> ([f64; 2], [usize; 2]) {
    let (small, large) = quota_shape();
    let (mut first, mut second, mut offers) = (Vec::new(), Vec::new(), [0, 0]);
    for _ in 0..samples {
        let mut allocator = make();
        support::populate_quota(allocator.as_mut(), small, large);
        for (round, times) in [&mut first, &mut second].into_iter().enumerate() {
            let started = Instant::now();
            let made = allocator.allocate(&Allocate { now: round as f64, dry_run: false }).unwrap();
            times.push(started.elapsed().as_secs_f64() * 1e3);
            offers[round] = made.len();
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    ([median(&mut first), median(&mut second)], offers)
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

    let (small, large) = quota_shape();
    let ([meet, after], offers) = quota_rounds(&mut || Box::new(HierarchicalDrf::default()), 5);
    println!(
        "\nquota {small}x{large} ({} agents, {} roles with quota), built-in, median of 5: \
         round meeting every quota {meet:.2} ms ({} offers), the round after {after:.2} ms ({} offers)",
        small / 5 + large * 5,
        small + large,
        offers[0],
        offers[1]
    );
    let ([meet, after], _) = quota_rounds(
        &mut || Box::new(manager.create::<AllocatorHandle>("org_modhost_HierarchicalDRF", None).unwrap()),
        5,
    );
    println!("quota {small}x{large}, module: round meeting every quota {meet:.2} ms, the round after {after:.2} ms");
}
