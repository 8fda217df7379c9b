//! The compiled configuration the filter runs on: whole and valid, built only by
//! [`crate::config::parse`].

use crate::config::provider_index::ProviderIndex;
pub use crate::config::schema::ClaimToHeader;
use crate::jwks::key_set::KeySet;
use crate::jwt::tenant::Tenancy;
use crate::oidc::config::OidcProvider;
use crate::policy::authz::Authorization;
use crate::policy::cors::CorsPolicy;
use crate::policy::rules::{Requirement, RuleSet};
use crate::request::extractor::TokenLocation;

pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
/// Above Envoy's default request header limit (`max_request_headers_kb: 60`), so that, as with
/// `jwt_authn`, Envoy's header limits are what bounds a token.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 64 * 1024;
/// Envoy's largest `max_request_headers_kb` (8192).
pub const MAX_MAX_TOKEN_SIZE: usize = 8192 * 1024;
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
    /// The URL is an OpenID Provider's discovery document: it is fetched first, and the key
    /// set from the `jwks_uri` it names, through the same cluster.
    pub discovery: bool,
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

/// One `oidc` entry and the key provider that verifies its ID tokens: a provider with no token
/// locations, appended after the configuration's own, whose remote set comes from discovery.
pub struct OidcLogin {
    pub provider: OidcProvider,
    pub keys: usize,
}

pub struct FilterConfig {
    /// Every counter name starts with `<stat_prefix>.`.
    pub stat_prefix: String,
    /// Set Envoy filter state (`wasm.jwt_authz.*`) on every request the filter decides.
    pub filter_state: bool,
    /// The configuration's providers, then one per `oidc` entry (see [`OidcLogin::keys`]).
    pub providers: Vec<Provider>,
    pub oidc: Vec<OidcLogin>,
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

    /// Whether some rule or policy reads the connection's or the route's attributes: only
    /// then does the host offer them.
    pub fn reads_attributes(&self) -> bool {
        let rules = match &self.routing {
            Routing::Rules(set) => set.uses_route,
            Routing::Everything(_) => false,
        };
        rules
            || self
                .authorization
                .as_ref()
                .is_some_and(|a| a.uses_connection)
    }

    /// The `route_metadata` keys rules name, by slot.
    pub fn route_metadata_keys(&self) -> &[String] {
        match &self.routing {
            Routing::Rules(set) => &set.route_metadata_keys,
            Routing::Everything(_) => &[],
        }
    }
}
