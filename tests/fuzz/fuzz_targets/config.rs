//! Arbitrary plugin configurations: refused with an error or loaded whole, never a panic;
//! a loaded one can be described by the checker.
#![no_main]

use envoy_jwt_authz::cli::summary;
use envoy_jwt_authz::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match config::parse(data) {
        Ok(cfg) => {
            let _ = summary::describe(&cfg);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
