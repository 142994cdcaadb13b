//! The host at work, through the library: hook and isolator semantics, workload checks,
//! determinism, and the ledger's properties over random workloads.

mod support;

use modhost::ModuleManager;
use modhost::hooks::{HookChain, HooksError};
use modhost::isolators::{IsolationError, Isolators};
use modhost::manifest::{self, Origin};
use modhost_abi::messages::{AgentInfo, FrameworkInfo, Label, Resources, TaskInfo};
use modhost_engine::sim::report::Report;
use modhost_engine::sim::workload::{self, Workload, WorkloadError};
use modhost_engine::sim::{self, SimConfig, Simulation};

/// A manager with the test fixture's hook and isolator under several names.
fn manager_with(modules: serde_json::Value) -> ModuleManager {
    let json = serde_json::json!({"libraries": [{"file": support::test_modules(), "modules": modules}]});
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json.to_string(), Origin::Inline).unwrap()).unwrap();
    manager
}

fn hook(name: &str, action: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "symbol": "org_modhost_TestHook", "parameters": [{"key": "action", "value": action}]})
}

fn hooks_manager() -> ModuleManager {
    manager_with(serde_json::json!([
        hook("append_a", "append:a=1"),
        hook("append_b", "append:b=2"),
        hook("none", "none"),
        hook("error", "error"),
        hook("panic", "panic"),
        hook("bad", "explode"),
    ]))
}

fn labels_after(chain: &mut HookChain) -> Vec<String> {
    let mut task =
        TaskInfo { id: "t".into(), labels: vec![Label { key: "x".into(), value: "0".into() }], ..Default::default() };
    let framework = FrameworkInfo { id: "f".into(), name: "f".into(), role: "r".into(), ..Default::default() };
    chain.launch_task_labels(&mut task, &framework, &AgentInfo::default());
    task.labels.iter().map(|l| format!("{}={}", l.key, l.value)).collect()
}

#[test]
fn hooks_run_in_flag_order_and_follow_mesos_result_semantics() {
    let manager = hooks_manager();
    // Some replaces (each hook sees the previous result), None leaves, an error is ignored.
    let mut chain = HookChain::install(&manager, "append_a,none,error,panic,append_b").unwrap();
    assert_eq!(labels_after(&mut chain), ["x=0", "a=1", "b=2"]);
    let errors: Vec<(String, u64)> = chain.errors();
    assert_eq!(
        errors,
        [("append_a", 0), ("none", 0), ("error", 1), ("panic", 1), ("append_b", 0)].map(|(n, e)| (n.to_string(), e))
    );
    // The order of the flag is the order of the calls.
    let mut reversed = HookChain::install(&manager, "append_b,append_a").unwrap();
    assert_eq!(labels_after(&mut reversed), ["x=0", "b=2", "a=1"]);
}

#[test]
fn hooks_flag_errors_match_mesos() {
    let manager = hooks_manager();
    type Case = (&'static str, fn(&HooksError) -> bool, &'static str);
    let cases: &[Case] = &[
        ("nope", |e| matches!(e, HooksError::Unknown(n) if n == "nope"), "No hook module named 'nope' available"),
        ("none,none", |e| matches!(e, HooksError::ListedTwice(n) if n == "none"), "Hook module 'none' already loaded"),
        ("bad", |e| matches!(e, HooksError::Create { .. }), "Failed to instantiate hook module 'bad'"),
        ("none,", |e| matches!(e, HooksError::Unknown(n) if n.is_empty()), "No hook module named '' available"),
    ];
    for (flag, is_expected, fragment) in cases {
        let error = HookChain::install(&manager, flag).err().unwrap_or_else(|| panic!("{flag:?} installed"));
        assert!(is_expected(&error), "{flag:?}: {error:?}");
        assert!(error.to_string().contains(fragment), "{flag:?}: {error}");
    }
    assert!(HookChain::install(&manager, "").unwrap().is_empty());
}

/// A workload from JSON text.
fn workload(text: &str) -> Workload {
    Workload::parse(text, "test").unwrap()
}

fn run(
    workload: &Workload,
    allocator: Box<dyn modhost_abi::Allocator + '_>,
    hooks: HookChain,
    isolators: Isolators,
    seed: u64,
) -> Report {
    let config = SimConfig {
        allocation_interval: 1.0,
        seed,
        until: None,
        max_rounds: 100_000,
        allocator_name: "test".into(),
        max_failed_rounds: 0,
    };
    Simulation::new(config, workload, allocator, hooks, isolators).run(|_| {})
}

