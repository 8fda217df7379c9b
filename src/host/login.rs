//! Browser login's calls to the IdP's token endpoint, carried out for the requests that need
//! them: a callback's code exchange, and a session's refresh, made once per session per Envoy
//! (a shared-data slot names the refresh in flight; the other requests of that session, on
//! any worker, wait for its result and use it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, LogLevel, Status};

use super::decision::{carry_out, internal_error};
use super::metrics::Metrics;
use super::{call_body, call_status, log};
use crate::authn::keystore::KeyStore;
use crate::config::FilterConfig;
use crate::login::callback::{self, Exchange};
use crate::login::refresh::{self, Refresh, Renewal};
use crate::oidc::cookies::request_cookies;
use crate::oidc::random::HostRandom;
use crate::oidc::token::MAX_TOKEN_RESPONSE_BYTES;
use crate::pipeline::{self, Decision, Outcome};
use crate::request::view::Request;
use crate::stats::{Counter, OidcCounter};

/// Refresh slots per `oidc` entry: a session's refresh takes the slot its key hashes to.
const SLOTS: usize = 64;
/// A finished refresh's result stays usable this long by the session's other requests.
const RESULT_TTL_MS: u64 = 30_000;

/// The VM's view for one evaluation: configuration, keys and counters.
pub struct Vm<'a> {
    pub config: &'a FilterConfig,
    pub store: &'a KeyStore,
    pub metrics: &'a Metrics,
}

impl Vm<'_> {
    /// Runs the pipeline for a request and counts the token cache's hits and misses.
    pub fn evaluate(&self, req: &Request, now_ms: u64, may_refresh: bool) -> Outcome {
        let (hits, misses) = self.store.cache_counts();
        let outcome = pipeline::on_request_headers(
            self.config,
            self.store,
            req,
            now_ms / 1000,
            &mut HostRandom,
            may_refresh,
        );
        let (hits_after, misses_after) = self.store.cache_counts();
        self.metrics
            .add(Counter::JwtCacheHit, hits_after.saturating_sub(hits));
        self.metrics
            .add(Counter::JwtCacheMiss, misses_after.saturating_sub(misses));
        outcome
    }
}

enum Kind {
    Exchange(Box<Exchange>),
    Refresh(Box<Refresh>),
}

/// A request waiting for the token endpoint (its own call, or another request's refresh).
struct Op {
    context_id: u32,
    request: Request,
    response_headers: Rc<RefCell<Vec<(String, String)>>>,
    kind: Kind,
    /// Refresh waiters: give up waiting for another worker's call after this.
    deadline_ms: u64,
    /// Its ID token was already tried again after a key-set refetch.
    retried: bool,
}

/// A callback whose ID token names a key the discovered set lacks: kept, with the token
/// endpoint's answer, until the set is fetched again (or the wait ends).
struct Verifying {
    op: Op,
    status: u32,
    body: Vec<u8>,
    /// The key set's version when the wait began.
    version: u64,
    keys: usize,
    deadline_ms: u64,
}

#[derive(Default)]
pub struct LoginOps {
    in_flight: HashMap<u32, Op>,
    waiting: Vec<Op>,
    verifying: Vec<Verifying>,
}

fn slot_key(cfg: &FilterConfig, oidc: usize, key: &str) -> String {
    let name = cfg.oidc.get(oidc).map_or("", |o| o.provider.name.as_str());
    let n = key
        .get(..2)
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .unwrap_or(0)
        % SLOTS;
    format!("jwt_authz.oidc.refresh|{name}|{n}")
}

/// A slot's value: `<key> <P|D|F|U> <ms>` then, for `D`, the renewed `Set-Cookie` lines.
enum Slot {
    /// Being refreshed, until the lease ends.
    Pending {
        until: u64,
    },
    Done {
        at: u64,
        set_cookies: Vec<String>,
    },
    Refused {
        at: u64,
    },
    Unavailable {
        at: u64,
    },
}

