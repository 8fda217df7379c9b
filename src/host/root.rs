//! The root context: loads the plugin configuration once and hands it to every HTTP context.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::http::Filter;
use super::jwks::RemoteKeys;
use super::metrics::Metrics;
use super::{log, now_ms, trace};
use crate::config;

/// How often each VM refreshes its clock, looks at the shared key sets (starting due fetches)
/// and flushes its counters.
pub const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Root {
    keys: Option<Rc<RefCell<RemoteKeys>>>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        trace::outside_request(|| super::jwks::deliver(self.keys.as_ref(), token_id, body_size));
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("cannot read plugin configuration: {e:?}"),
                );
                return false;
            }
        };
        match config::parse(&bytes) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    log(LogLevel::Warn, w);
                }
                let providers: Vec<String> = cfg
                    .providers
                    .iter()
                    .filter(|p| !p.remote.as_ref().is_some_and(|r| r.discovery))
                    .map(|p| {
                        let mut sources = Vec::new();
                        if !p.local_keys.is_empty() {
                            sources.push(format!("{} local keys", p.local_keys.keys.len()));
                        }
                        if let Some(r) = &p.remote {
                            sources.push(format!(
                                "remote {}{} via {}",
                                r.authority, r.path, r.cluster
                            ));
                        }
                        format!("{} ({})", p.name, sources.join(", "))
                    })
                    .collect();
                let oidc: Vec<String> = cfg
                    .oidc
                    .iter()
                    .map(|o| {
                        format!(
                            "{} ({} via {})",
                            o.provider.name, o.provider.issuer, o.provider.cluster
                        )
                    })
                    .collect();
                log(
                    LogLevel::Info,
                    &format!(
                        "jwt_authz {} configured: providers [{}]{}",
                        env!("CARGO_PKG_VERSION"),
                        providers.join("; "),
                        if oidc.is_empty() {
                            String::new()
                        } else {
                            format!(", browser login [{}]", oidc.join("; "))
                        }
                    ),
                );
                let has_remote = cfg.providers.iter().any(|p| p.remote.is_some());
                let metrics = Rc::new(Metrics::define(&cfg));
                let keys = RemoteKeys::new(Rc::new(cfg), metrics);
                if has_remote {
                    keys.init_shared();
                }
                if let Err(e) = hostcalls::set_tick_period(TICK) {
                    log(LogLevel::Error, &format!("cannot start the timer: {e:?}"));
                    return false;
                }
                self.keys = Some(Rc::new(RefCell::new(keys)));
                true
            }
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("invalid plugin configuration: {e}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(keys) = &self.keys else { return };
        trace::outside_request(|| {
            if let Some(now) = now_ms() {
                keys.borrow_mut().tick(now);
            }
            keys.borrow().metrics().flush();
        });
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter::new(context_id, self.keys.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