fn built_in() -> Box<dyn modhost_abi::Allocator> {
    sim::create_allocator(&ModuleManager::new(), "hierarchical").unwrap()
}

#[test]
fn isolators_are_called_in_launch_order_and_cleaned_up_when_tasks_end() {
    let log = support::scratch().join("isolator.log");
    let _ = std::fs::remove_file(&log);
    let log_text = log.to_str().unwrap();
    let manager = manager_with(serde_json::json!([
        {"name": "logger", "symbol": "org_modhost_TestIsolator", "parameters": [{"key": "log", "value": log_text}]},
        {"name": "no_log", "symbol": "org_modhost_TestIsolator"},
    ]));
    let w = workload(
        r#"{"agents":[{"resources":{"cpus":4,"mem":4096}}],
            "frameworks":[{"name":"f","role":"r","tasks":2,"task_resources":{"cpus":1,"mem":1024},
                           "duration":{"distribution":"constant","seconds":5},"tasks_per_offer":2}]}"#,
    );
    let isolators = Isolators::install(&manager, "logger").unwrap();
    let report = run(&w, built_in(), HookChain::default(), isolators, 1);
    assert_eq!(report.totals.finished, 2);
    let calls = std::fs::read_to_string(&log).unwrap();
    let expected = [
        "prepare f.task-0.container",
        "isolate f.task-0.container",
        "update f.task-0.container",
        "prepare f.task-1.container",
        "isolate f.task-1.container",
        "update f.task-1.container",
        "usage f.task-0.container",
        "cleanup f.task-0.container",
        "usage f.task-1.container",
        "cleanup f.task-1.container",
    ];
    assert_eq!(calls.lines().collect::<Vec<_>>(), expected);

    type Case = (&'static str, fn(&IsolationError) -> bool, &'static str);
    let cases: &[Case] = &[
        ("nope", |e| matches!(e, IsolationError::Unknown(_)), "Unknown or unsupported isolator 'nope'"),
        (
            "logger,logger",
            |e| matches!(e, IsolationError::ListedTwice(_)),
            "Duplicate entries found in --isolation flag",
        ),
        ("no_log", |e| matches!(e, IsolationError::Create { .. }), "Failed to create isolator 'no_log'"),
    ];
    for (flag, is_expected, fragment) in cases {
        let error = Isolators::install(&manager, flag).err().unwrap_or_else(|| panic!("{flag:?} installed"));
        assert!(is_expected(&error) && error.to_string().contains(fragment), "{flag:?}: {error}");
    }
}

