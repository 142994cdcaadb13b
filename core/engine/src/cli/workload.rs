//! `modhost workload`: generate and check workload files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use modhost_engine::sim::workload::{self, Workload};

/// Workload subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkloadAction {
    /// Print Mesos's DeclineOffers benchmark shape as a workload file.
    DeclineOffers {
        /// Agents (cpus 24, mem 4096, disk 4096 each).
        #[arg(long, default_value_t = 10_000)]
        agents: usize,
        /// Frameworks.
        #[arg(long, default_value_t = 1_000)]
        frameworks: usize,
    },
    /// Print Mesos's LargeAndSmallQuota benchmark shape as a workload file: roles with a
    /// small and a large quota, a framework each, on `small / 5 + large * 5` agents.
    LargeAndSmallQuota {
        /// Roles with a quota of cpus 1, mem 1024, disk 1024.
        #[arg(long, default_value_t = 2_500)]
        small: usize,
        /// Roles with a quota of cpus 4, mem 4096, disk 4096.
        #[arg(long, default_value_t = 500)]
        large: usize,
    },
    /// Check a workload file and summarise it.
    Check {
        /// The file.
        file: PathBuf,
    },
}

pub fn run(action: WorkloadAction) -> anyhow::Result<ExitCode> {
    match action {
        WorkloadAction::DeclineOffers { agents, frameworks } => {
            if agents == 0 || frameworks == 0 {
                anyhow::bail!("--agents and --frameworks must be at least 1");
            }
            println!("{}", serde_json::to_string_pretty(&workload::decline_offers(agents, frameworks))?);
        }
        WorkloadAction::LargeAndSmallQuota { small, large } => {
            if small / 5 + large * 5 == 0 {
                anyhow::bail!("--small and --large give no agent (small / 5 + large * 5 must be at least 1)");
            }
            println!("{}", serde_json::to_string_pretty(&workload::large_and_small_quota(small, large))?);
        }
        WorkloadAction::Check { file } => {
            let w = Workload::from_file(&file)?;
            println!(
                "workload '{}': {} agents, {} frameworks, {} tasks, {} quotas, {} events: ok",
                w.name,
                w.agents.len(),
                w.frameworks.len(),
                w.total_tasks(),
                w.quotas.len(),
                w.events.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
