//! Carrying out what the pipeline decided, on the current (effective) stream: a local reply,
//! or the request's header edits and the CORS headers owed to its response; the counters,
//! filter state and AUDIT/dry-run lines it reports. Shared by the request context and by the
//! root context when it finishes a request that waited for keys.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::metrics::Metrics;
use super::{abi, log, recent_ms, trace};
use crate::config::FilterConfig;
use crate::pipeline::{Decision, Outcome};
use crate::reply::LocalReply;
use crate::request::view::{Request, RequestEdits};

pub fn send(reply: &LocalReply) -> Action {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Err(status) =
        abi::send_local_response(reply.status, &reply.details, &headers, &reply.body)
    {
        log(
            LogLevel::Error,
            &format!("local reply failed: host status {status}"),
        );
    }
    Action::Pause
}

/// AUDIT and dry-run lines per VM and second; the rest are counted and the count is told on
/// the next line that goes out.
const NOTICES_PER_SECOND: u32 = 10;

thread_local! {
    /// (second the budget is for, lines sent in it, lines suppressed since the last one sent)
    static NOTICES: Cell<(u64, u32, u64)> = const { Cell::new((0, 0, 0)) };
}

fn notice(line: &str) {
    let second = recent_ms().unwrap_or(0) / 1000;
    let (mut at, mut sent, mut suppressed) = NOTICES.get();
    if second != at {
        (at, sent) = (second, 0);
    }
    if sent >= NOTICES_PER_SECOND {
        NOTICES.set((at, sent, suppressed.saturating_add(1)));
        return;
    }
    if suppressed > 0 {
        log(
            LogLevel::Info,
            &format!("{line} ({suppressed} similar lines suppressed before this one)"),
        );
        suppressed = 0;
    } else {
        log(LogLevel::Info, line);
    }
    NOTICES.set((at, sent + 1, suppressed));
}

/// What a decided request tells the rest of Envoy: filter state (when configured), the
/// counters of the policies it matched, the AUDIT/dry-run line.
fn report(cfg: &FilterConfig, outcome: &Outcome, metrics: &Metrics) {
    for (name, value) in &outcome.filter_state {
        if let Err(status) = abi::set_property(name, value) {
            log(
                LogLevel::Warn,
                &format!("cannot set filter state {name}: host status {status}"),
            );
        }
    }
    if let (Some(a), Some(r)) = (&cfg.authorization, &outcome.authz) {
        for (i, c) in r.events(a) {
            metrics.policy(i, c);
        }
    }
    if let Some(line) = &outcome.notice {
        notice(line);
    }
}

/// Fails closed: any error of the host while editing means the request is not forwarded.
fn apply(edits: &RequestEdits, req: &Request) -> Result<(), String> {
    for name in &edits.remove {
        trace::host(|| hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None))
            .map_err(|e| format!("remove {name}: {e:?}"))?;
    }
    for (name, value) in &edits.set {
        // A header the request lacks (or just lost) is added: Envoy then skips its search
        // for one to replace.
        let absent = req.header(name).is_none() || edits.remove.contains(name);
        trace::host(|| match absent {
            true => hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value),
            false => hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)),
        })
        .map_err(|e| format!("set {name}: {e:?}"))?;
    }
    Ok(())
}

pub fn internal_error(why: &str) -> Action {
    log(LogLevel::Error, why);
    send(&LocalReply {
        status: 500,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "Internal error in JWT filter".into(),
        details: crate::reply::details("jwt_authz_internal_error", None),
    })
}

/// Carries out the pipeline's decision on the current (effective) stream. `resume` is true
/// when the stream was paused waiting for keys.
pub fn carry_out(
    cfg: &FilterConfig,
    req: &Request,
    outcome: Outcome,
    response_headers: &Rc<RefCell<Vec<(String, String)>>>,
    metrics: &Metrics,
    resume: bool,
) -> Action {
    metrics.count(outcome.tally);
    report(cfg, &outcome, metrics);
    if let Some((i, e)) = outcome.oidc_event {
        metrics.oidc(i, e);
    }
    if let Some(w) = &outcome.warning {
        log(LogLevel::Warn, w);
    }
    if let Some(reason) = &outcome.reason {
        log(
            LogLevel::Debug,
            &format!("{} {}: {reason}", req.method(), req.path()),
        );
    }
    match outcome.decision {
        Decision::Reply(reply) => send(&reply),
        Decision::Continue(edits) => match apply(&edits, req) {
            Ok(()) => {
                *response_headers.borrow_mut() = outcome.response_headers;
                if resume {
                    if let Err(e) = trace::host(hostcalls::resume_http_request) {
                        log(LogLevel::Warn, &format!("cannot resume request: {e:?}"));
                    }
                }
                Action::Continue
            }
            Err(e) => internal_error(&format!("cannot edit request headers: {e}")),
        },
        // Carried out by the login calls (`host::login`), never passed here.
        Decision::Exchange(_) | Decision::Refresh(_) => internal_error("unexpected login step"),
    }
}
