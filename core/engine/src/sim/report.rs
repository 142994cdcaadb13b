//! What a simulation reports: totals, per-role and per-framework shares, utilisation, task
//! wait, time spent in the allocator, and the per-round series behind the charts.

use std::collections::BTreeMap;

use modhost_abi::messages::{EnvironmentVariable, Label, Resources};
use serde::Serialize;

use modhost::isolators::IsolatorSummary;

/// One allocation round.
#[derive(Clone, Debug, Serialize)]
pub struct RoundRecord {
    /// Virtual time, seconds.
    pub t: f64,
    /// Offers made.
    pub offers: u32,
    /// Offers from which nothing was launched.
    pub declined: u32,
    /// Offers refused by the host's checks.
    pub rejected: u32,
    /// Tasks launched.
    pub launched: u32,
    /// Tasks that ended (finished, failed, killed, lost) since the previous round.
    pub ended: u32,
    /// Tasks running after the round.
    pub running: u64,
    /// Wall time of the allocator's `allocate`, microseconds.
    pub allocator_us: f64,
    /// Resources in use by tasks over the cluster's total, by resource.
    pub utilisation: BTreeMap<String, f64>,
    /// Each role's dominant share (not divided by weight), in the report's role order.
    pub role_shares: Vec<f64>,
    /// Each framework's dominant share, in the report's framework order.
    pub framework_shares: Vec<f32>,
    /// Offers in which the shadow allocator's dry run differed from the active one's.
    pub shadow_differences: u32,
    /// Shadow runs: each role's dominant share if the active allocator's offers of the round
    /// were taken whole (empty without a shadow).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offered_shares: Vec<f64>,
    /// Shadow runs: the same for the shadow's offers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow_offered_shares: Vec<f64>,
}

/// How a shadow allocator's decisions compared with the active one's.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShadowSummary {
    /// The candidate allocator.
    pub allocator: String,
    /// Rounds compared.
    pub rounds: u64,
    /// Rounds in which both made exactly the same offers.
    pub identical_rounds: u64,
    /// Offers both made.
    pub offers_same: u64,
    /// Offers only the active allocator made.
    pub offers_only_active: u64,
    /// Offers only the shadow made.
    pub offers_only_shadow: u64,
    /// The shadow's failed calls.
    pub errors: u64,
    /// The first round that differed, and one offer that did.
    pub first_difference: Option<(f64, String)>,
}

/// Summary figures of a distribution.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Distribution {
    /// Number of samples.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// The figures of `samples` (nearest-rank percentiles).
    pub fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Distribution::default();
        }
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Distribution {
            count: samples.len(),
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
            median: rank(0.5),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

/// Task counts over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Offers made.
    pub offers: u64,
    /// Offers from which nothing was launched.
    pub declined: u64,
    /// Offers refused by the host's checks (offered twice, unknown, not free).
    pub rejected_offers: u64,
    /// `allocate` calls that failed.
    pub allocator_errors: u64,
    /// Other allocator calls that failed.
    pub allocator_call_errors: u64,
    /// Tasks launched.
    pub launched: u64,
    /// Tasks that finished.
    pub finished: u64,
    /// Tasks that failed (an isolator refused or limited them, or a hook made them unfit).
    pub failed: u64,
    /// Tasks lost with their agent.
    pub lost: u64,
    /// Tasks killed when their framework left.
    pub killed: u64,
    /// Tasks never launched by the end.
    pub pending_at_end: u64,
    /// Tasks still running at the end.
    pub running_at_end: u64,
}

/// A role over the run.
#[derive(Clone, Debug, Serialize)]
pub struct RoleSummary {
    /// The role.
    pub role: String,
    /// Its weight at the end.
    pub weight: f64,
    /// Its frameworks.
    pub frameworks: usize,
    /// Tasks its frameworks launched.
    pub launched: u64,
    /// Mean dominant share over the rounds.
    pub share_mean: f64,
    /// Largest dominant share.
    pub share_peak: f64,
    /// Dominant share at the end.
    pub share_final: f64,
    /// Its quota at the end, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSummary>,
    /// What the agents reserve for it at the end (not for its subroles), by unreserved name.
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub reserved: Resources,
}

/// A role's quota and what its subtree used.
#[derive(Clone, Debug, Serialize)]
pub struct QuotaSummary {
    /// Guaranteed amounts.
    pub guarantees: Resources,
    /// Limits (a resource left out has none).
    pub limits: Resources,
    /// What the role's subtree used at the end.
    pub used: Resources,
    /// The most of each resource its subtree used in a round while it had a quota.
    pub used_peak: Resources,
}

/// A framework over the run.
#[derive(Clone, Debug, Serialize)]
pub struct FrameworkSummary {
    /// The framework.
    pub id: String,
    /// Its role.
    pub role: String,
    /// Tasks it wanted.
    pub tasks: u64,
    /// Tasks launched.
    pub launched: u64,
    /// Tasks finished.
    pub finished: u64,
    /// Mean dominant share over the rounds it was registered.
    pub share_mean: f64,
    /// Largest dominant share.
    pub share_peak: f64,
    /// Mean seconds a task waited to launch.
    pub wait_mean: f64,
}

