//! `modhost simulate`: load modules, build the cluster of a workload, run it, report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use modhost::hooks::HookChain;
use modhost::isolators::Isolators;
use modhost::{ModuleManager, manifest};
use modhost_engine::sim::report::Report;
use modhost_engine::sim::workload::{self, Workload};
use modhost_engine::sim::{self, SimConfig, Simulation};

use super::ModuleSources;

/// Arguments of `modhost simulate` (Mesos's flag names where Mesos has the flag).
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    sources: ModuleSources,
    /// The allocator: `hierarchical` (built in) or the name of an Allocator module.
    #[arg(long, default_value = "hierarchical")]
    allocator: String,
    /// A candidate allocator to run in the shadow of the active one: it sees the same inputs,
    /// its decisions are compared, only the active one's are applied.
    #[arg(long = "shadow_allocator")]
    shadow_allocator: Option<String>,
    /// Hook modules to install, comma-separated, in the order they run.
    #[arg(long)]
    hooks: Option<String>,
    /// Isolator modules, comma-separated, in the order they run.
    #[arg(long)]
    isolation: Option<String>,
    /// Time between allocation rounds (Mesos syntax: 1secs, 500ms; or seconds).
    #[arg(long = "allocation_interval", default_value = "1secs")]
    allocation_interval: String,
    /// A workload file (default: the bundled demo).
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Seed for the agent shuffle and task durations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop at this virtual time (seconds, or 10mins, ...).
    #[arg(long)]
    until: Option<String>,
    /// Stop after this many rounds.
    #[arg(long = "max_rounds", default_value_t = 100_000)]
    max_rounds: usize,
    /// End the run, with its report and a non-zero exit status, once the allocator's
    /// `allocate` has failed this many rounds in a row (0: never). A scripted allocator
    /// with `fallback=hierarchical` does not fail its rounds.
    #[arg(long = "max_failed_rounds", default_value_t = 10)]
    max_failed_rounds: usize,
    /// Print the report as JSON (with every round's figures).
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report with charts to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Tie virtual time to wall time: this many virtual seconds per second (for watching a
    /// run, and editing its scripts while it goes). Off by default: as fast as possible.
    #[arg(long)]
    pace: Option<f64>,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    // Scripted modules follow edits to their scripts unless their parameters say reload=off.
    modhost::script::reload::watch_by_default(true);
    let manager = ModuleManager::new();
    let manifests = manifest::from_flags(args.sources.modules.as_deref(), args.sources.modules_dir.as_deref())?;
    let loaded = manager.load_all(&manifests).context("Error loading modules")?;
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    // As a Mesos master does at start: create every Anonymous module, keep it for the run.
    let anonymous = modhost::script::create_anonymous_modules(&manager)?;
    let hooks = HookChain::install(&manager, args.hooks.as_deref().unwrap_or(""))?;
    let isolators = Isolators::install(&manager, args.isolation.as_deref().unwrap_or(""))?;
    let allocator = sim::create_allocator(&manager, &args.allocator)?;
    let workload = match &args.workload {
        Some(path) => Workload::from_file(path)?,
        None => Workload::parse(workload::DEMO, "demo (bundled)")?,
    };
    let interval =
        sim::parse_duration(&args.allocation_interval).map_err(|e| anyhow::anyhow!("--allocation_interval: {e}"))?;
    let until =
        args.until.as_deref().map(sim::parse_duration).transpose().map_err(|e| anyhow::anyhow!("--until: {e}"))?;
    let config = SimConfig {
        allocation_interval: interval,
        seed: args.seed,
        until,
        max_rounds: args.max_rounds,
        allocator_name: args.allocator.clone(),
        max_failed_rounds: args.max_failed_rounds,
    };

    if let Some(pace) = args.pace
        && !(pace.is_finite() && pace > 0.0)
    {
        anyhow::bail!("--pace={pace}: expected virtual seconds per second > 0");
    }
    let bar = (!args.quiet && !args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(workload.total_tasks());
        let template = if args.pace.is_some() {
            "{spinner} t={msg}\n[{bar:40}] {pos}/{len} tasks ended ({elapsed})"
        } else {
            "{spinner} t={msg} [{bar:40}] {pos}/{len} tasks ended ({elapsed})"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "));
        bar
    });
    let started = std::time::Instant::now();
    let mut simulation = Simulation::new(config, &workload, allocator, hooks, isolators);
    if let Some(name) = &args.shadow_allocator {
        let shadow = sim::create_allocator(&manager, name).map_err(|e| anyhow::anyhow!("--shadow_allocator: {e}"))?;
        simulation = simulation.with_shadow(name, shadow);
    }
    let report = simulation.run(|progress| {
        if let Some(bar) = &bar {
            bar.set_position(progress.ended);
            if args.pace.is_some() {
                bar.set_message(format!("{:.0}s running={} {}", progress.t, progress.running, progress.summary));
            } else {
                bar.set_message(format!("{:.0}s running={}", progress.t, progress.running));
            }
        }
        // Paced: wait until wall time catches up with virtual time.
        if let Some(pace) = args.pace {
            let due = std::time::Duration::from_secs_f64(progress.t / pace);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    drop(anonymous);

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(path) = &args.report {
        let page = sim::html(&report).map_err(|e| anyhow::anyhow!("cannot draw the charts: {e}"))?;
        std::fs::write(path, page).with_context(|| format!("cannot write the report to '{}'", path.display()))?;
        if !args.json {
            println!("\nHTML report with charts: {}", path.display());
        }
    }
    if let Some(failure) = &report.failure {
        eprintln!("modhost simulate: the run failed: {failure}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

fn print_report(report: &Report) {
    let t = &report.totals;
    println!(
        "modhost simulate: workload '{}', allocator '{}', seed {}, interval {}s",
        report.workload, report.allocator, report.seed, report.allocation_interval
    );
    println!("ran {} rounds to t={}s: {}\n", report.rounds, report.end_time, report.stopped);
    println!(
        "tasks    {} launched, {} finished, {} failed, {} lost, {} killed, {} running, {} never launched",
        t.launched, t.finished, t.failed, t.lost, t.killed, t.running_at_end, t.pending_at_end
    );
    println!(
        "offers   {} made, {} declined, {} refused by the host; allocator errors: {} in allocate, {} in other calls",
        t.offers, t.declined, t.rejected_offers, t.allocator_errors, t.allocator_call_errors
    );
    let use_line: Vec<String> = report
        .utilisation_mean
        .iter()
        .map(|(name, mean)| format!("{name} {} (peak {})", percent(*mean), percent(report.utilisation_peak[name])))
        .collect();
    println!("usage    {}", use_line.join(", "));
    println!(
        "wait     mean {:.1}s, median {:.1}s, p99 {:.1}s from submission to launch",
        report.task_wait.mean, report.task_wait.median, report.task_wait.p99
    );
    println!(
        "allocate median {:.1} us, p99 {:.1} us, max {:.1} us per round (wall time)",
        report.allocator_us.median, report.allocator_us.p99, report.allocator_us.max
    );
    println!("memory   peak RSS {:.1} MiB\n", report.peak_rss_kib as f64 / 1024.0);

    println!(
        "{:<20} {:>6} {:>10} {:>9} {:>11} {:>11} {:>11}",
        "ROLE", "WEIGHT", "FRAMEWORKS", "LAUNCHED", "MEAN SHARE", "PEAK SHARE", "FINAL SHARE"
    );
    for role in &report.roles {
        println!(
            "{:<20} {:>6} {:>10} {:>9} {:>11} {:>11} {:>11}",
            role.role,
            role.weight,
            role.frameworks,
            role.launched,
            percent(role.share_mean),
            percent(role.share_peak),
            percent(role.share_final)
        );
    }
    let quota = report.quota_rows();
    if !quota.is_empty() {
        let amount = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        println!(
            "\n{:<20} {:<9} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "QUOTA ROLE", "RESOURCE", "GUARANTEE", "LIMIT", "RESERVED", "USED", "PEAK USED"
        );
        for row in quota {
            println!(
                "{:<20} {:<9} {:>10} {:>10} {:>10} {:>10} {:>10}",
                row.role,
                row.resource,
                amount(row.guarantee),
                amount(row.limit),
                row.reserved,
                row.used,
                row.peak
            );
        }
    }
    let shown = 15;
    let frameworks = report.frameworks_by_share();
    println!(
        "\n{:<20} {:<14} {:>9} {:>9} {:>11} {:>11} {:>10}",
        "FRAMEWORK", "ROLE", "LAUNCHED/TASKS", "FINISHED", "MEAN SHARE", "PEAK SHARE", "MEAN WAIT"
    );
    for f in frameworks.iter().take(shown) {
        println!(
            "{:<20} {:<14} {:>10}/{:<3} {:>9} {:>11} {:>11} {:>9.1}s",
            f.id,
            f.role,
            f.launched,
            f.tasks,
            f.finished,
            percent(f.share_mean),
            percent(f.share_peak),
            f.wait_mean
        );
    }
    if frameworks.len() > shown {
        println!("... and {} more (all of them in --json)", frameworks.len() - shown);
    }
    if !report.hook_errors.is_empty() {
        let hooks: Vec<String> =
            report.hook_errors.iter().map(|(name, errors)| format!("{name} ({errors} errors)")).collect();
        println!("\nhooks    {}", hooks.join(", "));
    }
    for isolator in &report.isolators {
        println!(
            "isolator {}: {} containers, {} errors, reported usage {}",
            isolator.name,
            isolator.containers,
            isolator.errors,
            isolator.usage_seconds.0.iter().map(|(k, v)| format!("{k}·s {v:.0}")).collect::<Vec<_>>().join(", ")
        );
    }
    for script in &report.scripts {
        let calls: u64 = script.versions.iter().map(|v| v.calls).sum();
        let errors: u64 = script.versions.iter().map(|v| v.errors).sum();
        let micros: f64 = script.versions.iter().map(|v| v.total_us).sum();
        let mean = if calls == 0 { 0.0 } else { micros / calls as f64 };
        let mut line = format!(
            "script   {}: version {}, {} reload(s) ok, {} refused; {calls} calls, {errors} errors, {mean:.1} us per call",
            script.module, script.version, script.reloads_ok, script.reloads_failed
        );
        if script.refused_offers + script.fallback_rounds > 0 {
            line.push_str(&format!(
                "; {} offers refused, {} fallback rounds",
                script.refused_offers, script.fallback_rounds
            ));
        }
        println!("{line}");
        if let Some(error) = &script.last_error {
            println!("         last reload error: {}", error.lines().next().unwrap_or(""));
        }
    }
    if let Some(shadow) = &report.shadow {
        println!(
            "shadow   {}: {} of {} rounds identical; offers: {} alike, {} only by '{}', {} only by the shadow; {} errors",
            shadow.allocator,
            shadow.identical_rounds,
            shadow.rounds,
            shadow.offers_same,
            shadow.offers_only_active,
            report.allocator,
            shadow.offers_only_shadow,
            shadow.errors
        );
        if let Some((t, example)) = &shadow.first_difference {
            println!("         first difference at t={t}s: {example}");
        }
    }
    if let Some(sample) = &report.sample_task {
        let labels: Vec<String> = sample.labels.iter().map(|l| format!("{}={}", l.key, l.value)).collect();
        let environment: Vec<String> = sample.environment.iter().map(|v| format!("{}={}", v.name, v.value)).collect();
        if !labels.is_empty() || !environment.is_empty() {
            println!(
                "sample   task {}: labels [{}], environment [{}]",
                sample.id,
                labels.join(", "),
                environment.join(", ")
            );
        }
    }
    if !report.events.is_empty() {
        println!();
        for (at, what) in &report.events {
            println!("event    t={at}s {what}");
        }
    }
    println!("\ndecisions digest {}", report.decisions_digest);
}
