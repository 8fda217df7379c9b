//! The filter's counters: their names on Envoy's `/stats` (after `jwt_authn`'s where they
//! mean the same) and the set one request moves, kept as a bit set so counting costs no
//! allocation on the hot path.

use crate::jwt::error::AuthError;

/// Every name starts with this; Envoy shows plugin metrics under `wasmcustom.` on `/stats`
/// and without that prefix on its Prometheus endpoint.
pub const PREFIX: &str = "jwt_authz.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Forwarded upstream after the filter's checks (tokens verified or not required).
    Allowed,
    /// Refused with a local reply (401, 403 or the key-set status).
    Denied,
    DeniedMissing,
    /// Malformed, bad signature, wrong issuer, not yet valid, other claim failures.
    DeniedInvalid,
    DeniedExpired,
    DeniedAudience,
    /// Refused by an authorization policy.
    DeniedAuthorization,
    /// No key could be found for the token: unknown `kid` or key set unavailable.
    DeniedJwks,
    CorsPreflightAnswered,
    CorsOriginRejected,
    JwksFetchSuccess,
    JwksFetchFailed,
    JwtCacheHit,
    JwtCacheMiss,
    /// A request met `max_tokens_per_request` or `max_signature_checks_per_request`.
    LimitReached,
}

impl Counter {
    pub const ALL: [Counter; 15] = [
        Counter::Allowed,
        Counter::Denied,
        Counter::DeniedMissing,
        Counter::DeniedInvalid,
        Counter::DeniedExpired,
        Counter::DeniedAudience,
        Counter::DeniedAuthorization,
        Counter::DeniedJwks,
        Counter::CorsPreflightAnswered,
        Counter::CorsOriginRejected,
        Counter::JwksFetchSuccess,
        Counter::JwksFetchFailed,
        Counter::JwtCacheHit,
        Counter::JwtCacheMiss,
        Counter::LimitReached,
    ];

    /// The name after [`PREFIX`].
    pub fn name(self) -> &'static str {
        match self {
            Counter::Allowed => "allowed",
            Counter::Denied => "denied",
            Counter::DeniedMissing => "denied_missing",
            Counter::DeniedInvalid => "denied_invalid",
            Counter::DeniedExpired => "denied_expired",
            Counter::DeniedAudience => "denied_audience",
            Counter::DeniedAuthorization => "denied_authorization",
            Counter::DeniedJwks => "denied_jwks",
            Counter::CorsPreflightAnswered => "cors_preflight_answered",
            Counter::CorsOriginRejected => "cors_origin_rejected",
            Counter::JwksFetchSuccess => "jwks_fetch_success",
            Counter::JwksFetchFailed => "jwks_fetch_failed",
            Counter::JwtCacheHit => "jwt_cache_hit",
            Counter::JwtCacheMiss => "jwt_cache_miss",
            Counter::LimitReached => "limit_reached",
        }
    }

    /// The position in [`Counter::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason counter for a failed authentication.
    pub fn denied_by(err: AuthError) -> Counter {
        match err {
            AuthError::Missing => Counter::DeniedMissing,
            AuthError::Expired => Counter::DeniedExpired,
            AuthError::AudienceNotAllowed => Counter::DeniedAudience,
            AuthError::JwksKidAlgMismatch | AuthError::JwksFetchFail => Counter::DeniedJwks,
            _ => Counter::DeniedInvalid,
        }
    }
}

/// Full metric name of a per-provider counter (key-set fetches).
pub fn provider_name(provider: &str, counter: Counter) -> String {
    format!("{PREFIX}provider.{provider}.{}", counter.name())
}

/// Per `oidc` entry: `jwt_authz.oidc.<name>.<event>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcCounter {
    /// A navigation sent to the IdP.
    LoginStarted,
    /// A callback that set a session.
    LoginCompleted,
    /// A callback refused (401 or 502 `Login failed`).
    LoginFailed,
    RefreshSuccess,
    /// A refresh refused (the session ends) or unanswered (the session is kept).
    RefreshFailed,
    Logout,
    /// A session cookie was sent but did not open, or had expired.
    SessionRejected,
}

impl OidcCounter {
    pub const ALL: [OidcCounter; 7] = [
        OidcCounter::LoginStarted,
        OidcCounter::LoginCompleted,
        OidcCounter::LoginFailed,
        OidcCounter::RefreshSuccess,
        OidcCounter::RefreshFailed,
        OidcCounter::Logout,
        OidcCounter::SessionRejected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OidcCounter::LoginStarted => "login_started",
            OidcCounter::LoginCompleted => "login_completed",
            OidcCounter::LoginFailed => "login_failed",
            OidcCounter::RefreshSuccess => "refresh_success",
            OidcCounter::RefreshFailed => "refresh_failed",
            OidcCounter::Logout => "logout",
            OidcCounter::SessionRejected => "session_rejected",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Full metric name of an `oidc` entry's counter.
pub fn oidc_name(entry: &str, counter: OidcCounter) -> String {
    format!("{PREFIX}oidc.{entry}.{}", counter.name())
}

/// The counters one request moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally(u32);

impl Tally {
    pub fn add(&mut self, c: Counter) {
        self.0 |= 1 << c.index();
    }

    pub fn with(mut self, c: Counter) -> Self {
        self.add(c);
        self
    }

    pub fn contains(self, c: Counter) -> bool {
        self.0 & (1 << c.index()) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Counter> {
        Counter::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_all() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{}", c.name());
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }

    #[test]
    fn tally_holds_what_was_added() {
        let t = Tally::default()
            .with(Counter::Denied)
            .with(Counter::DeniedJwks)
            .with(Counter::Denied);
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            vec![Counter::Denied, Counter::DeniedJwks]
        );
        assert!(!t.contains(Counter::Allowed));
    }

    #[test]
    fn reasons() {
        assert_eq!(
            Counter::denied_by(AuthError::NotYetValid),
            Counter::DeniedInvalid
        );
        assert_eq!(
            Counter::denied_by(AuthError::JwksFetchFail),
            Counter::DeniedJwks
        );
        assert_eq!(
            provider_name("idp", Counter::JwksFetchFailed),
            "jwt_authz.provider.idp.jwks_fetch_failed"
        );
    }
}
