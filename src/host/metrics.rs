//! The filter's counters as Envoy stats. Each VM defines them by name; Envoy backs equal names
//! with one counter, so the workers' counts add up. Per-request counts are kept in the VM and
//! flushed from the root context's tick (at most 0.1 s late): two host calls fewer on
//! every request. Per-policy counters are defined the first time they move (a configuration
//! with 1,000 policies defines none at load). A host that refuses a metric only loses that
//! count, never a request.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

use super::log;
use crate::config::FilterConfig;
use crate::stats::{
    oidc_name, policy_name, provider_name, Counter, OidcCounter, PolicyCounter, Tally,
};

fn define(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(e) => {
            log(
                LogLevel::Warn,
                &format!("cannot define metric {name}: {e:?}"),
            );
            None
        }
    }
}

fn add(id: Option<u32>, n: u64) {
    if let (Some(id), Ok(n)) = (id, i64::try_from(n)) {
        if n > 0 {
            let _ = hostcalls::increment_metric(id, n);
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    ids: Vec<Option<u32>>,
    /// Counts not yet handed to the host, by [`Counter::index`].
    pending: Vec<Cell<u64>>,
    /// Per provider with a remote key set: (fetch success, fetch failed).
    providers: Vec<(Option<u32>, Option<u32>)>,
    /// Per `oidc` entry, by [`OidcCounter::index`].
    oidc: Vec<Vec<Option<u32>>>,
    prefix: String,
    /// Per authorization policy: its name and, by [`PolicyCounter::index`], the pending count
    /// and the metric (`None` until defined; `Some(None)` when the host refused it).
    policies: Vec<(String, [PolicySlot; PolicyCounter::ALL.len()])>,
    /// Some policy count is pending.
    policies_moved: Cell<bool>,
}

#[derive(Default)]
struct PolicySlot {
    pending: Cell<u64>,
    id: Cell<Option<Option<u32>>>,
}

impl Metrics {
    pub fn define(cfg: &FilterConfig) -> Self {
        let prefix = cfg.stat_prefix.as_str();
        Self {
            ids: Counter::ALL
                .iter()
                .map(|c| define(&format!("{prefix}.{}", c.name())))
                .collect(),
            pending: Counter::ALL.iter().map(|_| Cell::new(0)).collect(),
            providers: cfg
                .providers
                .iter()
                .map(|p| match p.remote {
                    Some(_) => (
                        define(&provider_name(prefix, &p.name, Counter::JwksFetchSuccess)),
                        define(&provider_name(prefix, &p.name, Counter::JwksFetchFailed)),
                    ),
                    None => (None, None),
                })
                .collect(),
            oidc: cfg
                .oidc
                .iter()
                .map(|o| {
                    OidcCounter::ALL
                        .iter()
                        .map(|c| define(&oidc_name(prefix, &o.provider.name, *c)))
                        .collect()
                })
                .collect(),
            prefix: prefix.to_string(),
            policies: cfg
                .authorization
                .iter()
                .flat_map(|a| &a.policies)
                .map(|p| (p.name.clone(), Default::default()))
                .collect(),
            policies_moved: Cell::new(false),
        }
    }

    /// Counts one event of policy `i` (handed to the host at the next flush).
    pub fn policy(&self, i: usize, c: PolicyCounter) {
        if let Some(slot) = self.policies.get(i).and_then(|(_, s)| s.get(c.index())) {
            slot.pending.set(slot.pending.get().saturating_add(1));
            self.policies_moved.set(true);
        }
    }

    fn flush_policies(&self) {
        if !self.policies_moved.replace(false) {
            return;
        }
        for (name, slots) in &self.policies {
            for (c, slot) in PolicyCounter::ALL.iter().zip(slots) {
                let n = slot.pending.replace(0);
                if n == 0 {
                    continue;
                }
                let id = match slot.id.get() {
                    Some(id) => id,
                    None => {
                        let id = define(&policy_name(&self.prefix, name, *c));
                        slot.id.set(Some(id));
                        id
                    }
                };
                add(id, n);
            }
        }
    }

    /// Login events are rare: counted at once.
    pub fn oidc(&self, entry: usize, c: OidcCounter) {
        add(
            self.oidc
                .get(entry)
                .and_then(|ids| ids.get(c.index()))
                .copied()
                .flatten(),
            1,
        );
    }

    pub fn add(&self, c: Counter, n: u64) {
        if let Some(p) = self.pending.get(c.index()) {
            p.set(p.get().saturating_add(n));
        }
    }

    /// Hands the pending counts to the host.
    pub fn flush(&self) {
        for (id, p) in self.ids.iter().zip(&self.pending) {
            add(*id, p.replace(0));
        }
        self.flush_policies();
    }

    pub fn count(&self, tally: Tally) {
        for c in tally.iter() {
            self.add(c, 1);
        }
    }

    pub fn jwks_fetch(&self, provider: usize, ok: bool) {
        let (success, failed) = self.providers.get(provider).copied().unwrap_or_default();
        let (c, per_provider) = if ok {
            (Counter::JwksFetchSuccess, success)
        } else {
            (Counter::JwksFetchFailed, failed)
        };
        add(self.ids.get(c.index()).copied().flatten(), 1);
        add(per_provider, 1);
    }
}
