//! Policy for remote key sets, shared by every VM (worker) of one Envoy: when to fetch, who
//! fetches (a lease taken with compare-and-swap), backoff after failures, rate-limited refetch
//! on an unknown `kid`, and what a fetched body must be to replace the last good set.
//! The host stores [`Meta`] and the body in proxy-wasm shared data; this module only decides.

use serde::{Deserialize, Serialize};

use crate::jwks::key_set::{self, Loaded};

/// Bodies larger than this are refused without parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// First retry delay after a failure; it doubles up to `cache_duration`.
pub const FIRST_RETRY_MS: u64 = 1_000;
/// A lease outlives the fetch timeout by this much, in case its holder's VM goes away.
pub const LEASE_GRACE_MS: u64 = 1_000;

/// The shared state of one remote key set. Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Version of the body in shared data; 0 = no good set yet.
    pub version: u64,
    /// When the current body was fetched.
    pub fetched_at: u64,
    /// No fetch before this time (backoff after failures).
    pub next_attempt_at: u64,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// Fetches completed (success or failure): waiters resume when it moves.
    pub completed: u64,
    /// A fetch is in flight until this time.
    pub lease_until: u64,
    /// Last refetch requested for an unknown `kid`.
    pub kid_refetch_at: u64,
    /// A request asked for a refetch (unknown `kid`).
    pub refetch_wanted: bool,
    /// Why the last fetch failed, for logs.
    pub last_error: String,
}

