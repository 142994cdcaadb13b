//! Hot reload: edits take effect between calls; a broken save keeps the running version and
//! says why; an allocator's view of the cluster survives; a script's own state can be carried
//! over; 1,000 reloads under a stream of calls fail none of them.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use modhost::ModuleManager;
use modhost::hooks::HookChain;
use modhost::script::{self, VmTransport};
use modhost_abi::messages::{AgentInfo, AllocatorOptions, Filters, FrameworkInfo, Resources, TaskInfo};
use modhost_abi::{
    AddAgent, AddFramework, AgentRequest, Allocate, Allocator, HOOK_METHODS, Hook, LaunchTask, RecoverResources,
    Remote, UpdateQuota,
};
use modhost_engine::sim::workload::Workload;
use modhost_engine::sim::{SimConfig, Simulation};

/// Writes a script into a folder of its own: a watcher also follows the other scripts of its
/// folder (they may be required), so tests running side by side must not share one.
fn own_script(file: &str, code: &str) -> std::path::PathBuf {
    let dir = support::scratch().join(format!("reload-{}", file.replace('.', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, code).unwrap();
    // A copy of drf.lua or drf.py takes its books from its own folder.
    if code.contains("require \"cluster\"") {
        std::fs::copy(support::workspace().join("scripts/lua/cluster.lua"), dir.join("cluster.lua")).unwrap();
    }
    if code.contains("import cluster") {
        std::fs::copy(support::workspace().join("scripts/python/cluster.py"), dir.join("cluster.py")).unwrap();
    }
    path
}

/// Saves `text` as editors do: write a new file, rename it over the old one.
fn save(path: &Path, text: &str) {
    let temporary = path.with_extension("swp-tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn label_script(language: &str, value: &str) -> String {
    match language {
        "lua" => format!(
            "function master_launch_task_label_decorator(request)\n  return {{ {{ key = 'version', value = '{value}' }} }}\nend\n"
        ),
        _ => format!(
            "def master_launch_task_label_decorator(request):\n    return [{{'key': 'version', 'value': '{value}'}}]\n"
        ),
    }
}

fn manager(language: &str, name: &str, script: &Path, poll_ms: &str) -> ModuleManager {
    let extra: &[(&str, &str)] = &[("reload", "watch"), ("reload_poll_ms", poll_ms)];
    let modules = [(name, script, extra)];
    if language == "lua" { support::lua_manager(&modules) } else { support::python_manager(&modules) }
}

fn version_label(hook: &mut Remote<VmTransport>) -> String {
    let labels = hook.master_launch_task_label_decorator(&LaunchTask {
        task: TaskInfo::default(),
        framework: FrameworkInfo::default(),
        agent: AgentInfo::default(),
    });
    labels.unwrap().unwrap()[0].value.clone()
}

/// Calls the hook until `done` holds (a reload is installed or refused between two calls),
/// or fails after 10 s.
fn until(hook: &mut Remote<VmTransport>, done: impl Fn(&mut Remote<VmTransport>) -> bool) {
    let started = Instant::now();
    while {
        version_label(hook);
        !done(hook)
    } {
        assert!(started.elapsed() < Duration::from_secs(10), "no reload within 10 s: {:?}", hook.0.status());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each version's calls, errors (raised, and answers the host could not use) and time are
/// counted as they happen; a reload closes the old version's figures and starts the new one's.
#[test]
fn each_version_counts_its_own_calls_and_errors() {
    let code = "n = 0\nfunction master_launch_task_label_decorator(request)\n  n = n + 1\n  \
                if n % 3 == 0 then error('every third call') end\n  if n == 5 then return 'not labels' end\n  \
                return { { key = 'n', value = tostring(n) } }\nend\n";
    let path = own_script("counted.lua", code);
    let manager = manager("lua", "counted", &path, "10");
    let mut hook = Remote(VmTransport::new(&manager, "counted", HOOK_METHODS).unwrap());
    let request = LaunchTask { task: TaskInfo::default(), framework: Default::default(), agent: Default::default() };
    let failed: Vec<bool> = (0..6).map(|_| hook.master_launch_task_label_decorator(&request).is_err()).collect();
    assert_eq!(failed, [false, false, true, false, true, true]);
    let status = hook.0.status();
    let first = &status.versions[0];
    assert_eq!((first.calls, first.errors), (6, 3), "{status:?}");
    assert!(first.total_us > 0.0, "{status:?}");

    save(&path, &label_script("lua", "next"));
    let started = Instant::now();
    while hook.0.status().versions.len() < 2 {
        let _ = hook.master_launch_task_label_decorator(&request);
        assert!(started.elapsed() < Duration::from_secs(10), "no reload within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = hook.0.status();
    for _ in 0..4 {
        hook.master_launch_task_label_decorator(&request).unwrap();
    }
    let after = hook.0.status();
    assert_eq!(after.versions[0].calls, before.versions[0].calls, "the old version's figures are final");
    assert_eq!(after.versions[0].errors, before.versions[0].errors);
    assert_eq!(after.versions[1].calls, before.versions[1].calls + 4, "{after:?}");
    assert_eq!(after.versions[1].errors, 0, "{after:?}");
}

/// A script's helper file, `require`d or imported from its folder: saving it reloads the
/// script, and the new version runs the helper's new text.
#[test]
fn an_edited_helper_file_is_what_the_new_version_runs() {
    // (language, script file, script, helper file, the helper's text for a value)
    type Case = (&'static str, &'static str, &'static str, &'static str, fn(&str) -> String);
    let cases: [Case; 2] = [
        (
            "lua",
            "hooked_by_helper.lua",
            "local helper = require 'label_helper'\nfunction master_launch_task_label_decorator(request)\n  \
             return { { key = 'version', value = helper.VALUE } }\nend\n",
            "label_helper.lua",
            |v: &str| format!("return {{ VALUE = '{v}' }}\n"),
        ),
        (
            "python",
            "hooked_by_helper.py",
            "import label_helper\ndef master_launch_task_label_decorator(request):\n    \
             return [{'key': 'version', 'value': label_helper.VALUE}]\n",
            "label_helper.py",
            |v: &str| format!("VALUE = '{v}'\n"),
        ),
    ];
    for (language, file, code, helper_file, helper) in cases {
        let path = own_script(file, code);
        let helper_path = path.with_file_name(helper_file);
        std::fs::write(&helper_path, helper("one")).unwrap();
        let manager = manager(language, "helped", &path, "10");
        let mut hook = Remote(VmTransport::new(&manager, "helped", HOOK_METHODS).unwrap());
        assert_eq!(version_label(&mut hook), "one", "{language}");
        save(&helper_path, &helper("two"));
        until(&mut hook, |h| h.0.status().reloads_ok + h.0.status().reloads_failed >= 1);
        assert_eq!(hook.0.status().reloads_ok, 1, "{language}: {:?}", hook.0.status());
        assert_eq!(version_label(&mut hook), "two", "{language}: the new version runs the helper's new text");
    }
}

#[test]
fn an_edited_hook_answers_with_its_new_text_and_a_broken_save_keeps_the_old_one() {
    for (language, extension) in [("lua", "lua"), ("python", "py")] {
        let path = own_script(&format!("edited_hook.{extension}"), &label_script(language, "one"));
        let manager = manager(language, "edited", &path, "10");
        let mut hook = Remote(VmTransport::new(&manager, "edited", HOOK_METHODS).unwrap());
        assert_eq!(version_label(&mut hook), "one");
        let first = hook.0.status().version.clone();

        save(&path, &label_script(language, "two"));
        until(&mut hook, |h| version_label(h) == "two");
        let status = hook.0.status().clone();
        assert_eq!(status.reloads_ok, 1, "{language}");
        assert_ne!(status.version, first, "{language}: the content hash changed");
        assert_eq!(status.versions.len(), 2);
        assert!(status.versions[0].calls >= 1 && status.versions[1].calls >= 1, "{status:?}");

        let broken =
            if language == "lua" { "function master_launch_task_label_decorator(\n" } else { "def broken(:\n" };
        save(&path, broken);
        until(&mut hook, |h| h.0.status().reloads_failed == 1);
        assert_eq!(version_label(&mut hook), "two", "{language}: the running version stays");
        let error = hook.0.status().last_error.clone().unwrap();
        assert!(error.contains(&format!("edited_hook.{extension}:")), "{language}: no file:line in {error}");
    }
}

#[test]
fn a_reloaded_allocator_keeps_the_clusters_state_and_its_own() {
    // A DRF that also counts its rounds, and carries the count across versions.
    let drf = std::fs::read_to_string(support::workspace().join("scripts/lua/drf.lua")).unwrap();
    let counting = |tag: &str| {
        format!(
            "{drf}\nrounds = rounds or 0\nlocal inner = allocate\nfunction allocate(request)\n  rounds = rounds + 1\n  return inner(request)\nend\n\
             function export_state() return {{ rounds = rounds }} end\n\
             function import_state(state) rounds = state.rounds end\n\
             function how_many() return {{ rounds = rounds, tag = '{tag}' }} end\n"
        )
    };
    let path = own_script("reloaded_drf.lua", &counting("first"));
    let manager = manager("lua", "drf", &path, "10");
    let mut allocator = script::create_allocator(&manager, "drf").unwrap();
    allocator.initialize(&AllocatorOptions::default()).unwrap();
    for i in 0..4 {
        let agent =
            AgentInfo { id: format!("a{i}"), resources: Resources::new().with("cpus", 4.0), ..Default::default() };
        allocator.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
    }
    for f in ["f1", "f2"] {
        let framework = FrameworkInfo { id: f.into(), name: f.into(), role: f.into(), ..Default::default() };
        allocator.add_framework(&AddFramework { framework, used: vec![], active: true }).unwrap();
    }
    let offers = allocator.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap().to_vec();
    assert_eq!(offers.len(), 4);
    // Give two agents back; keep two allocated.
    for offer in &offers[..2] {
        let request = RecoverResources {
            framework_id: offer.framework_id.clone(),
            role: String::new(),
            agent_id: offer.agent_id.clone(),
            resources: offer.resources.clone(),
            filters: None,
        };
        allocator.recover_resources(&request).unwrap();
    }

    save(&path, &counting("second"));
    // Generous, for loaded CI machines: the watcher needs two polls and a load.
    std::thread::sleep(Duration::from_millis(1000));
    // The next call installs the new version after replaying the state: it knows what is
    // allocated, so it offers exactly the two free agents, nothing twice.
    let again = allocator.allocate(&Allocate { now: 1.0, dry_run: false }).unwrap().to_vec();
    let mut agents: Vec<&str> = again.iter().map(|o| o.agent_id.as_str()).collect();
    agents.sort();
    let mut freed: Vec<&str> = offers[..2].iter().map(|o| o.agent_id.as_str()).collect();
    freed.sort();
    assert_eq!(agents, freed);
    assert!(allocator.allocate(&Allocate { now: 2.0, dry_run: false }).unwrap().is_empty(), "nothing left to offer");
    let events = script::reload::take_events();
    assert!(events.iter().any(|e| e.ok && e.module == "drf"), "{events:?}");
}

#[test]
fn export_and_import_state_carry_a_scripts_own_state() {
    let script = |tag: &str| {
        format!(
            "count = 0\nfunction master_launch_task_label_decorator(request)\n  count = count + 1\n  \
             return {{ {{ key = '{tag}', value = tostring(count) }} }}\nend\n\
             function export_state() return {{ count = count }} end\n\
             function import_state(state) count = state.count end\n"
        )
    };
    let path = own_script("stateful.lua", &script("before"));
    let manager = manager("lua", "stateful", &path, "10");
    let mut hook = Remote(VmTransport::new(&manager, "stateful", HOOK_METHODS).unwrap());
    for _ in 0..3 {
        version_label(&mut hook);
    }
    save(&path, &script("after"));
    let started = Instant::now();
    loop {
        let labels = hook
            .master_launch_task_label_decorator(&LaunchTask {
                task: TaskInfo::default(),
                framework: Default::default(),
                agent: Default::default(),
            })
            .unwrap()
            .unwrap();
        if labels[0].key == "after" {
            // Three calls before, then the calls made while waiting, then this one: the count
            // went on from where the old version left it.
            assert!(labels[0].value.parse::<u32>().unwrap() > 3, "{labels:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn validate_false_keeps_the_running_version() {
    let path = own_script("validated.lua", &label_script("lua", "good"));
    let manager = manager("lua", "validated", &path, "10");
    let mut hook = Remote(VmTransport::new(&manager, "validated", HOOK_METHODS).unwrap());
    save(&path, &format!("{}\nfunction validate() return false end\n", label_script("lua", "bad")));
    until(&mut hook, |h| h.0.status().reloads_failed == 1);
    assert_eq!(version_label(&mut hook), "good");
    assert!(hook.0.status().last_error.as_ref().unwrap().contains("validate() returned false"));
}

#[test]
fn a_thousand_reloads_under_a_stream_of_calls_fail_no_call() {
    let path = own_script("stress.lua", &label_script("lua", "0"));
    let manager = manager("lua", "stress", &path, "1");
    let mut hook = Remote(VmTransport::new(&manager, "stress", HOOK_METHODS).unwrap());
    let writer_path = path.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<String>();
    let writer = std::thread::spawn(move || {
        for i in 1..=1000 {
            save(&writer_path, &label_script("lua", &i.to_string()));
            // Wait until the caller has seen this version before writing the next one.
            let started = Instant::now();
            while seen_rx.recv_timeout(Duration::from_secs(10)).expect("the caller stopped seeing reloads")
                != i.to_string()
            {
                assert!(started.elapsed() < Duration::from_secs(10));
            }
        }
        done_tx.send(()).unwrap();
    });
    let (mut calls, mut slowest) = (0u64, Duration::ZERO);
    while done_rx.try_recv().is_err() {
        let started = Instant::now();
        let label = version_label(&mut hook); // panics on any failed call
        slowest = slowest.max(started.elapsed());
        calls += 1;
        let _ = seen_tx.send(label);
    }
    writer.join().unwrap();
    let status = hook.0.status();
    assert_eq!(status.reloads_ok, 1000, "{:?}", (status.reloads_failed, &status.last_error));
    assert_eq!(status.reloads_failed, 0);
    assert!(calls > 1000);
    // A call never waits longer than one reload (building the new Vm happens off to the side).
    assert!(slowest < Duration::from_millis(500), "slowest call {slowest:?}");
}

#[test]
fn a_policy_edited_during_a_simulation_takes_over_and_a_broken_save_is_refused() {
    let drf = std::fs::read_to_string(support::workspace().join("scripts/lua/drf.lua")).unwrap();
    let path = own_script("live_drf.lua", &drf);
    let manager = manager("lua", "live", &path, "5");
    let workload = Workload::from_file(&support::workspace().join("scripts/workloads/demo.json")).unwrap();
    let allocator = modhost_engine::sim::create_allocator(&manager, "live").unwrap();
    let config = SimConfig {
        allocation_interval: 1.0,
        seed: 1,
        until: Some(100.0),
        max_rounds: 1000,
        allocator_name: "live".into(),
        max_failed_rounds: 0,
    };
    let frozen = format!("{drf}\nfunction allocate(request) return {{}} end\n");
    let mut rounds = 0;
    let report =
        Simulation::new(config, &workload, allocator, HookChain::default(), Default::default()).run(|progress| {
            rounds += 1;
            if rounds == 20 {
                // From now on the policy offers nothing.
                save(&path, &frozen);
                std::thread::sleep(Duration::from_millis(500));
            }
            if rounds == 40 {
                save(&path, "function allocate(request\n");
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = progress;
        });
    let launched_after: u32 = report.series.iter().filter(|r| r.t > 21.0).map(|r| r.launched).sum();
    assert_eq!(launched_after, 0, "the edited policy offers nothing, so nothing launches");
    assert!(report.totals.launched > 0);
    assert_eq!(report.totals.rejected_offers, 0, "no resource offered twice or lost across the reloads");
    let reloads: Vec<&String> = report.events.iter().map(|(_, e)| e).filter(|e| e.contains("reload")).collect();
    assert!(reloads.iter().any(|e| e.starts_with("live: reloaded")), "{reloads:?}");
    assert!(reloads.iter().any(|e| e.starts_with("live: reload of") && e.contains("live_drf.lua:")), "{reloads:?}");
    // The report shows the module's versions: two ran, one reload refused, no call failed.
    let status = report.scripts.iter().find(|s| s.module == "live").expect("the scripted allocator is in the report");
    assert_eq!((status.reloads_ok, status.reloads_failed), (1, 1), "{status:?}");
    assert_eq!(status.versions.len(), 2);
    assert!(status.versions.iter().all(|v| v.calls > 0 && v.errors == 0), "{status:?}");
    assert!(status.last_error.as_ref().unwrap().contains("live_drf.lua:"));
}

/// The built-in DRF and a scripted DRF fed the same calls, compared round by round; the
/// script is saved again (same text) after round `reload_after`.
fn decisions_across_a_reload(language: &str, file: &str) {
    let text = std::fs::read_to_string(support::workspace().join(file)).unwrap();
    let extension = if language == "lua" { "lua" } else { "py" };
    let path = own_script(&format!("steady_drf.{extension}"), &text);
    let manager = manager(language, "steady", &path, "10");
    let mut scripted = script::create_allocator(&manager, "steady").unwrap();
    let mut built_in = modhost_drf::HierarchicalDrf::default();
    let allocators: [&mut dyn Allocator; 2] = [scripted.as_mut(), &mut built_in];
    for allocator in allocators {
        allocator.initialize(&AllocatorOptions { seed: 7, ..AllocatorOptions::default() }).unwrap();
        // Added out of the order of their names, which is the order the host replays them in.
        for i in 0..8 {
            let mut resources = Resources::new().with("cpus", 4.0).with("mem", 1024.0);
            if i % 3 == 0 {
                // Some cpus reserved for role-f1: reservations carry over the reload too.
                resources = resources.with("cpus(role-f1)", 2.0);
            }
            let agent = AgentInfo { id: format!("a{}", i * 5 % 8), resources, ..Default::default() };
            allocator.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
        }
        for f in ["f1", "f2", "f3"] {
            let framework =
                FrameworkInfo { id: f.into(), name: f.into(), role: format!("role-{f}"), ..Default::default() };
            allocator.add_framework(&AddFramework { framework, used: vec![], active: true }).unwrap();
        }
        // And quotas: a limit on one role, a guarantee for another.
        let cpus = |n: f64| Resources::new().with("cpus", n);
        let limit = UpdateQuota { role: "role-f2".into(), limits: cpus(6.0), ..UpdateQuota::default() };
        let guarantee = UpdateQuota { role: "role-f3".into(), guarantees: cpus(8.0), ..UpdateQuota::default() };
        allocator.update_quota(&limit).unwrap();
        allocator.update_quota(&guarantee).unwrap();
    }
    for round in 0..8 {
        if round == 2 {
            // An agent leaves before the reload; the policy's saved order must still hold.
            scripted.remove_agent(&AgentRequest { agent_id: "a5".into() }).unwrap();
            built_in.remove_agent(&AgentRequest { agent_id: "a5".into() }).unwrap();
        }
        if round == 3 {
            save(&path, &format!("{text}\n"));
            std::thread::sleep(Duration::from_millis(1000));
        }
        let now = f64::from(round);
        let request = Allocate { now, dry_run: false };
        let expected = built_in.allocate(&request).unwrap().to_vec();
        let got = scripted.allocate(&request).unwrap().to_vec();
        assert_eq!(got, expected, "{file}: round {round}");
        // Frameworks decline every other offer with a filter of 2.5 s and keep the rest for a
        // round; so filters, shares and allocation counts all carry over the reload.
        for (i, offer) in got.iter().enumerate() {
            let filters = (i % 2 == 0).then_some(Filters { refuse_seconds: 2.5 });
            let back = RecoverResources {
                framework_id: offer.framework_id.clone(),
                role: String::new(),
                agent_id: offer.agent_id.clone(),
                resources: offer.resources.clone(),
                filters,
            };
            if i % 2 == 0 || round % 2 == 1 {
                scripted.recover_resources(&back).unwrap();
                built_in.recover_resources(&back).unwrap();
            }
        }
    }
    let events = script::reload::take_events();
    assert!(events.iter().any(|e| e.ok && e.module == "steady"), "{file} was reloaded: {events:?}");
}

#[test]
fn reloading_the_bundled_drf_policies_changes_no_decision() {
    decisions_across_a_reload("lua", "scripts/lua/drf.lua");
    decisions_across_a_reload("python", "scripts/python/drf.py");
}
