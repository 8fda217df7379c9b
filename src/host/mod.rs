//! The thin layer that turns Envoy's proxy-wasm callbacks into calls on the pure core and
//! carries out what it decides. Host calls are made through the `Result`-returning
//! `hostcalls` functions: the SDK's trait helpers unwrap, and a panic would kill the VM.

pub mod abi;
pub mod decision;
pub mod header_map;
pub mod http;
pub mod jwks;
pub mod login;
pub mod metrics;
pub mod properties;
pub mod root;
pub mod trace;

use std::cell::Cell;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

/// The `:status` of the HTTP call whose answer is being delivered (none: no answer).
pub fn call_status() -> Option<String> {
    header_map::read_value(
        proxy_wasm::types::MapType::HttpCallResponseHeaders,
        ":status",
    )
}

/// The body of that answer, `size` bytes (empty when the host gives none).
pub fn call_body(size: usize) -> Vec<u8> {
    let body = trace::host(|| {
        hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, 0, size)
    })
    .ok()
    .flatten()
    .unwrap_or_default();
    if !body.is_empty() {
        trace::vm_entry();
    }
    body
}

pub fn log(level: LogLevel, message: &str) {
    // Nothing sensible is left to do if the host refuses a log line.
    let _ = trace::host(|| hostcalls::log(level, message));
}

thread_local! {
    /// The last clock reading of this VM (a VM is single-threaded).
    static CLOCK_MS: Cell<u64> = const { Cell::new(0) };
}

/// The host clock in Unix milliseconds, read now (and remembered for [`recent_ms`]).
pub fn now_ms() -> Option<u64> {
    let t = trace::host(hostcalls::get_current_time).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    let ms = u64::try_from(d.as_millis()).ok()?;
    CLOCK_MS.set(ms);
    Some(ms)
}

/// The clock as of the last reading, which the root context's tick refreshes every
/// [`root::TICK`]: requests check times in whole seconds with a clock skew allowance, and a
/// host call per request is a visible share of a cached request's cost.
pub fn recent_ms() -> Option<u64> {
    match CLOCK_MS.get() {
        0 => now_ms(),
        ms => Some(ms),
    }
}