impl Meta {
    pub fn decode(bytes: Option<&[u8]>) -> Meta {
        bytes
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn has_keys(&self) -> bool {
        self.version > 0
    }

    pub fn fetch_in_flight(&self, now: u64) -> bool {
        now < self.lease_until
    }

    /// Whether a fetch should start now: none yet, the set is due for refresh (at 90% of
    /// `cache_duration`, so a refresh never makes traffic wait), or a refetch was asked for;
    /// never during backoff or while another fetch is in flight.
    pub fn fetch_due(&self, now: u64, cache_duration_ms: u64) -> bool {
        if self.fetch_in_flight(now) || now < self.next_attempt_at {
            return false;
        }
        !self.has_keys()
            || self.refetch_wanted
            || now >= self.fetched_at.saturating_add(cache_duration_ms / 10 * 9)
    }

    /// Takes the fetch lease (the caller writes it back with compare-and-swap).
    pub fn start_fetch(&mut self, now: u64, timeout_ms: u64) {
        self.lease_until = now + timeout_ms + LEASE_GRACE_MS;
        self.refetch_wanted = false;
    }

    /// `changed`: the body differs from the one shared. An identical set keeps its version, so
    /// no VM reparses it and no verified token is forgotten (an unknown-`kid` flood then
    /// cannot flush every worker's token cache).
    pub fn fetch_succeeded(&mut self, now: u64, changed: bool) {
        if changed || self.version == 0 {
            self.version += 1;
        }
        self.fetched_at = now;
        self.failures = 0;
        self.next_attempt_at = 0;
        self.completed += 1;
        self.lease_until = 0;
        self.last_error.clear();
    }

    /// Records a failure; the last good set (if any) stays. Backoff: 1 s doubling up to
    /// `cache_duration`.
    pub fn fetch_failed(&mut self, now: u64, cache_duration_ms: u64, why: &str) {
        self.failures = self.failures.saturating_add(1);
        let shift = self.failures.saturating_sub(1).min(30);
        let delay = FIRST_RETRY_MS
            .saturating_mul(1u64 << shift)
            .min(cache_duration_ms.max(FIRST_RETRY_MS));
        self.next_attempt_at = now + delay;
        self.completed += 1;
        self.lease_until = 0;
        self.last_error = why.to_string();
    }

    /// Asks for a refetch because a token names an unknown `kid`; `false` when the rate limit
    /// (`kid_refetch_interval`) forbids it.
    pub fn request_kid_refetch(&mut self, now: u64, interval_ms: u64) -> bool {
        if self.kid_refetch_at != 0 && now < self.kid_refetch_at.saturating_add(interval_ms) {
            return false;
        }
        self.kid_refetch_at = now;
        self.refetch_wanted = true;
        true
    }
}

/// Checks a fetch response: HTTP 200, a body within bounds, a JWK Set with at least one usable
/// key (symmetric keys are never accepted from a remote set).
pub fn accept_body(status: Option<&str>, body: &[u8]) -> Result<Loaded, String> {
    match status {
        None => return Err("no response (timeout or connection failure)".into()),
        Some("200") => {}
        Some(s) => return Err(format!("HTTP {s}")),
    }
    if body.is_empty() {
        return Err("empty body".into());
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "body of {} bytes is over {MAX_BODY_BYTES}",
            body.len()
        ));
    }
    let loaded = key_set::parse(body, false)?;
    if loaded.set.is_empty() {
        return Err(format!("no usable key ({})", loaded.skipped.join("; ")));
    }
    Ok(loaded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const CACHE: u64 = 600_000;

    #[test]
    fn fetches_at_start_then_before_expiry() {
        let mut m = Meta::default();
        assert!(m.fetch_due(1_000, CACHE));
        m.start_fetch(1_000, 5_000);
        assert!(!m.fetch_due(2_000, CACHE), "single flight");
        m.fetch_succeeded(2_000, true);
        assert!(!m.fetch_due(2_000 + CACHE / 2, CACHE));
        assert!(
            m.fetch_due(2_000 + CACHE * 9 / 10, CACHE),
            "refresh before expiry"
        );
    }

    #[test]
    fn expired_lease_frees_the_fetch() {
        let mut m = Meta::default();
        m.start_fetch(0, 5_000);
        assert!(!m.fetch_due(5_999, CACHE));
        assert!(m.fetch_due(6_000, CACHE));
    }

    #[test]
    fn backoff_doubles_up_to_cache_duration_and_keeps_keys() {
        let mut m = Meta::default();
        m.fetch_succeeded(0, true);
        let v = m.version;
        let mut now = 1_000_000;
        let mut delays = Vec::new();
        for _ in 0..6 {
            m.fetch_failed(now, 10_000, "HTTP 500");
            delays.push(m.next_attempt_at - now);
            assert!(!m.fetch_due(now, 10_000));
            now = m.next_attempt_at;
            assert!(m.fetch_due(now, 10_000));
        }
        assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(m.version, v, "the last good set stays");
        m.fetch_succeeded(now, true);
        assert_eq!((m.failures, m.next_attempt_at), (0, 0));
    }

    #[test]
    fn kid_refetch_is_rate_limited() {
        let mut m = Meta::default();
        m.fetch_succeeded(0, true);
        assert!(m.request_kid_refetch(100_000, 30_000));
        assert!(m.fetch_due(100_000, CACHE));
        m.start_fetch(100_000, 5_000);
        m.fetch_succeeded(100_500, true);
        assert!(!m.request_kid_refetch(110_000, 30_000));
        assert!(!m.fetch_due(110_000, CACHE));
        assert!(m.request_kid_refetch(130_000, 30_000));
    }

    #[test]
    fn identical_set_keeps_its_version() {
        let mut m = Meta::default();
        m.fetch_succeeded(0, false);
        assert_eq!(m.version, 1, "the first set always counts");
        m.fetch_succeeded(1_000, false);
        assert_eq!((m.version, m.fetched_at, m.completed), (1, 1_000, 2));
        m.fetch_succeeded(2_000, true);
        assert_eq!(m.version, 2);
    }

    fn err(r: Result<Loaded, String>) -> String {
        r.err().unwrap_or_default()
    }

    #[test]
    fn bodies_are_checked() {
        let ok = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        assert!(accept_body(Some("200"), ok.as_bytes()).is_ok());
        assert_eq!(
            accept_body(Some("500"), ok.as_bytes()).err().unwrap(),
            "HTTP 500"
        );
        assert!(err(accept_body(None, b"")).contains("timeout"));
        assert_eq!(err(accept_body(Some("200"), b"")), "empty body");
        assert!(accept_body(Some("200"), b"<html>").is_err());
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI"}]}"#;
        assert!(err(accept_body(Some("200"), oct.as_bytes())).starts_with("no usable key"));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(err(accept_body(Some("200"), &big)).contains("over"));
    }

    #[test]
    fn meta_round_trips_and_tolerates_garbage() {
        let mut m = Meta::default();
        m.fetch_failed(5, 10, "x");
        assert_eq!(Meta::decode(Some(&m.encode())), m);
        assert_eq!(Meta::decode(Some(b"junk")), Meta::default());
        assert_eq!(Meta::decode(None), Meta::default());
    }
}