#[test]
fn malformed_or_impossible_workloads_are_refused_with_the_field() {
    let base = |agents: &str, frameworks: &str, events: &str| {
        format!(r#"{{"agents":[{agents}],"frameworks":[{frameworks}],"events":[{events}]}}"#)
    };
    let agent = r#"{"resources":{"cpus":4,"mem":4096}}"#;
    let framework = r#"{"name":"f","role":"r","tasks":1,"task_resources":{"cpus":1},"duration":{"distribution":"constant","seconds":1}}"#;
    let cases: &[(String, &str, &str)] = &[
        (base(r#"{"resources":{"cpus":-4}}"#, framework, ""), "agents[0].resources.cpus", "negative"),
        (
            base(agent, &framework.replace(r#""cpus":1"#, r#""cpus":8"#), ""),
            "frameworks[0].task_resources",
            "fits on no agent",
        ),
        (
            base(agent, framework, r#"{"type":"weight_change","at":5,"role":"nobody","weight":2}"#),
            "events[0].role",
            "unknown role 'nobody'",
        ),
        (
            base(agent, framework, r#"{"type":"agent_lost","at":5,"agent":"agent-9"}"#),
            "events[0].agent",
            "no agent 'agent-9'",
        ),
        (
            base(agent, framework, r#"{"type":"framework_leaves","at":5,"framework":"g"}"#),
            "events[0].framework",
            "no framework 'g'",
        ),
        (
            base(agent, &framework.replace(r#""tasks":1"#, r#""tasks":1,"tasks_per_offer":0"#), ""),
            "frameworks[0].tasks_per_offer",
            "at least 1",
        ),
        (
            base(agent, &framework.replace(r#""seconds":1"#, r#""seconds":0"#), ""),
            "frameworks[0].duration.seconds",
            "not a positive",
        ),
        (
            base(agent, framework, r#"{"type":"weight_change","at":-1,"role":"r","weight":2}"#),
            "events[0].at",
            "is not a time",
        ),
        (base("", framework, ""), "agents", "at least one agent"),
        (
            base(agent, &framework.replace(r#""role":"r""#, r#""role":"eng//ml""#), ""),
            "frameworks[0].role",
            "role 'eng//ml': a role cannot contain two adjacent slashes",
        ),
        (
            base(
                agent,
                framework,
                r#"{"type":"quota_change","at":5,"role":"r","guarantees":{"cpus":2},"limits":{"cpus":1}}"#,
            ),
            "events[0]",
            "role 'r': the guarantees cpus:2 are not within the limits cpus:1",
        ),
        (
            base(agent, framework, "")
                .replace(r#"{"agents""#, r#"{"roles":{"r/x":{"quota":{"limits":{"cpus":1}}}},"agents""#),
            "roles.r/x.quota",
            "quota on a nested role is not supported",
        ),
        (
            base(agent, framework, "")
                .replace(r#"{"agents""#, r#"{"roles":{"r":{"quota":{"guarantees":{"cpus":-1}}}},"agents""#),
            "roles.r.quota",
            "the guarantee of cpus must be a non-negative number",
        ),
        (
            base(agent, &framework.replace(r#""role":"r""#, r#""role":"r","roles":["a"]"#), ""),
            "frameworks[0].roles",
            "give role or roles, not both",
        ),
        (
            base(agent, &framework.replace(r#""role":"r""#, r#""roles":["a","a"]"#), ""),
            "frameworks[0].roles",
            "role 'a' is named twice",
        ),
        (
            base(r#"{"resources":{"cpus":4,"cpus(*)":2}}"#, framework, ""),
            "agents[0].resources",
            "an unreserved resource is written without a role",
        ),
        (
            base(agent, framework, r#"{"type":"reserve","at":5,"agent":"agent-0","resources":{"cpus":2}}"#),
            "events[0].resources.cpus",
            "names no reservation",
        ),
    ];
    for (text, field, reason) in cases {
        match Workload::parse(text, "test") {
            Err(WorkloadError::Invalid { field: f, reason: r, .. }) => {
                assert_eq!(&f, field, "{text}");
                assert!(r.contains(reason), "{text}: {r}");
            }
            other => panic!("{text}: expected Invalid at {field}, got {other:?}"),
        }
    }
    // A misspelt key is a syntax error with its position, not a silent default.
    let error = Workload::parse(&base(agent, &framework.replace("tasks", "taks"), ""), "test").unwrap_err();
    assert!(matches!(error, WorkloadError::Syntax { .. }) && error.to_string().contains("line 1"), "{error}");
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let demo = Workload::parse(workload::DEMO, "demo").unwrap();
    let a = run(&demo, built_in(), HookChain::default(), Isolators::default(), 7);
    let b = run(&demo, built_in(), HookChain::default(), Isolators::default(), 7);
    let c = run(&demo, built_in(), HookChain::default(), Isolators::default(), 8);
    assert_eq!(a.decisions_digest, b.decisions_digest);
    let shares = |r: &Report| r.series.iter().map(|s| (s.t, s.role_shares.clone(), s.launched)).collect::<Vec<_>>();
    assert_eq!(shares(&a), shares(&b));
    assert_eq!(serde_json::to_value(&a.totals).unwrap(), serde_json::to_value(&b.totals).unwrap());
    assert_ne!(a.decisions_digest, c.decisions_digest);
}

/// The DRF module in the example library, created through the module manager.
fn drf_module(manager: &ModuleManager) -> Box<dyn modhost_abi::Allocator> {
    sim::create_allocator(manager, "org_modhost_HierarchicalDRF").unwrap()
}

fn examples_manager() -> ModuleManager {
    let json = serde_json::json!({"libraries": [{"file": support::examples(), "modules": [{"name": "org_modhost_HierarchicalDRF"}]}]});
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json.to_string(), Origin::Inline).unwrap()).unwrap();
    manager
}

#[test]
fn the_drf_module_decides_exactly_as_the_built_in_allocator() {
    let manager = examples_manager();
    let root = support::workspace();
    for path in
        ["scripts/workloads/demo.json", "scripts/workloads/multi-framework.json", "scripts/workloads/tenants.json"]
    {
        let w = Workload::from_file(&root.join(path)).unwrap();
        let native = run(&w, built_in(), HookChain::default(), Isolators::default(), 3);
        let module = run(&w, drf_module(&manager), HookChain::default(), Isolators::default(), 3);
        assert_eq!(native.decisions_digest, module.decisions_digest, "{path}");
        assert_eq!(native.totals.launched, module.totals.launched, "{path}");
        assert!(native.totals.launched > 0 && native.stopped == "every task has ended", "{path}: {}", native.stopped);
    }
}

/// A random workload from a seed: a few agent groups, frameworks, and events.
fn random_workload(seed: u64) -> Workload {
    let mut rng = modhost_drf::SplitMix64::new(seed);
    let mut pick = |n: u64| rng.next_u64() % n;
    let agents: Vec<serde_json::Value> = (0..1 + pick(3))
        .map(|g| {
            serde_json::json!({"count": 1 + pick(6), "prefix": format!("g{g}"),
                "resources": {"cpus": 2 + pick(30), "mem": 1024 * (1 + pick(32)), "gpus": pick(2)}})
        })
        .collect();
    let frameworks: Vec<serde_json::Value> = (0..1 + pick(6))
        .map(|i| {
            serde_json::json!({"name": format!("f{i}"), "role": format!("r{}", pick(3)), "tasks": 1 + pick(40),
                "task_resources": {"cpus": 0.1 * (1 + pick(15)) as f64, "mem": 128 * (1 + pick(8))},
                "duration": {"distribution": "uniform", "min": 1, "max": 1 + pick(60)},
                "tasks_per_offer": 1 + pick(5), "decline": {"refuse_seconds": pick(20)},
                "suppress_when_idle": pick(2) == 0})
        })
        .collect();
    let mut events =
        vec![serde_json::json!({"type": "weight_change", "at": pick(50), "role": "r0", "weight": 1 + pick(4)})];
    events.push(serde_json::json!({"type": "framework_leaves", "at": pick(80), "framework": "f0"}));
    events.push(serde_json::json!({"type": "agent_lost", "at": pick(80), "agent": "g0-0"}));
    let text = serde_json::json!({"name": format!("random-{seed}"), "agents": agents, "frameworks": frameworks,
        "roles": {"r0": {"weight": 1}}, "events": events});
    Workload::parse(&text.to_string(), &format!("random workload {seed}")).unwrap()
}

#[test]
fn no_resource_is_offered_twice_or_lost_over_random_workloads() {
    let manager = examples_manager();
    let mut completed = 0;
    for seed in 0..60 {
        let w = random_workload(seed);
        let allocator = if seed % 2 == 0 { built_in() } else { drf_module(&manager) };
        let r = run(&w, allocator, HookChain::default(), Isolators::default(), seed);
        let t = &r.totals;
        // The engine refuses any offer of resources that are not free (offered twice, or
        // never there) and counts it; the DRF must never make one.
        assert_eq!(t.rejected_offers, 0, "seed {seed}: offers refused");
        assert_eq!(t.allocator_errors + t.allocator_call_errors, 0, "seed {seed}: allocator errors");
        // Every task is accounted for.
        let ended = t.finished + t.failed + t.lost + t.killed;
        assert_eq!(t.launched, ended + t.running_at_end, "seed {seed}: {t:?}");
        // Nothing leaks: when every task has ended (or what is left can never run), nothing is
        // in use.
        assert!(r.stopped == "every task has ended" || r.stopped.starts_with("stalled"), "seed {seed}: {}", r.stopped);
        let last = r.series.last().unwrap();
        assert!(last.utilisation.values().all(|u| *u == 0.0), "seed {seed}: {:?}", last.utilisation);
        completed += usize::from(r.stopped == "every task has ended");
    }
    // Most random workloads must run to completion, or the property says little.
    assert!(completed >= 40, "only {completed} of 60 random workloads ran to completion");
}

/// A role's quota holds in a run and the report shows it: a limited role never uses more than
/// its limit while many tasks wait, a raised limit lets it use more, and a guaranteed role
/// reaches its guarantee while two others want the whole cluster.
#[test]
fn quotas_hold_in_a_run_and_are_reported() {
    let w = workload(
        r#"{"agents":[{"count":8,"resources":{"cpus":4,"mem":4096}}],
            "roles":{"capped":{"quota":{"limits":{"cpus":6}}},"sure":{"quota":{"guarantees":{"cpus":8,"mem":8192}}}},
            "frameworks":[
              {"name":"greedy","role":"capped","tasks":40,"task_resources":{"cpus":1,"mem":512},
               "duration":{"distribution":"constant","seconds":20},"tasks_per_offer":40},
              {"name":"heavy","role":"other","tasks":40,"task_resources":{"cpus":1,"mem":512},
               "duration":{"distribution":"constant","seconds":20},"tasks_per_offer":40},
              {"name":"light","role":"sure","tasks":8,"task_resources":{"cpus":1,"mem":1024},
               "duration":{"distribution":"constant","seconds":20},"tasks_per_offer":1}],
            "events":[{"type":"quota_change","at":30,"role":"capped","limits":{"cpus":12}}]}"#,
    );
    let r = run(&w, built_in(), HookChain::default(), Isolators::default(), 1);
    assert_eq!(r.stopped, "every task has ended");
    let quota = |name: &str| r.roles.iter().find(|x| x.role == name).unwrap().quota.clone().unwrap();
    let capped = quota("capped");
    assert_eq!(capped.limits.get("cpus"), 12.0, "the limit raised at t=30");
    assert_eq!(capped.used_peak.get("cpus"), 12.0, "{capped:?}");
    let index = r.frameworks.iter().position(|f| f.id == "greedy").unwrap();
    let before: Vec<_> = r.series.iter().filter(|round| round.t < 30.0).collect();
    let share = |round: &modhost_engine::sim::report::RoundRecord| f64::from(round.framework_shares[index]);
    assert!(before.iter().all(|round| share(round) <= 6.0 / 32.0 + 1e-6), "6 of 32 cpus at most before t=30");
    assert!(r.series.iter().any(|round| share(round) > 6.0 / 32.0 + 1e-6), "more once the limit is raised");
    assert_eq!(quota("sure").used_peak.get("cpus"), 8.0);
    let rows = r.quota_rows();
    let row = rows.iter().find(|row| row.role == "capped" && row.resource == "cpus").unwrap();
    assert_eq!((row.guarantee, row.limit, row.peak), (None, Some(12.0), 12.0));
}

/// Reserved resources in a run: tasks of the role (and its subroles) run on them, no other
/// role's do, an operator's reserve and unreserve apply to what is unallocated, and the report
/// shows what each role has reserved.
#[test]
fn reservations_hold_in_a_run_and_are_reported() {
    let w = workload(
        r#"{"agents":[{"count":2,"resources":{"cpus":2,"cpus(ml)":4,"mem":4096}}],
            "frameworks":[
              {"name":"train","role":"ml/train","tasks":12,"task_resources":{"cpus":1,"mem":256},
               "duration":{"distribution":"constant","seconds":10},"tasks_per_offer":12},
              {"name":"web","role":"web","tasks":30,"task_resources":{"cpus":1,"mem":256},
               "duration":{"distribution":"constant","seconds":10},"tasks_per_offer":30}],
            "events":[{"type":"reserve","at":0,"agent":"agent-1","resources":{"cpus(web)":1}},
                      {"type":"unreserve","at":0,"agent":"agent-0","resources":{"cpus(ml)":9}}]}"#,
    );
    let r = run(&w, built_in(), HookChain::default(), Isolators::default(), 1);
    assert_eq!(r.stopped, "every task has ended");
    assert_eq!(r.totals.rejected_offers + r.totals.allocator_call_errors, 0, "{:?}", r.totals);
    let events: Vec<&str> = r.events.iter().map(|(_, e)| e.as_str()).collect();
    assert!(events.contains(&"reserve cpus(web):1 on agent agent-1"), "{events:?}");
    assert!(events.iter().any(|e| e.contains("unreserve cpus(ml):9 on agent agent-0 refused: only 4")), "{events:?}");
    let reserved = |name: &str| r.roles.iter().find(|x| x.role == name).unwrap().reserved.clone();
    assert_eq!(reserved("ml"), Resources::new().with("cpus", 8.0));
    assert_eq!(reserved("web"), Resources::new().with("cpus", 1.0));
    // web never runs on more than the 4 cpus it may have (2 on agent-0; on agent-1 1
    // unreserved and the 1 reserved for it) of the 12, and train runs on ml's 8 reserved ones.
    let index = |id: &str| r.frameworks.iter().position(|f| f.id == id).unwrap();
    let (train, web) = (index("train"), index("web"));
    for round in &r.series {
        let web_share = f64::from(round.framework_shares[web]);
        assert!(web_share <= 4.0 / 12.0 + 1e-6, "t={}: web holds {web_share}", round.t);
    }
    assert!(r.frameworks[train].share_peak >= 8.0 / 12.0 - 1e-6, "{:?}", r.frameworks[train]);
    let rows = r.quota_rows();
    assert!(rows.iter().any(|row| row.role == "ml" && row.resource == "cpus" && row.reserved == 8.0), "{rows:?}");
}

/// A framework in several roles runs tasks in each, from the offers made to it there; each
/// role counts the launches and shares made in it, and the framework lists its roles.
#[test]
fn a_framework_in_several_roles_runs_tasks_in_each() {
    let w = workload(
        r#"{"agents":[{"count":4,"resources":{"cpus":4,"mem":4096}}],
            "roles":{"a":{"quota":{"limits":{"cpus":4}}}},
            "frameworks":[
              {"name":"both","roles":["a","b"],"tasks":12,"task_resources":{"cpus":1,"mem":256},
               "duration":{"distribution":"constant","seconds":5},"tasks_per_offer":12}]}"#,
    );
    let r = run(&w, built_in(), HookChain::default(), Isolators::default(), 1);
    assert_eq!(r.stopped, "every task has ended");
    assert_eq!(r.totals.rejected_offers + r.totals.allocator_call_errors, 0, "{:?}", r.totals);
    let role = |name: &str| r.roles.iter().find(|x| x.role == name).unwrap().clone();
    let (a, b) = (role("a"), role("b"));
    assert_eq!((a.frameworks, b.frameworks), (1, 1));
    assert_eq!(a.launched + b.launched, 12);
    // Role a may hold 4 cpus at most: the rest ran in b.
    assert_eq!(a.quota.unwrap().used_peak.get("cpus"), 4.0);
    assert!(b.launched >= 8, "{b:?}");
    assert_eq!(r.frameworks[0].role, "a,b");
}

/// In a tree of roles the report's shares are a role's whole subtree's, as DRF sorts them: an
/// inner role with no framework of its own (`eng/ml`) shows what its children hold, and an
/// ancestor never less than a descendant; its frameworks and launches stay its own. Ancestors
/// named by no framework or weight are listed too.
#[test]
fn a_roles_share_counts_its_subtree() {
    let w = Workload::from_file(&support::workspace().join("scripts/workloads/tenants.json")).unwrap();
    let r = run(&w, built_in(), HookChain::default(), Isolators::default(), 1);
    let role = |name: &str| r.roles.iter().find(|x| x.role == name).unwrap_or_else(|| panic!("no role {name}"));
    let (eng, ml, training) = (role("eng"), role("eng/ml"), role("eng/ml/training"));
    assert_eq!((ml.frameworks, ml.launched), (0, 0), "eng/ml has no framework of its own");
    assert!(ml.share_peak > 0.0 && ml.share_mean >= training.share_mean, "{ml:?} / {training:?}");
    assert!(eng.share_mean >= ml.share_mean + role("eng/web").share_mean, "{eng:?}");
    assert_eq!(eng.frameworks, 1, "eng's own framework only");
    for series in &r.series {
        let index = |name: &str| r.roles.iter().position(|x| x.role == name).unwrap();
        let shares = &series.role_shares;
        assert!(shares[index("eng")] + 1e-12 >= shares[index("eng/ml")], "t={}", series.t);
        assert!(shares[index("eng/ml")] + 1e-12 >= shares[index("eng/ml/serving")], "t={}", series.t);
    }
    let w = workload(
        r#"{"agents":[{"resources":{"cpus":4,"mem":4096}}],"frameworks":[{"name":"f","role":"a/b/c","tasks":1,
            "task_resources":{"cpus":1},"duration":{"distribution":"constant","seconds":1}}]}"#,
    );
    let r = run(&w, built_in(), HookChain::default(), Isolators::default(), 1);
    let names: Vec<&str> = r.roles.iter().map(|x| x.role.as_str()).collect();
    assert_eq!(names, ["a", "a/b", "a/b/c"]);
}
