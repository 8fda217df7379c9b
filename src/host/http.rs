//! The per-request context: reads the request headers, asks the pipeline, carries out its
//! decision (or pauses until a key set it needs arrives), and adds CORS headers to the
//! upstream's response.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel, MapType};

use super::decision::internal_error;
use super::header_map::{read, read_value};
use super::jwks::{RemoteKeys, Wait};
use super::properties;
use super::{log, recent_ms, trace};
use crate::policy::cors;
use crate::request::connection::Connection;
use crate::request::header_map::HeaderMap;
use crate::request::view::Request;

pub struct Filter {
    context_id: u32,
    keys: Option<Rc<RefCell<RemoteKeys>>>,
    /// CORS headers owed to the upstream's response; also written by the root context when
    /// it finishes a request that waited for keys.
    response_headers: Rc<RefCell<Vec<(String, String)>>>,
}

impl Filter {
    pub fn new(context_id: u32, keys: Option<Rc<RefCell<RemoteKeys>>>) -> Self {
        let _entry = trace::callback();
        Self {
            context_id,
            keys,
            response_headers: Rc::default(),
        }
    }
}

/// Cleanup runs when the SDK drops the context (`proxy_on_delete`): the build removes the
/// `proxy_on_done` export (see scripts/build), which saves a VM entry per request.
impl Drop for Filter {
    fn drop(&mut self) {
        let _entry = trace::callback();
        // Not borrowable only while the root context is finishing this very request.
        if let Some(Ok(mut keys)) = self.keys.as_ref().map(|k| k.try_borrow_mut()) {
            keys.forget(self.context_id);
        }
        trace::stream_done();
    }
}

impl Context for Filter {
    /// A token endpoint call this request made (login callback or session refresh).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let _entry = trace::callback();
        super::jwks::deliver(self.keys.as_ref(), token_id, body_size);
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _entry = trace::callback();
        let action = self.request_headers();
        trace::request_done();
        action
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _entry = trace::callback();
        self.response_headers()
    }
}

impl Filter {
    fn request_headers(&mut self) -> Action {
        let Some(keys) = self.keys.clone() else {
            return internal_error("no configuration");
        };
        let headers = match read(MapType::HttpRequestHeaders) {
            Ok(h) => h,
            Err(e) => return internal_error(&format!("cannot read request headers: {e}")),
        };
        trace::control(&headers);
        let Some(now_ms) = recent_ms() else {
            return internal_error("host clock unavailable");
        };
        let connection = {
            let k = keys.borrow();
            let cfg = k.config();
            if cfg.reads_attributes() {
                properties::connection(self.context_id, cfg.route_metadata_keys().into())
            } else {
                Connection::default()
            }
        };
        let req = Request {
            headers,
            connection,
        };
        let evaluate = || keys.borrow().evaluate(&req, now_ms);
        let mut outcome = trace::work(evaluate);
        if !outcome.jwks_misses.is_empty() {
            let wait = keys.borrow_mut().try_wait(
                self.context_id,
                &req,
                &outcome.jwks_misses,
                &self.response_headers,
                now_ms,
            );
            match wait {
                Wait::Paused => return Action::Pause,
                Wait::Retry => outcome = evaluate(),
                Wait::No => {}
            }
        }
        let mut k = keys.borrow_mut();
        k.carry_out(
            self.context_id,
            &req,
            outcome,
            &self.response_headers,
            now_ms,
            false,
        )
    }

    fn response_headers(&mut self) -> Action {
        // Taken, not copied: a stream's response headers are edited once.
        let owed = std::mem::take(&mut *self.response_headers.borrow_mut());
        if owed.is_empty() {
            return Action::Continue;
        }
        let mut cors_owed = Vec::with_capacity(owed.len());
        for (name, value) in owed {
            if name != "set-cookie" {
                cors_owed.push((name, value));
                continue;
            }
            // Session cookies are added beside the upstream's own, never merged.
            if let Err(e) = trace::host(|| {
                hostcalls::add_map_value(MapType::HttpResponseHeaders, "set-cookie", &value)
            }) {
                log(
                    LogLevel::Warn,
                    &format!("cannot add a session cookie: {e:?}"),
                );
            }
        }
        if cors_owed.is_empty() {
            return Action::Continue;
        }
        // The upstream's own values, each read on its own: a header that is absent (the usual
        // case) costs no VM entry to hand over, where reading the whole map costs one and a
        // parse. A single read gives only the first of several `Vary` headers, so a response
        // with `Vary` is read whole.
        let mut whole: Option<HeaderMap> = None;
        let upstream = |name: &str| -> Vec<String> {
            if let Some(map) = &whole {
                return map.header_values(name).map(String::from).collect();
            }
            match read_value(MapType::HttpResponseHeaders, name) {
                None => Vec::new(),
                Some(_) if name == "vary" => {
                    let map = read(MapType::HttpResponseHeaders).unwrap_or_default();
                    let values = map.header_values(name).map(String::from).collect();
                    whole = Some(map);
                    values
                }
                Some(value) => vec![value],
            }
        };
        // Not a timed stage: the merge makes the reads.
        let merged = cors::merge_into_response(upstream, cors_owed);
        let had_vary = whole.is_some();
        for (name, value) in merged {
            // The merge hands back only headers the upstream lacks, and a `Vary` that replaces
            // the upstream's: adding skips Envoy's search for a header to replace.
            let result = if name == "vary" && had_vary {
                trace::host(|| {
                    hostcalls::set_map_value(MapType::HttpResponseHeaders, &name, Some(&value))
                })
            } else {
                trace::host(|| {
                    hostcalls::add_map_value(MapType::HttpResponseHeaders, &name, &value)
                })
            };
            if let Err(e) = result {
                log(
                    LogLevel::Warn,
                    &format!("cannot set response header {name}: {e:?}"),
                );
            }
        }
        Action::Continue
    }
}