fn read_slot(name: &str, key: &str) -> (Option<Slot>, Option<u32>) {
    let Ok((bytes, cas)) = super::trace::host(|| hostcalls::get_shared_data(name)) else {
        return (None, None);
    };
    let text = bytes
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("");
    let mut lines = text.split('\n');
    let head = lines.next().unwrap_or("");
    let mut parts = head.split(' ');
    let (Some(k), Some(state), Some(ms)) = (parts.next(), parts.next(), parts.next()) else {
        return (None, cas);
    };
    let Ok(ms) = ms.parse::<u64>() else {
        return (None, cas);
    };
    if k != key {
        // Another session's: busy only while its lease lasts.
        return match state {
            "P" => (Some(Slot::Pending { until: ms }), cas),
            _ => (None, cas),
        };
    }
    let slot = match state {
        "P" => Slot::Pending { until: ms },
        "D" => Slot::Done {
            at: ms,
            set_cookies: lines.map(str::to_string).collect(),
        },
        "F" => Slot::Refused { at: ms },
        _ => Slot::Unavailable { at: ms },
    };
    (Some(slot), cas)
}

impl LoginOps {
    /// Creates the refresh slots, so that taking one can be compare-and-swap. Run from
    /// `on_configure`, before any worker starts.
    pub fn init_shared(cfg: &FilterConfig) {
        for o in &cfg.oidc {
            for n in 0..SLOTS {
                let name = format!("jwt_authz.oidc.refresh|{}|{n}", o.provider.name);
                if let Ok((None, _)) | Err(_) =
                    super::trace::host(|| hostcalls::get_shared_data(&name))
                {
                    let _ =
                        super::trace::host(|| hostcalls::set_shared_data(&name, Some(b""), None));
                }
            }
        }
    }

