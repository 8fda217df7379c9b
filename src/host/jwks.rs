//! Remote key sets inside one VM: fetched by whichever VM of the Envoy takes the shared lease
//! (one fetch per Envoy, not per worker), published through shared data, parsed once per
//! version in every VM, and requests paused while a set they need is being fetched.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, Status};

use super::login::{LoginOps, Vm};
use super::metrics::Metrics;
use super::{call_body, call_status, log};
use crate::authn::keystore::KeyStore;
use crate::config::{FilterConfig, RemoteJwks};
use crate::jwks::key_set;
use crate::jwks::refresh::{self, Meta};
use crate::jwt::error::AuthError;
use crate::oidc::discovery::{self, Discovery};
use crate::pipeline::Outcome;
use crate::request::view::Request;

/// A request paused until a fetch for `provider` completes.
struct Waiter {
    context_id: u32,
    provider: usize,
    /// `Meta::completed` when it started waiting.
    completed: u64,
    request: Request,
    response_headers: Rc<RefCell<Vec<(String, String)>>>,
}

/// What to do with a request refused for want of keys.
pub enum Wait {
    /// A fetch will come: the request was registered and must pause.
    Paused,
    /// This VM was behind the shared set and has caught up: evaluate again now.
    Retry,
    /// Nothing will change soon: send the refusal.
    No,
}

/// Which document a fetch is for: a provider's key set, or the discovery document that
/// names it (`RemoteJwks::discovery`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Discovery,
    Keys,
}

pub struct RemoteKeys {
    config: Rc<FilterConfig>,
    store: KeyStore,
    waiters: Vec<Waiter>,
    in_flight: HashMap<u32, (usize, Stage)>,
    metrics: Rc<Metrics>,
    login: LoginOps,
}

/// Discovery documents are refetched with the key set; their retries back off to this.
const DISCOVERY_MAX_BACKOFF_MS: u64 = 30_000;

fn discovery_key(r: &RemoteJwks) -> String {
    format!(
        "jwt_authz.oidc.discovery|{}|{}{}",
        r.cluster, r.authority, r.path
    )
}

fn meta_key(r: &RemoteJwks) -> String {
    format!(
        "jwt_authz.jwks.meta|{}|{}{}",
        r.cluster, r.authority, r.path
    )
}

fn body_key(r: &RemoteJwks) -> String {
    format!(
        "jwt_authz.jwks.body|{}|{}{}",
        r.cluster, r.authority, r.path
    )
}

fn read_meta(r: &RemoteJwks) -> (Meta, Option<u32>) {
    match super::trace::host(|| hostcalls::get_shared_data(&meta_key(r))) {
        Ok((bytes, cas)) => (Meta::decode(bytes.as_deref()), cas),
        Err(_) => (Meta::default(), None),
    }
}

/// Read-modify-write of a provider's meta with compare-and-swap; `f` returns false to give up.
fn update_meta(r: &RemoteJwks, mut f: impl FnMut(&mut Meta) -> bool) -> Option<Meta> {
    for _ in 0..8 {
        let (mut meta, cas) = read_meta(r);
        if !f(&mut meta) {
            return None;
        }
        match super::trace::host(|| {
            hostcalls::set_shared_data(&meta_key(r), Some(&meta.encode()), cas)
        }) {
            Ok(()) => return Some(meta),
            Err(Status::CasMismatch) => continue,
            Err(e) => {
                log(LogLevel::Error, &format!("shared data write failed: {e:?}"));
                return None;
            }
        }
    }
    None
}

/// An HTTP call's answer, to whichever context made the call (the root for key sets, a request
/// for its token endpoint call).
pub fn deliver(keys: Option<&Rc<RefCell<RemoteKeys>>>, token_id: u32, body_size: usize) {
    if let (Some(keys), Some(now)) = (keys, super::now_ms()) {
        keys.borrow_mut().on_response(token_id, body_size, now);
    }
}

impl RemoteKeys {
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn new(config: Rc<FilterConfig>, metrics: Rc<Metrics>) -> Self {
        Self {
            store: KeyStore::new(&config),
            config,
            waiters: Vec::new(),
            in_flight: HashMap::new(),
            metrics,
            login: LoginOps::default(),
        }
    }

