//! The filter's counters: their names on Envoy's `/stats` (after `jwt_authn`'s where they
//! mean the same) and the set one request moves, kept as a bit set so counting costs no
//! allocation on the hot path.

use crate::jwt::error::AuthError;

/// Every name starts with `<stat_prefix>.`, by default this; Envoy shows plugin metrics under
/// `wasmcustom.` on `/stats` and without that prefix on its Prometheus endpoint.
pub const DEFAULT_PREFIX: &str = "jwt_authz";

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
    /// Allowed, but the decision with the dry-run policies enforced would have denied it.
    DryRunDenied,
}

impl Counter {
    pub const ALL: [Counter; 16] = [
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
        Counter::DryRunDenied,
    ];

    /// The name after the prefix.
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
            Counter::DryRunDenied => "dry_run_denied",
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

/// The reason code of a request the filter decided, as in the counters: `allowed`, the
/// denial reason (`denied_expired`, `denied_authorization`, ...), or
/// `cors_preflight_answered`; `None` for a step that decides nothing yet.
pub fn result_code(tally: Tally) -> Option<&'static str> {
    if tally.contains(Counter::Allowed) {
        return Some(Counter::Allowed.name());
    }
    if tally.contains(Counter::CorsPreflightAnswered) {
        return Some(Counter::CorsPreflightAnswered.name());
    }
    if !tally.contains(Counter::Denied) {
        return None;
    }
    let reason = [
        Counter::DeniedMissing,
        Counter::DeniedInvalid,
        Counter::DeniedExpired,
        Counter::DeniedAudience,
        Counter::DeniedAuthorization,
        Counter::DeniedJwks,
    ]
    .into_iter()
    .find(|c| tally.contains(*c))
    .unwrap_or(Counter::Denied);
    Some(reason.name())
}

/// Full metric name of a per-provider counter (key-set fetches).
pub fn provider_name(prefix: &str, provider: &str, counter: Counter) -> String {
    format!("{prefix}.provider.{provider}.{}", counter.name())
}

/// Per authorization policy: `<prefix>.policy.<name>.<event>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyCounter {
    /// The first matching ALLOW policy of a request authorization let through.
    Allowed,
    /// The DENY policy that refused a request.
    Denied,
    /// A matching AUDIT policy.
    Audit,
    /// A matching dry-run ALLOW policy: it would have allowed.
    DryRunAllowed,
    /// A matching dry-run DENY policy: it would have denied.
    DryRunDenied,
}

impl PolicyCounter {
    pub const ALL: [PolicyCounter; 5] = [
        PolicyCounter::Allowed,
        PolicyCounter::Denied,
        PolicyCounter::Audit,
        PolicyCounter::DryRunAllowed,
        PolicyCounter::DryRunDenied,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyCounter::Allowed => "allowed",
            PolicyCounter::Denied => "denied",
            PolicyCounter::Audit => "audit",
            PolicyCounter::DryRunAllowed => "dry_run_allowed",
            PolicyCounter::DryRunDenied => "dry_run_denied",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Full metric name of an authorization policy's counter.
pub fn policy_name(prefix: &str, policy: &str, counter: PolicyCounter) -> String {
    format!("{prefix}.policy.{policy}.{}", counter.name())
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
pub fn oidc_name(prefix: &str, entry: &str, counter: OidcCounter) -> String {
    format!("{prefix}.oidc.{entry}.{}", counter.name())
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
            provider_name("jwt_authz", "idp", Counter::JwksFetchFailed),
            "jwt_authz.provider.idp.jwks_fetch_failed"
        );
        assert_eq!(
            policy_name("edge", "p", PolicyCounter::DryRunDenied),
            "edge.policy.p.dry_run_denied"
        );
    }

    #[test]
    fn result_codes_name_the_reason() {
        let denied = Tally::default().with(Counter::Denied);
        assert_eq!(
            result_code(denied.with(Counter::DeniedExpired)),
            Some("denied_expired")
        );
        assert_eq!(
            result_code(denied.with(Counter::DeniedAuthorization)),
            Some("denied_authorization")
        );
        assert_eq!(result_code(denied), Some("denied"));
        assert_eq!(
            result_code(
                Tally::default()
                    .with(Counter::Allowed)
                    .with(Counter::JwtCacheHit)
            ),
            Some("allowed")
        );
        assert_eq!(result_code(Tally::default()), None);
    }
}
