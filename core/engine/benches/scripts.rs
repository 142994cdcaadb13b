//! Scripts against native code, in one run: a hook call with a task-sized message (native
//! module vs Lua, with tables and with `messages=views`, vs Python, beside the host's own
//! packing of the request and unpacking of the answer, which each of them pays), one allocation round at 10,000 agents x 1,000 frameworks
//! (built-in DRF vs `scripts/lua/drf.lua`, both ways, vs `scripts/python/drf.py`), and the memory an idle
//! Lua Vm costs. Beside criterion's medians, each row's floor (see `Floors`): the least time a
//! call or a round took in the run, which the machine's load moves far less.
//!
//! `cargo bench -p modhost --bench scripts`

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use modhost::{ModuleManager, manifest, script};
use modhost_abi::messages::{AgentInfo, FrameworkInfo, Label, Resources, TaskInfo};
use modhost_abi::{Allocator, Hook, LaunchTask};
use modhost_engine::sim;

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn manager() -> ModuleManager {
    let root = workspace();
    let lua = |name: &str, script: &str| {
        serde_json::json!({"name": name, "symbol": "org_modhost_lua",
            "parameters": [{"key": "script", "value": root.join(script)}]})
    };
    let lua_views = |name: &str, script: &str| {
        serde_json::json!({"name": name, "symbol": "org_modhost_lua",
            "parameters": [{"key": "script", "value": root.join(script)}, {"key": "messages", "value": "views"}]})
    };
    let python = |name: &str, script: &str| {
        serde_json::json!({"name": name, "symbol": "org_modhost_python",
            "parameters": [{"key": "script", "value": root.join(script)}]})
    };
    let json = serde_json::json!({"libraries": [
        {"file": support::library("libmodhost_examples.so"), "modules": [
            {"name": "native_labels", "symbol": "org_modhost_LabelHook",
             "parameters": [{"key": "team", "value": "platform"}]}]},
        {"file": support::library("libmodhost_lua.so"), "modules": [
            lua("lua_labels", "scripts/lua/bench_labels.lua"), lua("drf_lua", "scripts/lua/drf.lua"),
            lua_views("lua_views_labels", "scripts/lua/bench_labels.lua"),
            lua_views("drf_lua_views", "scripts/lua/drf.lua")]},
        {"file": support::library("libmodhost_python.so"), "modules": [
            python("py_labels", "scripts/python/bench_labels.py"), python("drf_py", "scripts/python/drf.py")]},
    ]});
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json.to_string(), manifest::Origin::Inline).unwrap()).unwrap();
    manager
}

/// How many calls a batch of [`batches`] makes: about a millisecond's worth, short enough
/// that many batches run with nothing else on the machine in their way.
const BATCH: u64 = 500;

