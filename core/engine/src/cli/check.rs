//! `modhost modules check`: load every module, one verdict per module; and `modhost modules
//! inspect`: the module descriptors a library exports, found from the library alone.
//!
//! Each module entry is loaded on its own (in manifest order, into one manager), so that one
//! bad module does not hide the verdicts of the others. Anonymous modules are then created,
//! as a Mesos master creates them at start.

use std::process::ExitCode;

use anyhow::bail;
use modhost::kinds::{AnonymousHandle, VmHandle};
use modhost::manifest::{self, LibraryEntry, Manifest};
use modhost::{Kind, ModuleManager};
use serde::Serialize;

use super::ModuleSources;

/// One line of the report.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    library: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<modhost::ModuleInfo>,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    host_version: String,
    abi: String,
    modules: Vec<Row>,
    warnings: Vec<String>,
}

impl Report {
    /// The rows, with this host's version and ABI, and no warnings.
    fn of(modules: Vec<Row>) -> Self {
        Report {
            host_version: modhost::host_version().to_string(),
            abi: format!("{}.{}", modhost_abi::ABI_MAJOR, modhost_abi::ABI_MINOR),
            modules,
            warnings: Vec::new(),
        }
    }
}

pub fn run(sources: &ModuleSources, json: bool) -> anyhow::Result<ExitCode> {
    if sources.modules.is_none() && sources.modules_dir.is_none() {
        bail!("give --modules=<JSON|PATH|file://PATH> or --modules_dir=<DIR>");
    }
    let manifests = manifest::from_flags(sources.modules.as_deref(), sources.modules_dir.as_deref())?;
    let manager = ModuleManager::new();
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for manifest in &manifests {
        warnings.extend(manifest.warnings.iter().cloned());
        for library in &manifest.libraries {
            for module in &library.modules {
                let single = Manifest {
                    origin: manifest.origin.clone(),
                    libraries: vec![LibraryEntry { modules: vec![module.clone()], ..library.clone() }],
                    warnings: Vec::new(),
                };
                let (verdict, error) = match manager.load(&single) {
                    Ok(_) => ("ok", None),
                    Err(e) => ("error", Some(e.to_string())),
                };
                let info = error.is_none().then(|| manager.get(&module.name)).flatten();
                rows.push(Row { name: module.name.clone(), library: library.library(), module: info, verdict, error });
            }
        }
    }

    // Vm modules are instantiated too, so that a script that does not load (a syntax error,
    // a missing file, a bad parameter) fails the check with its file:line.
    for row in rows.iter_mut().filter(|r| r.module.as_ref().is_some_and(|m| m.kind == Kind::Vm)) {
        if let Err(e) = manager.create::<VmHandle>(&row.name, None) {
            row.verdict = "error";
            row.error = Some(e.to_string());
        }
    }

    // Anonymous modules are instantiated, and kept until the report is printed.
    let mut anonymous: Vec<AnonymousHandle> = Vec::new();
    for row in rows.iter_mut().filter(|r| r.module.as_ref().is_some_and(|m| m.kind == Kind::Anonymous)) {
        match manager.create::<AnonymousHandle>(&row.name, None) {
            Ok(instance) => anonymous.push(instance),
            Err(e) => {
                row.verdict = "error";
                row.error = Some(format!("Failed to create anonymous module named '{}': {e}", row.name));
            }
        }
    }

    let errors: Vec<String> = rows.iter().filter_map(|r| r.error.clone()).collect();
    let all_ok = errors.is_empty();
    let report = Report { warnings, ..Report::of(rows) };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.modules.is_empty() {
        println!("no modules in the manifest");
    } else {
        print_table(&report);
        let failed = report.modules.iter().filter(|r| r.error.is_some()).count();
        println!(
            "\n{} module(s), {} ok, {} failed (host {}, ABI {})",
            report.modules.len(),
            report.modules.len() - failed,
            failed,
            report.host_version,
            report.abi
        );
    }
    // Warnings and errors go to stderr after the table, so a terminal shows them last.
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &errors {
        eprintln!("error: {error}");
    }
    drop(anonymous);
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `modhost modules inspect LIB`: every descriptor the library exports, verified as a load
/// would verify it, without a manifest and without creating anything. Exit 0 only if there
/// is at least one and this host accepts each.
pub fn inspect(library: &str, json: bool) -> anyhow::Result<ExitCode> {
    let found = modhost::inspect(library)?;
    let rows: Vec<Row> = found
        .into_iter()
        .map(|inspected| {
            let (module, verdict, error) = match inspected.verdict {
                Ok(info) => (Some(info), "ok", None),
                Err(e) => (None, "refused", Some(e.to_string())),
            };
            Row { name: inspected.symbol, library: library.to_owned(), module, verdict, error }
        })
        .collect();
    let report = Report { ..Report::of(rows) };
    let refused = report.modules.iter().filter(|r| r.error.is_some()).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.modules.is_empty() {
        println!("'{library}' exports no modhost module descriptor");
    } else {
        print_table(&report);
        println!(
            "\n{} descriptor(s): {} accepted, {refused} refused by this host (host {}, ABI {})",
            report.modules.len(),
            report.modules.len() - refused,
            report.host_version,
            report.abi
        );
    }
    for row in report.modules.iter().filter(|r| r.error.is_some()) {
        eprintln!("refused: {}", row.error.as_deref().unwrap_or_default());
    }
    Ok(if report.modules.is_empty() || refused > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print_table(report: &Report) {
    let header = ["NAME", "KIND", "LIBRARY", "ABI", "BUILT-FOR", "AUTHOR", "DESCRIPTION", "VERDICT"];
    let lines: Vec<[String; 8]> = report
        .modules
        .iter()
        .map(|row| {
            let dash = || "-".to_owned();
            let m = row.module.as_ref();
            [
                row.name.clone(),
                m.map_or_else(dash, |m| m.kind.to_string()),
                row.library.clone(),
                m.map_or_else(dash, |m| m.abi.clone()),
                m.map_or_else(dash, |m| m.built_for.clone()),
                m.map_or_else(dash, |m| format!("{} <{}>", m.author_name, m.author_email)),
                m.map_or_else(dash, |m| m.description.clone()),
                row.verdict.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let print = |cells: &[&str]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    print(&header);
    for line in &lines {
        print(&line.each_ref().map(String::as_str));
    }
}
