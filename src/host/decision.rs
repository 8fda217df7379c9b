//! Carrying out what the pipeline decided, on the current (effective) stream: a local reply,
//! or the request's header edits and the CORS headers owed to its response. Shared by the
//! request context and by the root context when it finishes a request that waited for keys.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::log;
use super::metrics::Metrics;
use crate::pipeline::{Decision, Outcome};
use crate::reply::LocalReply;
use crate::request::view::{Request, RequestEdits};

pub fn send(reply: &LocalReply) -> Action {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Err(e) =
        hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()))
    {
        log(LogLevel::Error, &format!("local reply failed: {e:?}"));
    }
    Action::Pause
}

/// Fails closed: any error of the host while editing means the request is not forwarded.
fn apply(edits: &RequestEdits) -> Result<(), String> {
    for name in &edits.remove {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None)
            .map_err(|e| format!("remove {name}: {e:?}"))?;
    }
    for (name, value) in &edits.set {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
            .map_err(|e| format!("set {name}: {e:?}"))?;
    }
    Ok(())
}

pub fn internal_error(why: &str) -> Action {
    log(LogLevel::Error, why);
    send(&crate::reply::plain(500, "Internal error in JWT filter"))
}

/// Carries out the pipeline's decision on the current (effective) stream. `resume` is true
/// when the stream was paused waiting for keys.
pub fn carry_out(
    req: &Request,
    outcome: Outcome,
    response_headers: &Rc<RefCell<Vec<(String, String)>>>,
    metrics: &Metrics,
    resume: bool,
) -> Action {
    metrics.count(outcome.tally);
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
        Decision::Continue(edits) => match apply(&edits) {
            Ok(()) => {
                *response_headers.borrow_mut() = outcome.response_headers;
                if resume {
                    if let Err(e) = hostcalls::resume_http_request() {
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
