//! Hot reload, measured: the time from a script being saved to its new version answering,
//! and what a reload costs the calls made meanwhile (the slowest call during reloads, beside
//! the slowest call when nothing reloads), for Lua and Python hooks with the default poll.
//!
//! `cargo bench -p modhost --bench reload`

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use modhost::ModuleManager;
use modhost::manifest;
use modhost::script::VmTransport;
use modhost_abi::messages::TaskInfo;
use modhost_abi::{HOOK_METHODS, Hook, LaunchTask, Remote};

fn save(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn script(language: &str, value: usize) -> String {
    match language {
        "lua" => format!(
            "function master_launch_task_label_decorator(r) return {{ {{ key = 'v', value = '{value}' }} }} end\n"
        ),
        _ => format!("def master_launch_task_label_decorator(r):\n    return [{{'key': 'v', 'value': '{value}'}}]\n"),
    }
}

fn label(hook: &mut Remote<VmTransport>) -> (String, Duration) {
    let started = Instant::now();
    let request = LaunchTask { task: TaskInfo::default(), framework: Default::default(), agent: Default::default() };
    let labels = hook.master_launch_task_label_decorator(&request).unwrap().unwrap();
    (labels[0].value.clone(), started.elapsed())
}

fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("modhost-reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "{:<8} {:>16} {:>16} {:>22} {:>22}",
        "script", "save->new p50", "save->new p99", "slowest call, reloads", "slowest call, quiet"
    );
    for (language, library, symbol, extension) in [
        ("lua", "libmodhost_lua.so", "org_modhost_lua", "lua"),
        ("python", "libmodhost_python.so", "org_modhost_python", "py"),
    ] {
        let path = dir.join(format!("bench.{extension}"));
        std::fs::write(&path, script(language, 0)).unwrap();
        let json = serde_json::json!({"libraries": [{"file": support::library(library), "modules": [
            {"name": "hook", "symbol": symbol, "parameters": [
                {"key": "script", "value": path}, {"key": "reload", "value": "watch"}]}]}]});
        let manager = ModuleManager::new();
        manager.load(&manifest::parse(&json.to_string(), manifest::Origin::Inline).unwrap()).unwrap();
        let mut hook = Remote(VmTransport::new(&manager, "hook", HOOK_METHODS).unwrap());

        let mut quiet = Duration::ZERO;
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            quiet = quiet.max(label(&mut hook).1);
        }
        let (mut latencies, mut slowest) = (Vec::new(), Duration::ZERO);
        for i in 1..=50 {
            save(&path, &script(language, i));
            let saved = Instant::now();
            loop {
                let (value, took) = label(&mut hook);
                slowest = slowest.max(took);
                if value == i.to_string() {
                    latencies.push(saved.elapsed().as_secs_f64() * 1e3);
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        println!(
            "{language:<8} {:>13.1} ms {:>13.1} ms {:>19.0} us {:>19.0} us",
            percentile(&mut latencies, 0.5),
            percentile(&mut latencies, 0.99),
            slowest.as_secs_f64() * 1e6,
            quiet.as_secs_f64() * 1e6
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
