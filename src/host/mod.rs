//! The thin layer that turns Envoy's proxy-wasm callbacks into calls on the pure core and
//! carries out what it decides. Host calls are made through the `Result`-returning
//! `hostcalls` functions: the SDK's trait helpers unwrap, and a panic would kill the VM.

pub mod http;
pub mod root;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

pub fn log(level: LogLevel, message: &str) {
    // Nothing sensible is left to do if the host refuses a log line.
    let _ = hostcalls::log(level, message);
}
