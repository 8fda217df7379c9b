//! Verification of one token for one provider, in Envoy's order so the same error wins:
//! size, parse, issuer, time, audience, lifetime, key selection, signature.

use crate::config::Provider;
use crate::crypto::signature;
use crate::jwks::key_set::KeySet;
use crate::jwt::error::AuthError;
use crate::jwt::token::{self, decode_segment, Jwt};

/// The signature checks a request may still make, spent across its tokens and their
/// candidate keys: what one request can cost is bounded whatever the tokens and key sets.
#[derive(Debug)]
pub struct CheckBudget {
    pub left: usize,
    /// Set when a token still had candidate keys but no checks were left.
    pub spent: bool,
}

impl CheckBudget {
    pub fn new(checks: usize) -> Self {
        Self {
            left: checks,
            spent: false,
        }
    }

    fn take(&mut self) -> bool {
        if self.left == 0 {
            self.spent = true;
            return false;
        }
        self.left -= 1;
        true
    }
}

/// Everything a verification needs besides the token.
pub struct VerifyInput<'a> {
    pub provider: &'a Provider,
    /// `provider_and_audiences` override; `None` uses the provider's.
    pub audiences: Option<&'a [String]>,
    /// Key sets to search: local first, then remote.
    pub key_sets: &'a [&'a KeySet],
    /// Unix seconds from the host clock.
    pub now: u64,
}

/// jwt_verify_lib compares audiences without scheme and trailing slash.
fn sanitize_audience(a: &str) -> &str {
    let a = a
        .strip_prefix("https://")
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    a.strip_suffix('/').unwrap_or(a)
}

pub fn audience_allowed(allowed: &[String], token_audiences: &[String]) -> bool {
    allowed.is_empty()
        || token_audiences.iter().any(|t| {
            let t = sanitize_audience(t);
            allowed.iter().any(|a| sanitize_audience(a) == t)
        })
}

/// Decodes a token once for every provider that looks at it: the size bound, then the
/// format, as Envoy checks them first.
pub fn decode(token: &str, max_token_size: usize) -> Result<Jwt, AuthError> {
    if token.len() > max_token_size {
        return Err(AuthError::VerificationFail);
    }
    token::parse(token)
}

/// The claim checks, in Envoy's order: issuer (with a `{tenant}` issuer: an allowed tenant),
/// time, audience, lifetime, then the tenant claim. Also run on a
/// cached token, since time and audiences depend on the request.
pub fn check_jwt(input: &VerifyInput, jwt: &Jwt) -> Result<(), AuthError> {
    let p = input.provider;
    let tenant = match (&p.tenancy, &p.issuer) {
        (Some(t), _) => Some(t.check_issuer(jwt)?),
        (None, Some(issuer)) if jwt.iss.as_deref() != Some(issuer.as_str()) => {
            return Err(AuthError::UnknownIssuer)
        }
        (None, _) => None,
    };
    let skew = p.clock_skew_seconds;
    if jwt
        .nbf
        .is_some_and(|nbf| input.now.saturating_add(skew) < nbf)
    {
        return Err(AuthError::NotYetValid);
    }
    if jwt
        .exp
        .is_some_and(|exp| input.now > exp.saturating_add(skew))
    {
        return Err(AuthError::Expired);
    }
    let allowed = input.audiences.unwrap_or(&p.audiences);
    if !audience_allowed(allowed, &jwt.audiences) {
        return Err(AuthError::AudienceNotAllowed);
    }
    if p.require_expiration && jwt.exp.is_none() {
        return Err(AuthError::VerificationFail);
    }
    if let Some(max) = p.max_lifetime_seconds {
        match jwt.exp {
            Some(exp) if exp <= input.now.saturating_add(max) => {}
            _ => return Err(AuthError::VerificationFail),
        }
    }
    if let (Some(t), Some(tenant)) = (&p.tenancy, tenant) {
        t.check_claim(jwt, tenant)?;
    }
    Ok(())
}

/// Full verification of a decoded token for the input's provider, each signature check
/// taken from `budget`: when it runs out the token fails as a bad signature would.
pub fn verify(
    input: &VerifyInput,
    token: &str,
    jwt: &Jwt,
    budget: &mut CheckBudget,
) -> Result<(), AuthError> {
    check_jwt(input, jwt)?;
    if input.key_sets.iter().all(|s| s.is_empty()) {
        // Only a remote set can be empty here: local-only providers are refused at load.
        return Err(AuthError::JwksFetchFail);
    }
    let mut candidates = input
        .key_sets
        .iter()
        .flat_map(|s| s.candidates(jwt.alg, jwt.kid.as_deref()))
        .peekable();
    if candidates.peek().is_none() {
        return Err(AuthError::JwksKidAlgMismatch);
    }
    // `decode` already parsed the token, so it has exactly three segments and a decodable
    // signature: split and decode once for every candidate key.
    let verified = match token.rsplit_once('.') {
        Some((signing_input, sig_b64)) => decode_segment(sig_b64).is_some_and(|sig| {
            candidates.take_while(|_| budget.take()).any(|key| {
                signature::verify(&key.material, jwt.alg, signing_input.as_bytes(), &sig)
            })
        }),
        None => false,
    };
    if verified {
        Ok(())
    } else {
        Err(AuthError::VerificationFail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_normalization_follows_envoy() {
        let allowed = vec!["https://svc2.example.com/".to_string()];
        assert!(audience_allowed(&allowed, &["svc2.example.com".into()]));
        assert!(audience_allowed(
            &allowed,
            &["http://svc2.example.com".into()]
        ));
        assert!(!audience_allowed(&allowed, &["svc1.example.com".into()]));
        assert!(!audience_allowed(&allowed, &[]));
        assert!(audience_allowed(&[], &[]));
    }
}