    /// Starts what an `Exchange` or `Refresh` decision asks for; the stream pauses until it
    /// is done. `resume`: the stream is paused already (it waited for keys).
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        vm: &Vm,
        context_id: u32,
        request: &Request,
        outcome: Outcome,
        response_headers: &Rc<RefCell<Vec<(String, String)>>>,
        now_ms: u64,
        resume: bool,
    ) -> Action {
        let kind = match outcome.decision {
            Decision::Exchange(ex) => Kind::Exchange(ex),
            Decision::Refresh(r) => Kind::Refresh(r),
            _ => {
                return carry_out(
                    vm.config,
                    request,
                    outcome,
                    response_headers,
                    vm.metrics,
                    resume,
                )
            }
        };
        let timeout = vm
            .config
            .oidc
            .get(op_oidc(&kind))
            .map_or(5_000, |o| o.provider.timeout_ms);
        let op = Op {
            context_id,
            request: request.clone(),
            response_headers: response_headers.clone(),
            kind,
            deadline_ms: now_ms.saturating_add(timeout.saturating_mul(2)),
            retried: false,
        };
        match &op.kind {
            Kind::Exchange(_) => self.dispatch(vm, op, now_ms),
            Kind::Refresh(_) => self.refresh(vm, op, now_ms),
        }
        Action::Pause
    }

    /// A refresh: use a result another request got, wait for one in flight, or make the call.
    fn refresh(&mut self, vm: &Vm, op: Op, now_ms: u64) {
        let Kind::Refresh(r) = &op.kind else {
            return;
        };
        let name = slot_key(vm.config, r.oidc, &r.key);
        for _ in 0..4 {
            let (slot, cas) = read_slot(&name, &r.key);
            match slot {
                Some(Slot::Pending { until }) if until > now_ms => {
                    self.waiting.push(op);
                    return;
                }
                Some(Slot::Done { at, set_cookies }) if now_ms < at + RESULT_TTL_MS => {
                    return self.complete(
                        vm,
                        op,
                        Renewal::Renewed {
                            set_cookies,
                            warning: None,
                        },
                        now_ms,
                    );
                }
                Some(Slot::Unavailable { at }) if now_ms < at + RESULT_TTL_MS => {
                    return self.complete(
                        vm,
                        op,
                        Renewal::Unavailable(
                            "the IdP did not answer another request of the session".into(),
                        ),
                        now_ms,
                    );
                }
                Some(Slot::Refused { at }) if now_ms < at + RESULT_TTL_MS => {
                    return self.complete(
                        vm,
                        op,
                        Renewal::Refused("refused for another request of the session".into()),
                        now_ms,
                    );
                }
                _ => {}
            }
            let timeout = vm
                .config
                .oidc
                .get(r.oidc)
                .map_or(5_000, |o| o.provider.timeout_ms);
            let lease = format!("{} P {}", r.key, now_ms + timeout + 1_000);
            match super::trace::host(|| {
                hostcalls::set_shared_data(&name, Some(lease.as_bytes()), cas)
            }) {
                Ok(()) => return self.dispatch(vm, op, now_ms),
                Err(Status::CasMismatch) => continue,
                Err(e) => {
                    log(
                        LogLevel::Warn,
                        &format!("oidc refresh slot unwritable: {e:?}"),
                    );
                    return self.dispatch(vm, op, now_ms);
                }
            }
        }
        self.waiting.push(op);
    }

    fn dispatch(&mut self, vm: &Vm, op: Op, now_ms: u64) {
        let oidc = op_oidc(&op.kind);
        let Some(login) = vm.config.oidc.get(oidc) else {
            return;
        };
        let request = match &op.kind {
            Kind::Exchange(ex) => &ex.request,
            Kind::Refresh(r) => &r.request,
        };
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        match super::trace::host(|| {
            hostcalls::dispatch_http_call(
                &login.provider.cluster,
                headers,
                Some(request.body.as_bytes()),
                vec![],
                Duration::from_millis(login.provider.timeout_ms),
            )
        }) {
            Ok(token) => {
                self.in_flight.insert(token, op);
            }
            Err(e) => {
                log(
                    LogLevel::Warn,
                    &format!(
                        "oidc {}: cannot call cluster {:?}: {e:?}",
                        login.provider.name, login.provider.cluster
                    ),
                );
                self.answer(vm, op, 0, &[], now_ms);
            }
        }
    }

    /// A token endpoint call returned. Some(provider) when a login waits for that provider's
    /// key set to be fetched again (an ID token under a kid it lacks).
    pub fn on_response(
        &mut self,
        vm: &Vm,
        token: u32,
        body_size: usize,
        now_ms: u64,
    ) -> Option<usize> {
        let op = self.in_flight.remove(&token)?;
        let status = call_status()
            .and_then(|s| s.parse::<u32>().ok())
            // A call that got no answer (reset, timeout) has no status.
            .unwrap_or(0);
        let body = if body_size > MAX_TOKEN_RESPONSE_BYTES {
            vec![0; MAX_TOKEN_RESPONSE_BYTES + 1]
        } else {
            call_body(body_size)
        };
        self.answer(vm, op, status, &body, now_ms)
    }

    fn answer(&mut self, vm: &Vm, op: Op, status: u32, body: &[u8], now_ms: u64) -> Option<usize> {
        let now = now_ms / 1000;
        match &op.kind {
            Kind::Exchange(ex) => {
                let present = request_cookies(&op.request);
                let done = callback::finish(
                    vm.config,
                    vm.store,
                    ex,
                    status,
                    body,
                    &present,
                    now,
                    &mut HostRandom,
                );
                let login = vm.config.oidc.get(ex.oidc);
                if let (true, false, Some(login)) = (done.keys_missing, op.retried, login) {
                    let keys = login.keys;
                    self.verifying.push(Verifying {
                        version: vm.store.remote_version(keys),
                        keys,
                        deadline_ms: now_ms.saturating_add(login.provider.timeout_ms * 2),
                        status,
                        body: body.to_vec(),
                        op: Op {
                            retried: true,
                            ..op
                        },
                    });
                    return Some(keys);
                }
                vm.metrics.oidc(ex.oidc, done.event);
                if let Some(w) = &done.warning {
                    log(LogLevel::Warn, w);
                }
                if let Some(why) = &done.reason {
                    log(
                        LogLevel::Debug,
                        &format!("{} {}: {why}", op.request.method(), op.request.path()),
                    );
                }
                if super::trace::host(|| hostcalls::set_effective_context(op.context_id)).is_ok() {
                    super::decision::send(&done.reply);
                }
                None
            }
            Kind::Refresh(r) => {
                let present = request_cookies(&op.request);
                let renewal = refresh::finish(
                    vm.config,
                    vm.store,
                    r,
                    status,
                    body,
                    &present,
                    now,
                    &mut HostRandom,
                );
                let (state, payload) = match &renewal {
                    Renewal::Renewed { set_cookies, .. } => ("D", set_cookies.join("\n")),
                    Renewal::Refused(_) => ("F", String::new()),
                    Renewal::Unavailable(_) => ("U", String::new()),
                };
                let name = slot_key(vm.config, r.oidc, &r.key);
                let mut value = format!("{} {state} {now_ms}", r.key);
                if !payload.is_empty() {
                    value.push('\n');
                    value.push_str(&payload);
                }
                let _ = super::trace::host(|| {
                    hostcalls::set_shared_data(&name, Some(value.as_bytes()), None)
                });
                vm.metrics.oidc(
                    r.oidc,
                    if matches!(renewal, Renewal::Renewed { .. }) {
                        OidcCounter::RefreshSuccess
                    } else {
                        OidcCounter::RefreshFailed
                    },
                );
                self.complete(vm, op, renewal, now_ms);
                None
            }
        }
    }

    /// Carries a refresh's result into a request of the session: evaluated again with the
    /// renewed session (or without it when refused, or as it was when the IdP did not answer).
    fn complete(&mut self, vm: &Vm, op: Op, renewal: Renewal, now_ms: u64) {
        let Kind::Refresh(r) = &op.kind else {
            return;
        };
        let Some(login) = vm.config.oidc.get(r.oidc) else {
            return;
        };
        let base = &login.provider.session.cookie.name;
        let (request, set_cookies) = match renewal {
            Renewal::Renewed {
                set_cookies,
                warning,
            } => {
                if let Some(w) = warning {
                    log(LogLevel::Warn, &w);
                }
                let pairs = refresh::cookie_pairs(&set_cookies);
                (
                    refresh::with_session(&op.request, base, &pairs),
                    set_cookies,
                )
            }
            Renewal::Refused(why) => {
                log(LogLevel::Debug, &why);
                (
                    refresh::with_session(&op.request, base, &[]),
                    refresh::end(login, &op.request),
                )
            }
            Renewal::Unavailable(why) => {
                log(LogLevel::Warn, &format!("{why}; the session goes on"));
                (op.request.clone(), Vec::new())
            }
        };
        let mut outcome = vm.evaluate(&request, now_ms, false);
        let cookies = set_cookies
            .into_iter()
            .map(|c| ("set-cookie".to_string(), c));
        match &mut outcome.decision {
            Decision::Reply(reply) => reply.headers.extend(cookies),
            _ => outcome.response_headers.extend(cookies),
        }
        if super::trace::host(|| hostcalls::set_effective_context(op.context_id)).is_err() {
            return;
        }
        match outcome.decision {
            Decision::Reply(_) | Decision::Continue(_) => {
                carry_out(
                    vm.config,
                    &request,
                    outcome,
                    &op.response_headers,
                    vm.metrics,
                    true,
                );
            }
            // Cannot happen without `may_refresh`, nor on a callback path.
            _ => {
                internal_error("login loop");
            }
        }
    }

    /// Requests waiting for another worker's refresh: look again at their slots. Logins
    /// waiting for a key set: verified again once it changed, or refused when the wait ends.
    pub fn tick(&mut self, vm: &Vm, now_ms: u64) {
        let (ready, waiting): (Vec<Verifying>, Vec<Verifying>) =
            std::mem::take(&mut self.verifying)
                .into_iter()
                .partition(|v| {
                    now_ms > v.deadline_ms || vm.store.remote_version(v.keys) != v.version
                });
        self.verifying = waiting;
        for v in ready {
            self.answer(vm, v.op, v.status, &v.body, now_ms);
        }
        let waiting = std::mem::take(&mut self.waiting);
        for op in waiting {
            if now_ms > op.deadline_ms {
                // The call's owner is gone: refresh for this request itself.
                let mut op = op;
                op.deadline_ms = now_ms.saturating_add(10_000);
                self.dispatch(vm, op, now_ms);
                continue;
            }
            self.refresh(vm, op, now_ms);
        }
    }

    /// A stream that ended: forget its requests.
    pub fn forget(&mut self, context_id: u32) {
        self.in_flight.retain(|_, op| op.context_id != context_id);
        self.waiting.retain(|op| op.context_id != context_id);
        self.verifying.retain(|v| v.op.context_id != context_id);
    }
}

fn op_oidc(kind: &Kind) -> usize {
    match kind {
        Kind::Exchange(ex) => ex.oidc,
        Kind::Refresh(r) => r.oidc,
    }
}
