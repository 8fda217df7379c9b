//! envoy-jwt-authz: a proxy-wasm HTTP filter for Envoy and Istio that validates JWTs, maps
//! claims to headers, answers CORS and applies claim-based authorization.
//!
//! Everything but `host` is a pure core with no proxy-wasm import, tested natively; `host` is
//! the thin layer compiled only for wasm. Dependencies run one way:
//! `host` → `pipeline` (with `reply`, `stats`) → `authn` → `policy`, `jwks` → `jwt`,
//! `request` → `crypto`; `config` compiles every section and reads only `config::schema`
//! back. `cli` is the native-only tool code.

pub mod authn;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod config;
pub mod crypto;
pub mod jwks;
pub mod jwt;
pub mod login;
pub mod oidc;
pub mod pipeline;
pub mod policy;
pub mod reply;
pub mod request;
pub mod stats;
#[cfg(test)]
mod test_rng;

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