/// The first launched task as the hooks left it, so their effect can be seen.
#[derive(Clone, Debug, Serialize)]
pub struct SampleTask {
    /// The task.
    pub id: String,
    /// Its labels after the hooks.
    pub labels: Vec<Label>,
    /// Its executor's environment after the hooks.
    pub environment: Vec<EnvironmentVariable>,
}

/// One resource of one role's quota, as the terminal and the HTML report show it.
#[derive(Clone, Debug)]
pub struct QuotaRow<'r> {
    /// The role.
    pub role: &'r str,
    /// The resource.
    pub resource: &'r str,
    /// Its guarantee, if it has one.
    pub guarantee: Option<f64>,
    /// Its limit, if it has one.
    pub limit: Option<f64>,
    /// What the agents reserve of it for the role.
    pub reserved: f64,
    /// What the role's subtree used at the end.
    pub used: f64,
    /// The most it used in a round.
    pub peak: f64,
}

impl Report {
    /// Each role with a quota or reservations, one row per resource its quota names or it
    /// has reserved, by role then resource. `used` and `peak` are its subtree's, while it had a
    /// quota (0 for a role with reservations only).
    pub fn quota_rows(&self) -> Vec<QuotaRow<'_>> {
        let mut rows = Vec::new();
        for role in &self.roles {
            let quota = role.quota.as_ref();
            let mut names: std::collections::BTreeSet<&str> = role.reserved.0.keys().map(|name| &**name).collect();
            if let Some(quota) = quota {
                names.extend(quota.guarantees.0.keys().chain(quota.limits.0.keys()).map(|name| &**name));
            }
            for name in names {
                rows.push(QuotaRow {
                    role: &role.role,
                    resource: name,
                    guarantee: quota.and_then(|q| q.guarantees.0.get(name).copied()),
                    limit: quota.and_then(|q| q.limits.0.get(name).copied()),
                    reserved: role.reserved.get(name),
                    used: quota.map_or(0.0, |q| q.used.get(name)),
                    peak: quota.map_or(0.0, |q| q.used_peak.get(name)),
                });
            }
        }
        rows
    }

    /// The frameworks by mean share, largest first (then by id): the order the terminal and
    /// the HTML report list them in.
    pub fn frameworks_by_share(&self) -> Vec<&FrameworkSummary> {
        let mut frameworks: Vec<_> = self.frameworks.iter().collect();
        frameworks.sort_by(|a, b| b.share_mean.total_cmp(&a.share_mean).then(a.id.cmp(&b.id)));
        frameworks
    }
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The workload's name.
    pub workload: String,
    /// The allocator used.
    pub allocator: String,
    /// The seed.
    pub seed: u64,
    /// Seconds between rounds.
    pub allocation_interval: f64,
    /// Virtual time at the end.
    pub end_time: f64,
    /// Rounds run.
    pub rounds: usize,
    /// Why the run ended.
    pub stopped: String,
    /// Why the run failed, if it did (its allocator failed `--max_failed_rounds` rounds in a
    /// row): the report is still complete, and `modhost simulate` exits non-zero.
    pub failure: Option<String>,
    /// Counts.
    pub totals: Totals,
    /// Wall time of `allocate` per round, microseconds.
    pub allocator_us: Distribution,
    /// Seconds tasks waited from submission to launch.
    pub task_wait: Distribution,
    /// Mean utilisation over the rounds, by resource.
    pub utilisation_mean: BTreeMap<String, f64>,
    /// Peak utilisation, by resource.
    pub utilisation_peak: BTreeMap<String, f64>,
    /// Roles, sorted by name.
    pub roles: Vec<RoleSummary>,
    /// Frameworks, in workload order.
    pub frameworks: Vec<FrameworkSummary>,
    /// Errors per installed hook.
    pub hook_errors: Vec<(String, u64)>,
    /// What each isolator did.
    pub isolators: Vec<IsolatorSummary>,
    /// The first launched task after the hooks.
    pub sample_task: Option<SampleTask>,
    /// Every scripted module: its running version, reloads, calls, errors.
    pub scripts: Vec<modhost::script::ScriptStatus>,
    /// The shadow allocator's comparison, when one ran.
    pub shadow: Option<ShadowSummary>,
    /// Cluster events as they happened: (time, what).
    pub events: Vec<(f64, String)>,
    /// FNV-1a of every offer (time, framework, agent, resources): equal digests mean equal
    /// decisions.
    pub decisions_digest: String,
    /// Peak resident memory of the process, KiB.
    pub peak_rss_kib: u64,
    /// Per-round series.
    pub series: Vec<RoundRecord>,
}
