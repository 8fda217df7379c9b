//! envoy-jwt-authz: a proxy-wasm HTTP filter for Envoy and Istio that validates JWTs, maps
//! claims to headers, answers CORS and applies claim-based authorization.
//!
//! Everything but `host` is a pure core with no proxy-wasm import, tested natively; `host` is
//! the thin layer compiled only for wasm.

pub mod authenticator;
pub mod authz;
pub mod claims;
pub mod config;
pub mod cors;
pub mod ecdsa_p256;
pub mod ecdsa_p384;
pub mod ed25519;
pub mod extractor;
pub mod header_map;
pub mod jwks;
pub mod jwks_cache;
pub mod jwt;
pub mod keystore;
#[cfg(not(target_arch = "wasm32"))]
pub mod mint;
pub mod montgomery;
pub mod p256_field;
pub mod p384_field;
pub mod pipeline;
pub mod reply;
pub mod request;
pub mod rsa;
pub mod rules;
pub mod signature;
pub mod stats;
pub mod status;
pub mod strict_json;
pub mod string_match;
pub mod summary;
pub mod token_cache;
pub mod verifier;
pub mod weierstrass;
pub mod wnaf;

#[cfg(target_arch = "wasm32")]
mod host;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    // Also installs a panic hook that logs at critical level before the VM dies.
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(host::root::Root::default())
    });
}}
