//! The thin layer that turns Envoy's proxy-wasm callbacks into calls on the pure core and
//! carries out what it decides. Host calls are made through the `Result`-returning
//! `hostcalls` functions: the SDK's trait helpers unwrap, and a panic would kill the VM.

pub mod http;
pub mod jwks;
pub mod metrics;
pub mod root;

use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

pub fn log(level: LogLevel, message: &str) {
    // Nothing sensible is left to do if the host refuses a log line.
    let _ = hostcalls::log(level, message);
}

/// The host clock in Unix milliseconds.
pub fn now_ms() -> Option<u64> {
    let t = hostcalls::get_current_time().ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}
