//! The compiled configuration the filter runs on: whole and valid, built only by
//! [`crate::config::parse`].

use crate::config::provider_index::ProviderIndex;
pub use crate::config::schema::ClaimToHeader;
use crate::jwks::key_set::KeySet;
use crate::jwt::tenant::Tenancy;
use crate::policy::authz::Authorization;
use crate::policy::cors::CorsPolicy;
use crate::policy::rules::{Requirement, RuleSet};
use crate::request::extractor::TokenLocation;

pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
pub const DEFAULT_JWT_CACHE_SIZE: usize = 1000;
/// A request rarely carries more than two tokens; each one past this is refused unverified.
pub const DEFAULT_MAX_TOKENS_PER_REQUEST: usize = 4;
/// About 6 ms of V8 with RSA-4096 keys; lets a token without `kid` find its key among 16
/// that fit.
pub const DEFAULT_MAX_SIGNATURE_CHECKS_PER_REQUEST: usize = 16;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_CACHE_DURATION_MS: u64 = 600_000;
pub const DEFAULT_KID_REFETCH_MS: u64 = 30_000;

pub struct RemoteJwks {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    pub cache_duration_ms: u64,
    pub kid_refetch_interval_ms: u64,
}

pub struct Provider {
    pub name: String,
    /// As configured (with its `{tenant}` placeholder, if any).
    pub issuer: Option<String>,
    /// Set when `issuer` has a `{tenant}` placeholder: how a token's `iss` is checked then.
    pub tenancy: Option<Tenancy>,
    pub audiences: Vec<String>,
    pub locations: Vec<TokenLocation>,
    pub forward: bool,
    pub forward_payload_header: Option<String>,
    pub pad_forward_payload_header: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub space_delimited_claims: Vec<String>,
    pub clock_skew_seconds: u64,
    pub require_expiration: bool,
    pub max_lifetime_seconds: Option<u64>,
    pub local_keys: KeySet,
    pub remote: Option<RemoteJwks>,
}

/// Where a request's route sends it: the rule list, or the default when `rules` is absent.
pub enum Routing {
    Rules(Box<RuleSet>),
    /// No `rules` key: every request needs a valid token from any provider.
    Everything(Requirement),
}

pub struct FilterConfig {
    pub providers: Vec<Provider>,
    /// Providers by issuer and by token location, for one parse and lookup per token.
    pub index: ProviderIndex,
    pub routing: Routing,
    pub cors: Option<CorsPolicy>,
    pub authorization: Option<Authorization>,
    pub jwks_unavailable_status: u32,
    pub max_token_size: usize,
    /// Verified tokens remembered per VM; 0 disables the cache.
    pub jwt_cache_size: usize,
    /// Distinct tokens one request may have verified (cached ones included).
    pub max_tokens_per_request: usize,
    /// Signature checks one request may make, over all its tokens and candidate keys.
    pub max_signature_checks_per_request: usize,
    /// Every header the filter sets from a token, lowercased: removed from every request.
    pub sanitized_headers: Vec<String>,
    /// Lines worth logging at load (keys skipped in local sets).
    pub warnings: Vec<String>,
}

impl FilterConfig {
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }
}
