//! What a request must satisfy besides a valid signature: rules (which requests need which
//! token), CORS (preflights answered before authentication, headers on every reply), and
//! authorization policies with Istio `AuthorizationPolicy` semantics, over shared string
//! matchers.
//!
//! May use: `request`, `jwt` (claims of a verified token), `config::schema` (each section
//! compiles its own part), `reply`. Must not use keys, the verifier or the host.

pub mod authz;
pub mod cors;
pub mod path_index;
pub mod path_template;
pub mod peer;
pub mod rules;
pub mod string_match;
