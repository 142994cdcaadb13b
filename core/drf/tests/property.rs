//! A property test of the allocator's bookkeeping: random operations (agents joining and
//! leaving, frameworks coming and going, offers accepted in part, declined with filters,
//! resources freed, suppress and revive), checked after every step against a model ledger.
//! Nothing may be offered that is not free, and allocated plus free must equal the total.

use std::collections::HashMap;

use modhost_abi::messages::{AgentInfo, AllocatorOptions, Filters, FrameworkInfo, Resources};
use modhost_abi::{
    AddAgent, AddFramework, AgentRequest, Allocate, Allocator, FrameworkRequest, RecoverResources, RolesRequest,
};
use modhost_drf::{HierarchicalDrf, SplitMix64};

/// The model: what each (framework, agent) holds, and each agent's total.
#[derive(Default)]
struct Ledger {
    totals: HashMap<String, Resources>,
    held: HashMap<(String, String), Resources>,
}

impl Ledger {
    fn free(&self, agent: &str) -> Resources {
        let mut free = self.totals[agent].clone();
        for ((_, a), held) in &self.held {
            if a == agent {
                free.subtract(held);
            }
        }
        free
    }

    fn allocated(&self) -> Resources {
        let mut sum = Resources::new();
        for held in self.held.values() {
            sum.add(held);
        }
        sum
    }

    fn total(&self) -> Resources {
        let mut sum = Resources::new();
        for total in self.totals.values() {
            sum.add(total);
        }
        sum
    }
}

fn same(a: &Resources, b: &Resources) -> bool {
    a.contains(b) && b.contains(a)
}

#[test]
fn bookkeeping_survives_random_operations() {
    for seed in 0..40 {
        let mut rng = SplitMix64::new(seed);
        let mut pick = move |n: u64| rng.next_u64() % n.max(1);
        let mut drf = HierarchicalDrf::new(AllocatorOptions { seed, ..AllocatorOptions::default() });
        let mut model = Ledger::default();
        let mut frameworks: Vec<String> = Vec::new();
        let (mut next_agent, mut next_framework) = (0, 0);
        let mut now = 0.0;
        for step in 0..400 {
            match pick(10) {
                0 => {
                    let id = format!("a{next_agent}");
                    next_agent += 1;
                    let resources =
                        Resources::new().with("cpus", (1 + pick(16)) as f64).with("mem", (256 * (1 + pick(64))) as f64);
                    let agent = AgentInfo { id: id.clone(), resources: resources.clone(), ..AgentInfo::default() };
                    drf.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
                    model.totals.insert(id, resources);
                }
                1 if !model.totals.is_empty() && pick(3) == 0 => {
                    let mut ids: Vec<String> = model.totals.keys().cloned().collect();
                    ids.sort();
                    let id = ids[pick(ids.len() as u64) as usize].clone();
                    drf.remove_agent(&AgentRequest { agent_id: id.clone() }).unwrap();
                    model.totals.remove(&id);
                    model.held.retain(|(_, a), _| *a != id);
                }
                2 => {
                    let id = format!("f{next_framework}");
                    next_framework += 1;
                    let framework = FrameworkInfo { id: id.clone(), name: id.clone(), role: format!("r{}", pick(3)) };
                    drf.add_framework(&AddFramework { framework, used: vec![], active: true }).unwrap();
                    frameworks.push(id);
                }
                3 if !frameworks.is_empty() && pick(4) == 0 => {
                    let id = frameworks.swap_remove(pick(frameworks.len() as u64) as usize);
                    drf.remove_framework(&FrameworkRequest { framework_id: id.clone() }).unwrap();
                    model.held.retain(|(f, _), _| *f != id);
                }
                4 if !frameworks.is_empty() => {
                    let id = frameworks[pick(frameworks.len() as u64) as usize].clone();
                    let request = RolesRequest { framework_id: id, roles: vec![] };
                    if pick(2) == 0 {
                        drf.suppress_offers(&request).unwrap()
                    } else {
                        drf.revive_offers(&request).unwrap()
                    }
                }
                5 | 6 => {
                    // Give back part of something held: a finished task, or a decline.
                    let mut keys: Vec<(String, String)> = model.held.keys().cloned().collect();
                    keys.sort();
                    if let Some(key) = keys.get(pick(keys.len() as u64) as usize).cloned() {
                        let held = model.held[&key].clone();
                        let back = if pick(2) == 0 {
                            held.clone()
                        } else {
                            Resources(
                                held.0.iter().map(|(k, v)| (k.clone(), (v / 2.0 * 1000.0).round() / 1000.0)).collect(),
                            )
                        };
                        let filters = (pick(2) == 0).then(|| Filters { refuse_seconds: pick(10) as f64 });
                        drf.recover_resources(&RecoverResources {
                            framework_id: key.0.clone(),
                            agent_id: key.1.clone(),
                            resources: back.clone(),
                            filters,
                        })
                        .unwrap();
                        let slot = model.held.get_mut(&key).unwrap();
                        slot.subtract(&back);
                        if slot.is_empty() {
                            model.held.remove(&key);
                        }
                    }
                }
                _ => {
                    now += 1.0;
                    let offers = drf.allocate(&Allocate { now, dry_run: false }).unwrap();
                    let mut offered: HashMap<String, Resources> = HashMap::new();
                    for offer in offers.to_vec() {
                        // Only free resources, never the same twice in a round.
                        let mut free = model.free(&offer.agent_id);
                        free.subtract(offered.get(&offer.agent_id).unwrap_or(&Resources::new()));
                        assert!(
                            free.contains(&offer.resources),
                            "seed {seed} step {step}: {offer:?} exceeds free {free}"
                        );
                        assert!(frameworks.contains(&offer.framework_id), "seed {seed}: offer to a removed framework");
                        offered.entry(offer.agent_id.clone()).or_default().add(&offer.resources);
                        model.held.entry((offer.framework_id, offer.agent_id)).or_default().add(&offer.resources);
                    }
                }
            }
            assert!(
                same(&drf.allocated_total(), &model.allocated()),
                "seed {seed} step {step}: allocated {} vs model {}",
                drf.allocated_total(),
                model.allocated()
            );
            assert!(same(&drf.cluster_total(), &model.total()), "seed {seed} step {step}: total");
        }
    }
}