    fn vm(&self) -> Vm<'_> {
        Vm {
            config: &self.config,
            store: &self.store,
            metrics: &self.metrics,
        }
    }

    /// Runs the pipeline for a request and counts the token cache's hits and misses.
    pub fn config(&self) -> &FilterConfig {
        &self.config
    }

    pub fn evaluate(&self, req: &Request, now_ms: u64) -> Outcome {
        self.vm().evaluate(req, now_ms, true)
    }

    /// Carries out a decision for the request of `context_id`: a reply or the edits, or the
    /// token endpoint call a login callback or a session refresh needs.
    pub fn carry_out(
        &mut self,
        context_id: u32,
        req: &Request,
        outcome: Outcome,
        response_headers: &Rc<RefCell<Vec<(String, String)>>>,
        now_ms: u64,
        resume: bool,
    ) -> proxy_wasm::types::Action {
        let vm = Vm {
            config: &self.config,
            store: &self.store,
            metrics: &self.metrics,
        };
        self.login.begin(
            &vm,
            context_id,
            req,
            outcome,
            response_headers,
            now_ms,
            resume,
        )
    }

    /// Creates each provider's shared entry if absent. Run from `on_configure`, which Envoy
    /// completes on the main thread before any worker starts, so later writes can all be
    /// compare-and-swap (shared data cannot create a key atomically).
    pub fn init_shared(&self) {
        LoginOps::init_shared(&self.config);
        for p in &self.config.providers {
            if let Some(r) = &p.remote {
                if let Ok((None, _)) | Err(_) =
                    super::trace::host(|| hostcalls::get_shared_data(&meta_key(r)))
                {
                    let _ = super::trace::host(|| {
                        hostcalls::set_shared_data(
                            &meta_key(r),
                            Some(&Meta::default().encode()),
                            None,
                        )
                    });
                }
            }
        }
    }

    /// Loads a newer shared set into this VM; true if this VM's keys changed.
    fn sync(&mut self, provider: usize, meta: &Meta) -> bool {
        let config = self.config.clone();
        let Some(r) = config
            .providers
            .get(provider)
            .and_then(|p| p.remote.as_ref())
        else {
            return false;
        };
        let current = self.store.remote_version(provider);
        if meta.version == 0 || meta.version == current {
            return false;
        }
        let body = match super::trace::host(|| hostcalls::get_shared_data(&body_key(r))) {
            Ok((Some(b), _)) => b,
            _ => return false,
        };
        let discovered = if r.discovery {
            let issuer = config
                .providers
                .get(provider)
                .and_then(|p| p.issuer.as_deref())
                .unwrap_or("");
            match super::trace::host(|| hostcalls::get_shared_data(&discovery_key(r))) {
                Ok((Some(doc), _)) => match discovery::parse(issuer, &doc) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        log(
                            LogLevel::Error,
                            &format!("shared discovery unreadable: {e}"),
                        );
                        return false;
                    }
                },
                _ => return false,
            }
        } else {
            None
        };
        match key_set::parse(&body, false) {
            Ok(loaded) => {
                log(
                    LogLevel::Debug,
                    &format!(
                        "jwks {}: this VM loaded key set version {} ({} keys)",
                        config
                            .providers
                            .get(provider)
                            .map_or("", |p| p.name.as_str()),
                        meta.version,
                        loaded.set.keys.len()
                    ),
                );
                self.store
                    .set_remote(provider, meta.version, loaded.set, discovered);
                true
            }
            Err(e) => {
                log(LogLevel::Error, &format!("shared key set unreadable: {e}"));
                false
            }
        }
    }

    /// The root context's tick: pick up sets other VMs fetched, wake requests whose fetch is
    /// over, and start a fetch when one is due and no other VM holds the lease.
    pub fn tick(&mut self, now_ms: u64) {
        let config = self.config.clone();
        // Waking answers requests, and Envoy may call back into their contexts meanwhile, which
        // leaves the SDK attributing later callouts to them: so wake only after dispatching.
        let mut to_wake = Vec::new();
        for (provider, p) in config.providers.iter().enumerate() {
            let Some(r) = &p.remote else {
                continue;
            };
            let (meta, cas) = read_meta(r);
            self.sync(provider, &meta);
            to_wake.push((provider, meta.completed));
            if !meta.fetch_due(now_ms, r.cache_duration_ms) {
                continue;
            }
            let mut leased = meta.clone();
            leased.start_fetch(now_ms, r.timeout_ms);
            if super::trace::host(|| {
                hostcalls::set_shared_data(&meta_key(r), Some(&leased.encode()), cas)
            })
            .is_err()
            {
                continue; // another VM took it
            }
            let stage = if r.discovery {
                Stage::Discovery
            } else {
                Stage::Keys
            };
            if let Some(completed) = self.fetch(
                provider,
                r,
                (r.authority.as_str(), r.path.as_str()),
                stage,
                now_ms,
            ) {
                to_wake.push((provider, completed));
            }
        }
        for (provider, completed) in to_wake {
            self.wake(provider, completed, now_ms);
        }
        let vm = Vm {
            config: &self.config,
            store: &self.store,
            metrics: &self.metrics,
        };
        self.login.tick(&vm, now_ms);
    }

    /// A fetch response arrived at the root context.
    pub fn on_response(&mut self, token: u32, body_size: usize, now_ms: u64) {
        let Some((provider, stage)) = self.in_flight.remove(&token) else {
            let vm = Vm {
                config: &self.config,
                store: &self.store,
                metrics: &self.metrics,
            };
            if let Some(provider) = self.login.on_response(&vm, token, body_size, now_ms) {
                self.want_refetch(provider, now_ms);
            }
            return;
        };
        if stage == Stage::Discovery {
            return self.on_discovery(provider, body_size, now_ms);
        }
        let status = call_status();
        let result = if body_size > refresh::MAX_BODY_BYTES {
            Err(format!(
                "body of {body_size} bytes is over {}",
                refresh::MAX_BODY_BYTES
            ))
        } else {
            let body = call_body(body_size);
            refresh::accept_body(status.as_deref(), &body).map(|loaded| (body, loaded))
        };
        let key_count = result.as_ref().map_or(0, |(_, l)| l.set.keys.len());
        self.finish(
            provider,
            now_ms,
            result.map(|(b, l)| (b, l.skipped)),
            key_count,
        );
    }

    /// A login met an ID token under a kid the provider's set lacks: ask for a refetch, within
    /// the rate limit of `kid_refetch_interval` (the login waits for it in `LoginOps`).
    fn want_refetch(&mut self, provider: usize, now_ms: u64) {
        let config = self.config.clone();
        if let Some(r) = config
            .providers
            .get(provider)
            .and_then(|p| p.remote.as_ref())
        {
            update_meta(r, |m| {
                m.request_kid_refetch(now_ms, r.kid_refetch_interval_ms)
            });
        }
    }

    /// The discovery document arrived: shared for the other VMs, then its `jwks_uri` fetched
    /// through the same cluster.
    fn on_discovery(&mut self, provider: usize, body_size: usize, now_ms: u64) {
        let config = self.config.clone();
        let Some((p, r)) = config
            .providers
            .get(provider)
            .and_then(|p| p.remote.as_ref().map(|r| (p, r)))
        else {
            return;
        };
        let status = call_status();
        let parsed: Result<(Vec<u8>, Discovery), String> = if status.as_deref() != Some("200") {
            Err(format!(
                "discovery answered {}",
                status.as_deref().unwrap_or("nothing")
            ))
        } else if body_size > discovery::MAX_DISCOVERY_BYTES {
            Err(format!(
                "discovery document of {body_size} bytes is too large"
            ))
        } else {
            let body = call_body(body_size);
            discovery::parse(p.issuer.as_deref().unwrap_or(""), &body)
                .map(|d| (body, d))
                .map_err(|e| format!("discovery document refused: {e}"))
        };
        let (body, d) = match parsed {
            Ok(x) => x,
            Err(why) => {
                if let Some(meta) = self.finish(provider, now_ms, Err(why), 0) {
                    self.wake(provider, meta.completed, now_ms);
                }
                return;
            }
        };
        if let Err(e) =
            super::trace::host(|| hostcalls::set_shared_data(&discovery_key(r), Some(&body), None))
        {
            log(
                LogLevel::Error,
                &format!("cannot share the discovery document: {e:?}"),
            );
        }
        let target = (
            d.jwks_uri.authority.as_str(),
            d.jwks_uri.path_and_query.as_str(),
        );
        if let Some(completed) = self.fetch(provider, r, target, Stage::Keys, now_ms) {
            self.wake(provider, completed, now_ms);
        }
    }

    /// GETs `(authority, path)` through the provider's cluster; when the call cannot even be
    /// made, the fetch fails at once and the `completed` count to wake its waiters is returned.
    fn fetch(
        &mut self,
        provider: usize,
        r: &RemoteJwks,
        (authority, path): (&str, &str),
        stage: Stage,
        now_ms: u64,
    ) -> Option<u64> {
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
        ];
        match super::trace::host(|| {
            hostcalls::dispatch_http_call(
                &r.cluster,
                headers,
                None,
                vec![],
                Duration::from_millis(r.timeout_ms),
            )
        }) {
            Ok(token) => {
                self.in_flight.insert(token, (provider, stage));
                None
            }
            Err(e) => {
                let why = format!("cannot call cluster {:?}: {e:?}", r.cluster);
                self.finish(provider, now_ms, Err(why), 0)
                    .map(|m| m.completed)
            }
        }
    }

    fn finish(
        &mut self,
        provider: usize,
        now_ms: u64,
        result: Result<(Vec<u8>, Vec<String>), String>,
        key_count: usize,
    ) -> Option<Meta> {
        let config = self.config.clone();
        let p = config.providers.get(provider)?;
        let r = p.remote.as_ref()?;
        let name = p.name.as_str();
        let source = format!("{}{} via cluster {}", r.authority, r.path, r.cluster);
        let cache = if r.discovery {
            r.cache_duration_ms.min(DISCOVERY_MAX_BACKOFF_MS)
        } else {
            r.cache_duration_ms
        };
        let meta = match result {
            Ok((body, skipped)) => {
                for s in skipped {
                    log(LogLevel::Warn, &format!("jwks {name}: skipped {s}"));
                }
                let shared = super::trace::host(|| hostcalls::get_shared_data(&body_key(r)))
                    .ok()
                    .and_then(|(b, _)| b);
                let changed = shared.as_deref() != Some(body.as_slice());
                if changed {
                    if let Err(e) = super::trace::host(|| {
                        hostcalls::set_shared_data(&body_key(r), Some(&body), None)
                    }) {
                        log(
                            LogLevel::Error,
                            &format!("jwks {name}: cannot share the key set: {e:?}"),
                        );
                    }
                }
                let before = read_meta(r).0;
                let meta = update_meta(r, |m| {
                    m.fetch_succeeded(now_ms, changed);
                    true
                });
                self.metrics.jwks_fetch(provider, true);
                if before.failures > 0 {
                    log(
                        LogLevel::Info,
                        &format!("jwks {name}: fetch from {source} recovered after {} failures; {key_count} keys", before.failures),
                    );
                } else if before.version == 0 {
                    log(
                        LogLevel::Info,
                        &format!("jwks {name}: fetched {key_count} keys from {source}"),
                    );
                }
                meta
            }
            Err(why) => {
                let meta = update_meta(r, |m| {
                    m.fetch_failed(now_ms, cache, &why);
                    true
                });
                self.metrics.jwks_fetch(provider, false);
                if let Some(m) = &meta {
                    let kept = if m.has_keys() {
                        format!(
                            "keeping the key set fetched {}s ago",
                            now_ms.saturating_sub(m.fetched_at) / 1000
                        )
                    } else {
                        "no key set yet: requests needing it get \"Jwks remote fetch is failed\""
                            .to_string()
                    };
                    let line = format!(
                        "jwks {name}: fetch from {source} failed: {why}; {kept}; retrying in {}s",
                        m.next_attempt_at.saturating_sub(now_ms) / 1000
                    );
                    // Once per state change: the first failure warns, repeats are debug.
                    log(
                        if m.failures == 1 {
                            LogLevel::Warn
                        } else {
                            LogLevel::Debug
                        },
                        &line,
                    );
                }
                meta
            }
        };
        if let Some(meta) = &meta {
            self.sync(provider, meta);
        }
        meta
    }

    /// Decides whether a request refused for want of keys should wait for a fetch.
    pub fn try_wait(
        &mut self,
        context_id: u32,
        request: &Request,
        misses: &[(usize, AuthError)],
        response_headers: &Rc<RefCell<Vec<(String, String)>>>,
        now_ms: u64,
    ) -> Wait {
        let config = self.config.clone();
        let mut wait_for = None;
        for &(provider, miss) in misses {
            let Some(r) = config
                .providers
                .get(provider)
                .and_then(|p| p.remote.as_ref())
            else {
                continue;
            };
            let meta = read_meta(r).0;
            if self.sync(provider, &meta) {
                return Wait::Retry;
            }
            let waits = match miss {
                // No set yet: wait for the first fetch unless it already failed.
                AuthError::JwksFetchFail => {
                    !meta.has_keys() && (meta.failures == 0 || meta.fetch_in_flight(now_ms))
                }
                // Unknown kid: join a fetch in flight, or ask for one within the rate limit.
                _ if meta.fetch_in_flight(now_ms) => true,
                _ => update_meta(r, |m| {
                    m.request_kid_refetch(now_ms, r.kid_refetch_interval_ms)
                })
                .is_some(),
            };
            if waits {
                wait_for = Some((provider, meta.completed));
                break;
            }
        }
        match wait_for {
            Some((provider, completed)) => {
                self.waiters.push(Waiter {
                    context_id,
                    provider,
                    completed,
                    request: request.clone(),
                    response_headers: response_headers.clone(),
                });
                Wait::Paused
            }
            None => Wait::No,
        }
    }

    /// A paused request whose stream ended: forget it.
    pub fn forget(&mut self, context_id: u32) {
        self.waiters.retain(|w| w.context_id != context_id);
        self.login.forget(context_id);
    }

    /// Evaluates again, and answers or resumes, every request that waited on `provider` and
    /// whose fetch is now over.
    fn wake(&mut self, provider: usize, completed: u64, now_ms: u64) {
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.provider == provider && w.completed < completed);
        self.waiters = waiting;
        for w in ready {
            let outcome = self.evaluate(&w.request, now_ms);
            if super::trace::host(|| hostcalls::set_effective_context(w.context_id)).is_err() {
                continue;
            }
            self.carry_out(
                w.context_id,
                &w.request,
                outcome,
                &w.response_headers,
                now_ms,
                true,
            );
        }
    }
}
