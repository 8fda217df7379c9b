//! Tokens: compact JWS decoding with strict JSON (duplicate member names refused), the claims
//! of a verified token, and the errors a check can end in, with Envoy `jwt_authn`'s bodies.
//!
//! May use: `crypto` (only the algorithm names). Must not use keys, requests or policies;
//! checking a token against a provider and its keys is `authn`'s.

pub mod claims;
pub mod error;
pub mod issuer_map;
pub mod strict_json;
pub mod tenant;
pub mod token;