/// Each row's floor: the least time one call (or one allocation round) took in this run,
/// in nanoseconds. Other work on a shared machine only ever adds time, so the quickest
/// calls are the ones nothing got in the way of: the floor is what the code itself costs on
/// this machine, where criterion's median moves with the machine's load (`timeit` takes the
/// least of its repeats for the same reason).
#[derive(Default)]
struct Floors(Vec<(&'static str, f64)>);

impl Floors {
    /// The floor of `row`, to be lowered as the row runs (it starts at infinity: not run).
    fn row(&mut self, row: &'static str) -> &mut f64 {
        self.0.push((row, f64::INFINITY));
        &mut self.0.last_mut().expect("just pushed").1
    }

    /// The floor of `row`, if it ran.
    fn of(&self, row: &str) -> Option<f64> {
        self.0.iter().find(|(name, ns)| *name == row && ns.is_finite()).map(|(_, ns)| *ns)
    }

    /// The floors of the rows of one group that ran, each as a ratio to `base`'s.
    fn show(&self, group: &str, rows: &[&str], base: &str, unit: f64, name: &str) {
        let Some(base_ns) = self.of(base) else { return };
        let shown = rows.iter().filter_map(|row| self.of(row).map(|ns| (row, ns)));
        let shown = shown.map(|(row, ns)| format!("{row} {:.2} {name} ({:.2}x)", ns / unit, ns / base_ns));
        println!("  {:34} {}", format!("{group} floor"), shown.collect::<Vec<_>>().join(", "));
    }
}

/// Makes `calls` calls of `row` and returns the time they took, as criterion's `iter_custom`
/// wants; on the way, lowers `floor` to the least time per call of any whole batch of
/// [`BATCH`] calls (a single call is too short to time alone).
fn batches(row: &mut dyn FnMut(), calls: u64, floor: &mut f64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = calls;
    while left > 0 {
        let n = left.min(BATCH);
        let start = Instant::now();
        (0..n).for_each(|_| row());
        let took = start.elapsed();
        total += took;
        if n == BATCH {
            *floor = floor.min(took.as_nanos() as f64 / n as f64);
        }
        left -= n;
    }
    total
}

/// A launch message of the size a real task has: labels, resources, an agent with attributes.
fn task_message() -> LaunchTask {
    let labels = (0..5).map(|i| Label { key: format!("label-{i}"), value: format!("value-{i}") }).collect();
    let resources = Resources::new().with("cpus", 0.5).with("mem", 512.0).with("disk", 1024.0);
    let attributes = [("rack", "r1"), ("zone", "eu-1a"), ("os", "linux")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    LaunchTask {
        task: TaskInfo {
            id: "web-1.task-1234".into(),
            name: "web-1.task-1234".into(),
            framework_id: "web-1".into(),
            agent_id: "agent-17".into(),
            resources: resources.clone(),
            labels,
        },
        framework: FrameworkInfo { id: "web-1".into(), name: "web-1".into(), role: "web".into(), ..Default::default() },
        agent: AgentInfo {
            id: "agent-17".into(),
            hostname: "agent-17".into(),
            resources,
            attributes: attributes.into(),
        },
    }
}

fn main() {
    let manager = manager();
    let mut criterion = Criterion::default().configure_from_args();

    let mut native: Box<dyn Hook> = script::create_hook(&manager, "native_labels").unwrap();
    let mut lua: Box<dyn Hook> = script::create_hook(&manager, "lua_labels").unwrap();
    let mut lua_views: Box<dyn Hook> = script::create_hook(&manager, "lua_views_labels").unwrap();
    let mut python: Box<dyn Hook> = script::create_hook(&manager, "py_labels").unwrap();
    let message = task_message();
    // What every hook row pays on the host's side whatever module answers: the request
    // packed, the answer (the six labels the label hooks give back) unpacked into owned
    // labels, and those dropped. The floor of a hook call with this message.
    let answer = {
        let mut labels = message.task.labels.clone();
        labels.push(Label { key: "team".into(), value: "platform".into() });
        modhost_abi::packed::to_vec(&Some(labels)).unwrap()
    };
    let host_codec = || {
        let request = modhost_abi::packed::to_vec(black_box(&message)).unwrap();
        let labels: Option<Vec<Label>> = modhost_abi::packed::from_slice(black_box(&answer)).unwrap();
        (request, labels)
    };
    let call = |hook: &mut Box<dyn Hook>| hook.master_launch_task_label_decorator(black_box(&message)).unwrap();
    let mut rows: [(&str, &mut dyn FnMut()); 5] = [
        ("native_module", &mut || drop(call(&mut native))),
        ("lua", &mut || drop(call(&mut lua))),
        ("lua_views", &mut || drop(call(&mut lua_views))),
        ("python", &mut || drop(call(&mut python))),
        ("host_codec", &mut || drop(host_codec())),
    ];
    // `MODHOST_BENCH_CALLS=row:n` makes n calls of one row and stops, untimed: for counting
    // instructions under callgrind, a figure this noisy machine hardly moves (see
    // `benches/instructions.sh` and BENCHMARKS.md).
    if let Ok(spec) = std::env::var("MODHOST_BENCH_CALLS") {
        let (name, n) = spec.split_once(':').expect("MODHOST_BENCH_CALLS=row:n");
        let n: u64 = n.parse().expect("MODHOST_BENCH_CALLS=row:n, n a number");
        let known = rows.iter().map(|(row, _)| *row).collect::<Vec<_>>().join(", ");
        let (_, row) = rows
            .iter_mut()
            .find(|(row, _)| *row == name)
            .unwrap_or_else(|| panic!("MODHOST_BENCH_CALLS={spec}: no hook_call row '{name}' (rows: {known})"));
        (0..n).for_each(|_| row());
        return;
    }
    let mut floors = Floors::default();
    let mut group = criterion.benchmark_group("hook_call");
    for (name, row) in &mut rows {
        let floor = floors.row(name);
        group.bench_function(*name, |b| b.iter_custom(|calls| batches(&mut **row, calls, floor)));
    }
    group.finish();

    let (agents, frameworks) = (10_000, 1_000);
    let mut built_in = sim::create_allocator(&manager, "hierarchical").unwrap();
    let mut drf_lua = script::create_allocator(&manager, "drf_lua").unwrap();
    let mut drf_lua_views = script::create_allocator(&manager, "drf_lua_views").unwrap();
    let mut drf_py = script::create_allocator(&manager, "drf_py").unwrap();
    let mut allocators: [(&str, &mut dyn Allocator); 4] = [
        ("built_in", built_in.as_mut()),
        ("drf_lua", drf_lua.as_mut()),
        ("drf_lua_views", drf_lua_views.as_mut()),
        ("drf_py", drf_py.as_mut()),
    ];
    let mut group = criterion.benchmark_group("allocate_10000x1000_scripts");
    group.sample_size(10);
    for (name, allocator) in &mut allocators {
        support::populate(&mut **allocator, agents, frameworks);
        let floor = floors.row(name);
        group.bench_function(*name, |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| {
                        let round = support::rounds(&mut **allocator, 1, agents);
                        *floor = floor.min(round.as_nanos() as f64);
                        round
                    })
                    .sum()
            })
        });
    }
    group.finish();
    criterion.final_summary();

    // Idle memory: the Lua heap of a Vm with the label policy loaded, as Lua counts it; and
    // all that a hundred more such Vms add to the process's heap (Lua's, the bridge's and the
    // host's allocations: what a host with a hundred scripted modules pays).
    let mut transport = script::VmTransport::new(&manager, "lua_labels", &[]).unwrap();
    let heap = transport.describe().unwrap().memory_bytes as f64 / 1024.0;
    let in_use = || {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as f64
    };
    let before = in_use();
    let hundred: Vec<_> = (0..100).map(|_| script::VmTransport::new(&manager, "lua_labels", &[]).unwrap()).collect();
    let each = (in_use() - before) / 100.0 / 1024.0;
    drop(hundred);

    println!("\nscripts (medians of this run, then floors: see `Floors`):");
    let show = |group: &str, a: &str, b: &str, unit: f64, name: &str| {
        if let (Some(x), Some(y)) = (support::median_ns(group, a), support::median_ns(group, b)) {
            println!("  {group:34} {a} {:.2} {name}, {b} {:.2} {name}, ratio {:.1}x", x / unit, y / unit, y / x);
        }
    };
    show("hook_call", "native_module", "lua", 1e3, "us");
    show("hook_call", "native_module", "lua_views", 1e3, "us");
    show("hook_call", "native_module", "python", 1e3, "us");
    show("hook_call", "host_codec", "lua_views", 1e3, "us");
    show("allocate_10000x1000_scripts", "built_in", "drf_lua", 1e6, "ms");
    show("allocate_10000x1000_scripts", "built_in", "drf_lua_views", 1e6, "ms");
    show("allocate_10000x1000_scripts", "built_in", "drf_py", 1e6, "ms");
    let hook_rows = ["native_module", "lua", "lua_views", "python", "host_codec"];
    floors.show("hook_call", &hook_rows, "native_module", 1e3, "us");
    let round_rows = ["built_in", "drf_lua", "drf_lua_views", "drf_py"];
    floors.show("allocate_10000x1000_scripts", &round_rows, "built_in", 1e6, "ms");
    println!("  idle Lua Vm: Lua heap {heap:.0} KiB; 100 more Vms add {each:.0} KiB each to the process heap");
}
