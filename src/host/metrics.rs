//! The filter's counters as Envoy stats. Each VM defines them by name; Envoy backs equal names
//! with one counter, so the workers' counts add up. Per-request counts are kept in the VM and
//! flushed from the root context's tick (at most 0.1 s late): two host calls fewer on
//! every request. A host that refuses a metric only loses that count, never a request.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

use super::log;
use crate::config::FilterConfig;
use crate::stats::{oidc_name, provider_name, Counter, OidcCounter, Tally, PREFIX};

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
}

impl Metrics {
    pub fn define(cfg: &FilterConfig) -> Self {
        Self {
            ids: Counter::ALL
                .iter()
                .map(|c| define(&format!("{PREFIX}{}", c.name())))
                .collect(),
            pending: Counter::ALL.iter().map(|_| Cell::new(0)).collect(),
            providers: cfg
                .providers
                .iter()
                .map(|p| match p.remote {
                    Some(_) => (
                        define(&provider_name(&p.name, Counter::JwksFetchSuccess)),
                        define(&provider_name(&p.name, Counter::JwksFetchFailed)),
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
                        .map(|c| define(&oidc_name(&o.provider.name, *c)))
                        .collect()
                })
                .collect(),
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
