//! Authentication: the requirement tree evaluated against the tokens of a request with Envoy
//! `jwt_authn` semantics (which error wins in a `requires_any`), one token verified for one
//! provider in Envoy's order, and the per-VM key store with its verified-token cache.
//!
//! May use: `config` (providers), `request`, `jwt`, `jwks`, `crypto` (signature dispatch), and
//! `policy::rules` (the requirement type). Must not use CORS, authorization or the host.

pub mod authenticator;
pub mod fingerprint;
pub mod keystore;
pub mod token_cache;
pub mod verifier;
