//! `modhost simulate` and `modhost workload`, run as a user runs them.

mod support;

use std::process::{Command, Output};

fn modhost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modhost")).args(args).output().expect("run modhost")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The README's manifest of example modules, pointing at this build's library.
fn examples_manifest() -> String {
    let text = std::fs::read_to_string(support::workspace().join("scripts/examples.json"))
        .unwrap()
        .replace("target/release/libmodhost_examples.so", support::examples().to_str().unwrap());
    let path = support::scratch().join("examples.json");
    std::fs::write(&path, text).unwrap();
    format!("--modules=file://{}", path.display())
}

#[test]
fn the_demo_runs_with_the_example_modules_and_reports() {
    let html = support::scratch().join("report.html");
    let modules = examples_manifest();
    let report = format!("--report={}", html.display());
    let output = modhost(&["simulate", &modules, "--hooks=labels,environment", "--isolation=accounting", &report]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for fragment in [
        "workload 'demo', allocator 'hierarchical'",
        "every task has ended",
        "ROLE",
        "analytics",
        "labels [team=platform, scheduled-by=modhost]",
        "MODHOST_CLUSTER=demo",
        "isolator accounting:",
        "event    t=45s agent agent-3 lost",
        "decisions digest",
    ] {
        assert!(text.contains(fragment), "stdout lacks {fragment:?}:\n{text}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("Dominant share by role") && page.contains("Utilisation by resource")
    );
}

#[test]
fn json_output_has_totals_and_per_round_series() {
    let output = modhost(&["simulate", "--json", "--seed=3"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["seed"], 3);
    assert!(report["totals"]["launched"].as_u64().unwrap() > 0);
    let series = report["series"].as_array().unwrap();
    assert_eq!(series.len() as u64, report["rounds"].as_u64().unwrap());
    assert_eq!(series[0]["role_shares"].as_array().unwrap().len(), report["roles"].as_array().unwrap().len());
    assert!(report["allocator_us"]["p99"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_drf_module_and_the_built_in_allocator_make_the_same_decisions() {
    let modules = examples_manifest();
    let digest = |args: &[&str]| {
        let output = modhost(args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["decisions_digest"].as_str().unwrap().to_owned()
    };
    let built_in = digest(&["simulate", "--json", &modules]);
    let module = digest(&["simulate", "--json", &modules, "--allocator=org_modhost_HierarchicalDRF"]);
    assert_eq!(built_in, module);
}

/// Runs `simulate` with `args` and checks that it fails cleanly, saying `fragments`.
fn check_error(args: &[&str], fragments: &[&str]) {
    let output = modhost(&[&["simulate"], args].concat());
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
    for fragment in fragments {
        assert!(text.contains(fragment), "{args:?}: stderr lacks {fragment:?}:\n{text}");
    }
    support::assert_no_repeated_cause(&text);
}

#[test]
fn bad_flags_and_workloads_fail_with_a_clear_error() {
    let modules = examples_manifest();
    check_error(&["--allocator=nope"], &["Failed to create allocator 'nope': Module 'nope' unknown"]);
    check_error(
        &[&modules, "--allocator=labels"],
        &["module is of kind 'Hook', but the requested kind is 'Allocator'"],
    );
    check_error(&["--hooks=nope"], &["No hook module named 'nope' available"]);
    check_error(&[&modules, "--isolation=accounting,accounting"], &["Duplicate entries found in --isolation flag"]);
    check_error(&["--allocation_interval=fast"], &["--allocation_interval", "not a duration"]);
    let bad = support::scratch().join("bad-workload.json");
    std::fs::write(
        &bad,
        r#"{"agents":[{"resources":{"cpus":4,"mem":1024}}],"frameworks":[{"name":"f","role":"r","tasks":1,
            "task_resources":{"cpus":1,"mem":-5},"duration":{"distribution":"constant","seconds":1}}]}"#,
    )
    .unwrap();
    check_error(
        &[&format!("--workload={}", bad.display())],
        &["bad-workload.json", "frameworks[0].task_resources.mem", "negative"],
    );
    check_error(&["--workload=/nonexistent/w.json"], &["cannot read workload '/nonexistent/w.json'"]);
    check_error(&["--modules=/nonexistent/m.json"], &["Error reading module manifest file '/nonexistent/m.json'"]);
}

#[test]
fn the_decline_offers_generator_writes_a_valid_workload() {
    let output = modhost(&["workload", "decline-offers", "--agents=100", "--frameworks=10"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let path = support::scratch().join("decline.json");
    std::fs::write(&path, &output.stdout).unwrap();
    let check = modhost(&["workload", "check", path.to_str().unwrap()]);
    assert!(stdout(&check).contains("100 agents, 10 frameworks, 100 tasks"), "{}", stdout(&check));
    let run = modhost(&["simulate", &format!("--workload={}", path.display()), "--until=3", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    // Each agent takes one task of cpus 16; what is left (cpus 8) fits no task and is declined.
    assert_eq!(report["totals"]["launched"], 100);
    assert_eq!(report["totals"]["rejected_offers"], 0);
    assert_eq!(report["stopped"], "reached --until=3");
}

#[test]
fn pace_ties_virtual_time_to_wall_time() {
    let started = std::time::Instant::now();
    let output = modhost(&["simulate", "--pace=500", "--quiet"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The demo runs 175 virtual seconds: at 500 per second that is 0.35 s of wall time.
    assert!(started.elapsed() >= std::time::Duration::from_millis(340), "{:?}", started.elapsed());
    let output = modhost(&["simulate", "--pace=0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--pace=0"));
}

#[test]
fn a_shadow_allocator_is_reported_beside_the_active_one() {
    let modules = examples_manifest();
    let output = modhost(&["simulate", &modules, "--shadow_allocator=org_modhost_HierarchicalDRF"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("shadow   org_modhost_HierarchicalDRF: 176 of 176 rounds identical"), "{text}");
    let output = modhost(&["simulate", "--shadow_allocator=nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--shadow_allocator: Failed to create allocator 'nope'"), "{}", stderr(&output));
}

/// A chatty script's output is capped at `MODHOST_LOG_LIMIT` lines (50 by default), the rest
/// counted; `0` lifts the cap; a value that is not a number is refused.
#[test]
fn the_log_cap_follows_modhost_log_limit() {
    let path = support::script("chatty.lua", "function master_launch_task_label_decorator(r) print('launch') end");
    let manifest = serde_json::json!({"libraries": [{"file": support::lua_bridge(), "modules": [
        {"name": "chatty", "symbol": "org_modhost_lua", "parameters": [{"key": "script", "value": path}]}]}]});
    let run = |limit: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_modhost"))
            .args(["simulate", &format!("--modules={manifest}"), "--hooks=chatty"])
            .env("MODHOST_LOG_LIMIT", limit)
            .output()
            .expect("run modhost");
        let text = stderr(&output);
        (output.status.code(), text.matches("[chatty] launch").count(), text.contains("not shown"))
    };
    assert_eq!(run("3"), (Some(0), 3, true));
    let (code, lines, capped) = run("0");
    assert!(code == Some(0) && lines > 50 && !capped, "{code:?} {lines} {capped}");
    let output = Command::new(env!("CARGO_BIN_EXE_modhost"))
        .args(["simulate"])
        .env("MODHOST_LOG_LIMIT", "many")
        .output()
        .expect("run modhost");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("MODHOST_LOG_LIMIT=many: expected a number of lines"), "{}", stderr(&output));
}
