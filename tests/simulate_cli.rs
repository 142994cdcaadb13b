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
    let output = modhost(&["simulate", "--pace=500", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The demo runs over a hundred virtual seconds: at 500 per second, a fifth of a second or
    // more of wall time.
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let end = report["end_time"].as_f64().unwrap();
    assert!(end > 100.0, "{end}");
    let paced = std::time::Duration::from_secs_f64(end / 500.0 * 0.97);
    assert!(started.elapsed() >= paced, "{:?} for {end} virtual seconds", started.elapsed());
    let output = modhost(&["simulate", "--pace=0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--pace=0"));
}

#[test]
fn a_shadow_allocator_is_reported_beside_the_active_one() {
    let modules = examples_manifest();
    let html = support::scratch().join("shadow.html");
    let report = format!("--report={}", html.display());
    let output = modhost(&["simulate", &modules, "--shadow_allocator=org_modhost_HierarchicalDRF", &report]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let rounds = text.lines().find_map(|l| l.strip_prefix("ran ")).and_then(|l| l.split(' ').next()).unwrap();
    let identical = format!("shadow   org_modhost_HierarchicalDRF: {rounds} of {rounds} rounds identical");
    assert!(text.contains(&identical), "{text}");
    check_report_page(&std::fs::read_to_string(&html).unwrap());
    let output = modhost(&["simulate", "--shadow_allocator=nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--shadow_allocator: Failed to create allocator 'nope'"), "{}", stderr(&output));
}

/// The HTML report of a shadow run: each role has one colour throughout the page (its
/// swatch in the roles table, its line in the share chart, both its lines in the shadow
/// chart, where the shadow's is dashed), no resource line takes a role's colour, legends sit
/// outside the plots, and the page carries the shadow summary and the frameworks table the
/// terminal prints.
fn check_report_page(page: &str) {
    let charts: Vec<&str> = page.split("<svg width=\"900\"").skip(1).map(|c| &c[..c.find("</svg>").unwrap()]).collect();
    let [shares, utilisation, shadow] = charts[..] else { panic!("three charts, not {}", charts.len()) };
    let roles_table = &page[page.find("<h2>Roles</h2>").unwrap()..page.find("<h2>Frameworks</h2>").unwrap()];
    let mut colours = Vec::new();
    for row in roles_table.split("<tr><td>").skip(1) {
        let colour = &row[row.find("background:").unwrap() + 11..][..7];
        let role = &row[row.find("</span>").unwrap() + 7..row.find("</td>").unwrap()];
        let stroke = format!("stroke=\"{colour}\"");
        assert!(shares.contains(&stroke), "{role}'s line in the share chart is not {colour}");
        assert!(shadow.contains(&stroke), "{role}'s lines in the shadow chart are not {colour}");
        assert!(!utilisation.contains(&stroke), "a resource line takes {role}'s colour {colour}");
        for chart in &charts {
            assert!(!chart.contains(&format!(">\n{role}\n<")), "{role}'s legend is drawn inside a plot");
        }
        let dashed = format!(
            "stroke=\"{colour}\" stroke-width=\"3\" stroke-dasharray=\"6 4\"/></svg> {role} (org_modhost_HierarchicalDRF)"
        );
        assert!(page.contains(&dashed), "{role}'s shadow line is not dashed in the legend");
        colours.push(colour);
    }
    assert_eq!(colours.len(), 3, "{roles_table}");
    colours.sort_unstable();
    colours.dedup();
    assert_eq!(colours.len(), 3, "each role its own colour");
    assert!(
        page.contains("Shadow <b>org_modhost_HierarchicalDRF</b>: ") && page.contains("rounds identical"),
        "summary"
    );
    let frameworks = &page[page.find("<h2>Frameworks</h2>").unwrap()..];
    for id in ["analytics", "batch", "late-batch", "web-1", "web-2"] {
        assert!(frameworks.contains(&format!("<tr><td>{id}</td>")), "{id} missing from the frameworks table");
    }
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

/// A scripted module: its name, its bridge library and Vm symbol, its script, and parameters
/// besides `script`.
type Scripted<'a> = (&'a str, &'a std::path::Path, &'a str, &'a std::path::Path, &'a [(&'a str, &'a str)]);

/// A manifest of scripted modules, written to `file` in the scratch directory.
fn scripted_manifest(file: &str, modules: &[Scripted<'_>]) -> String {
    let libraries: Vec<serde_json::Value> = modules
        .iter()
        .map(|(name, bridge, symbol, script, extra)| {
            let mut parameters = vec![serde_json::json!({"key": "script", "value": script})];
            parameters.extend(extra.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})));
            serde_json::json!({"file": bridge, "modules": [{"name": name, "symbol": symbol, "parameters": parameters}]})
        })
        .collect();
    let path = support::scratch().join(file);
    std::fs::write(&path, serde_json::json!({ "libraries": libraries }).to_string()).unwrap();
    format!("--modules=file://{}", path.display())
}

