//! Key sets: JWK Set parsing into verification keys (unusable keys skipped with a reason), and
//! the fetch and refresh policy of remote sets shared by every VM of one Envoy (leases,
//! backoff, refetch on an unknown `kid`, last good set kept through outages).
//!
//! May use: `crypto` (key material), `jwt` (base64url and strict JSON). Must not use requests,
//! policies or the host: the host carries out what `refresh` decides.

pub mod key_set;
pub mod refresh;
