//! The per-request context: reads the request headers, asks the pipeline, carries out its
//! decision, and adds CORS headers to the upstream's response.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::log;
use crate::authenticator::LocalKeys;
use crate::config::FilterConfig;
use crate::cors;
use crate::pipeline::{self, Decision};
use crate::reply::LocalReply;
use crate::request::{Request, RequestEdits};

pub struct Filter {
    config: Option<Rc<FilterConfig>>,
    /// CORS headers owed to the upstream's response.
    response_headers: Vec<(String, String)>,
}

impl Filter {
    pub fn new(config: Option<Rc<FilterConfig>>) -> Self {
        Self {
            config,
            response_headers: Vec::new(),
        }
    }

    fn read(map: MapType) -> Result<Vec<(String, String)>, String> {
        hostcalls::get_map_bytes(map)
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                    .collect()
            })
            .map_err(|e| format!("{e:?}"))
    }

    fn send(&self, reply: &LocalReply) -> Action {
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

    fn internal_error(&self, why: &str) -> Action {
        log(LogLevel::Error, why);
        self.send(&LocalReply {
            status: 500,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: "Internal error in JWT filter".into(),
        })
    }
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return self.internal_error("no configuration");
        };
        let headers = match Self::read(MapType::HttpRequestHeaders) {
            Ok(h) => h,
            Err(e) => return self.internal_error(&format!("cannot read request headers: {e}")),
        };
        let now = match hostcalls::get_current_time().map(|t| t.duration_since(UNIX_EPOCH)) {
            Ok(Ok(d)) => d.as_secs(),
            _ => return self.internal_error("host clock unavailable"),
        };
        let req = Request::new(headers);
        let outcome = pipeline::on_request_headers(&config, &LocalKeys, &req, now);
        if let Some(reason) = &outcome.reason {
            log(
                LogLevel::Debug,
                &format!("{} {}: {reason}", req.method(), req.path()),
            );
        }
        match outcome.decision {
            Decision::Reply(reply) => self.send(&reply),
            Decision::Continue(edits) => match Self::apply(&edits) {
                Ok(()) => {
                    self.response_headers = outcome.response_headers;
                    Action::Continue
                }
                Err(e) => self.internal_error(&format!("cannot edit request headers: {e}")),
            },
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.response_headers.is_empty() {
            return Action::Continue;
        }
        let existing = Self::read(MapType::HttpResponseHeaders).unwrap_or_default();
        for (name, value) in cors::merge_into_response(&existing, &self.response_headers) {
            if let Err(e) =
                hostcalls::set_map_value(MapType::HttpResponseHeaders, &name, Some(&value))
            {
                log(
                    LogLevel::Warn,
                    &format!("cannot set response header {name}: {e:?}"),
                );
            }
        }
        Action::Continue
    }
}