/// An allocator that fails every round ends the run after `--max_failed_rounds` rounds (10
/// by default), with its report (printed, --json, --report), why (the module, the last error
/// with the script's file:line, how many rounds) and a non-zero status. It had run on for
/// 1,000 idle rounds and exited 0; a loop, stopped at its deadline each round, for about 17
/// minutes. A module with `fallback=hierarchical` runs to the end as before.
#[test]
fn an_allocator_that_fails_every_round_ends_the_run_with_a_verdict() {
    let (lua, python) = (support::lua_bridge(), support::python_bridge());
    let raises = support::script(
        "raises.lua",
        "-- a policy with a bug\nfunction allocate(request)\n  error('no policy today')\nend\n",
    );
    let spins = support::script("spins.lua", "function allocate(request)\n  while true do end\nend\n");
    let raises_py = support::script("raises.py", "def allocate(request):\n    raise ValueError('no policy today')\n");
    let modules = scripted_manifest(
        "failing.json",
        &[
            ("raises", &lua, "org_modhost_lua", &raises, &[]),
            ("spins", &lua, "org_modhost_lua", &spins, &[("timeout_ms", "20")]),
            ("raises_py", &python, "org_modhost_python", &raises_py, &[]),
            ("falls_back", &lua, "org_modhost_lua", &raises, &[("fallback", "hierarchical")]),
        ],
    );
    let html = support::scratch().join("failed.html");
    let report = format!("--report={}", html.display());
    for (allocator, rounds, place, flag) in [
        ("raises", 10, "raises.lua:3: no policy today", None),
        ("spins", 3, "spins.lua:2: timeout: the call ran longer than timeout_ms=20", Some("--max_failed_rounds=3")),
        ("raises_py", 4, "raises.py:2: ValueError: no policy today", Some("--max_failed_rounds=4")),
    ] {
        let allocator_flag = format!("--allocator={allocator}");
        let mut args = vec!["simulate", &modules, &allocator_flag, "--quiet", &report];
        args.extend(flag);
        let _ = std::fs::remove_file(&html);
        let output = modhost(&args);
        let (out, err) = (stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(1), "{allocator}: {out}\n{err}");
        let verdict = format!("allocator '{allocator}' failed {rounds} rounds in a row");
        assert!(out.contains(&format!("ran {rounds} rounds to t={}s: failed: {verdict}", rounds - 1)), "{out}");
        assert!(out.contains(place) && out.contains("ROLE") && out.contains("decisions digest"), "{allocator}: {out}");
        assert!(err.contains(&format!("the run failed: {verdict}")) && err.contains(place), "{allocator}: {err}");
        assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"), "{allocator}: the report is written");
    }
    // --json carries the verdict too.
    let output = modhost(&["simulate", &modules, "--allocator=raises", "--json", "--max_failed_rounds=2"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["rounds"], 2);
    assert!(json["failure"].as_str().unwrap().contains("raises.lua:3: no policy today"), "{json}");
    // A fallback keeps the run going; so does 0.
    for args in [&["--allocator=falls_back"][..], &["--allocator=raises", "--max_failed_rounds=0", "--until=30"]] {
        let output = modhost(&[&["simulate", modules.as_str(), "--quiet"][..], args].concat());
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", stderr(&output));
        let out = stdout(&output);
        let ended = if args.len() == 1 { "every task has ended" } else { "reached --until=30" };
        assert!(out.contains(ended), "{args:?}: {out}");
    }
}
