//! The root context: loads the plugin configuration once and hands it to every HTTP context.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::http::Filter;
use super::log;
use crate::config::{self, FilterConfig};

#[derive(Default)]
pub struct Root {
    config: Option<Rc<FilterConfig>>,
}

impl Context for Root {}

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
                log(
                    LogLevel::Info,
                    &format!(
                        "jwt_authz {} configured: providers [{}]",
                        env!("CARGO_PKG_VERSION"),
                        providers.join("; ")
                    ),
                );
                self.config = Some(Rc::new(cfg));
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter::new(self.config.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
