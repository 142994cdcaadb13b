//! Command-line parsing; each subcommand lives in its own module.

mod check;
pub mod logger;
mod simulate;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// modhost: load and run Mesos-style modules, native or scripted.
#[derive(Debug, Parser)]
#[command(name = "modhost", version, about)]
pub struct Command {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Work with module manifests and libraries.
    #[command(subcommand)]
    Modules(ModulesAction),
    /// Run a workload on a simulated cluster with an allocator, hooks and isolators.
    Simulate(Box<simulate::SimulateArgs>),
    /// Generate or check workload files.
    #[command(subcommand)]
    Workload(workload::WorkloadAction),
}

#[derive(Debug, Subcommand)]
enum ModulesAction {
    /// Load and verify every module of a manifest and list them; exit 0 only if all load.
    Check(CheckArgs),
    /// List the module descriptors a library exports (no manifest needed), each verified as
    /// a load would verify it; nothing is created. Exit 0 only if this host accepts them all.
    Inspect(InspectArgs),
}

/// Arguments of `modhost modules inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The library: a path, or a bare file name searched as a manifest's `file` is
    /// (LD_LIBRARY_PATH, then the default library directories).
    #[arg(value_name = "LIB")]
    library: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where modules come from, with Mesos's flag names.
#[derive(Debug, Args)]
pub struct ModuleSources {
    /// A manifest: inline JSON, an absolute path, or a file:// URI.
    #[arg(long = "modules", value_name = "JSON|PATH|file://PATH")]
    pub modules: Option<String>,
    /// A directory of manifest files, loaded in byte order of their names.
    #[arg(long = "modules_dir", value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
}

/// Arguments of `modhost modules check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    sources: ModuleSources,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs a parsed command.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command.action {
        Action::Modules(ModulesAction::Check(args)) => check::run(&args.sources, args.json),
        Action::Modules(ModulesAction::Inspect(args)) => check::inspect(&args.library, args.json),
        Action::Simulate(args) => simulate::run(*args),
        Action::Workload(action) => workload::run(action),
    }
}
