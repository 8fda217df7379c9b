//! Native-only code of the `jwt-authz` tool: token minting for tests and demos, public keys
//! and certificates as JWKs, and the human-readable summary of a configuration. Compiled only for native targets, so none of it
//! (nor `jwt-simple`) reaches the `.wasm`.
//!
//! May use: anything in the core. Nothing in the core uses it.

pub mod cookies;
pub mod from_istio;
pub mod mint;
pub mod public_key;
pub mod summary;
