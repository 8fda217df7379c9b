//! Passes every request on untouched: the SDK's default callbacks only.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Empty) });
}}

struct Empty;

impl Context for Empty {}

impl HttpContext for Empty {}
