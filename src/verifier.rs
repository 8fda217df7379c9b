//! Verification of one token for one provider, in Envoy's order so the same error wins:
//! size, parse, issuer, time, audience, lifetime, key selection, signature.

use jwt_simple::prelude::*;

use crate::config::Provider;
use crate::jwks::{Jwk, KeyMaterial, KeySet};
use crate::jwt::{self, Alg, Jwt};
use crate::status::AuthError;

/// Everything a verification needs besides the token.
pub struct VerifyInput<'a> {
    pub provider: &'a Provider,
    /// `provider_and_audiences` override; `None` uses the provider's.
    pub audiences: Option<&'a [String]>,
    /// Key sets to search: local first, then remote.
    pub key_sets: &'a [&'a KeySet],
    pub max_token_size: usize,
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

/// Decodes and checks everything but the signature. Cheap; run before any key is touched.
pub fn check_claims(input: &VerifyInput, token: &str) -> Result<Jwt, AuthError> {
    if token.len() > input.max_token_size {
        return Err(AuthError::VerificationFail);
    }
    let jwt = jwt::parse(token)?;
    check_jwt(input, &jwt)?;
    Ok(jwt)
}

/// The claim checks, in Envoy's order: issuer, time, audience, lifetime. Also run on a
/// cached token, since time and audiences depend on the request.
pub fn check_jwt(input: &VerifyInput, jwt: &Jwt) -> Result<(), AuthError> {
    let p = input.provider;
    if let Some(issuer) = &p.issuer {
        if jwt.iss.as_deref() != Some(issuer.as_str()) {
            return Err(AuthError::UnknownIssuer);
        }
    }
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
    Ok(())
}

/// Full verification of `token` for the input's provider.
pub fn verify(input: &VerifyInput, token: &str) -> Result<Jwt, AuthError> {
    let jwt = check_claims(input, token)?;
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
    let options = VerificationOptions {
        // Our own checks above decide time validity; the library repeats them consistently.
        artificial_time: Some(UnixTimeStamp::from_secs(input.now)),
        time_tolerance: Some(Duration::from_secs(input.provider.clock_skew_seconds)),
        accept_future: true,
        max_token_length: Some(input.max_token_size),
        ..Default::default()
    };
    let verified = candidates.any(|key| signature_ok(key, jwt.alg, token, &options));
    drop(candidates);
    if verified {
        Ok(jwt)
    } else {
        Err(AuthError::VerificationFail)
    }
}

fn signature_ok(key: &Jwk, alg: Alg, token: &str, options: &VerificationOptions) -> bool {
    let opts = || Some(options.clone());
    let ok = match (&key.material, alg) {
        (KeyMaterial::Rsa { n, e }, Alg::RS256) => RS256PublicKey::from_components(n, e)
            .and_then(|k| k.verify_token::<NoCustomClaims>(token, opts()))
            .is_ok(),
        (KeyMaterial::Rsa { n, e }, Alg::RS384) => RS384PublicKey::from_components(n, e)
            .and_then(|k| k.verify_token::<NoCustomClaims>(token, opts()))
            .is_ok(),
        (KeyMaterial::Rsa { n, e }, Alg::RS512) => RS512PublicKey::from_components(n, e)
            .and_then(|k| k.verify_token::<NoCustomClaims>(token, opts()))
            .is_ok(),
        (KeyMaterial::Rsa { n, e }, Alg::PS256) => PS256PublicKey::from_components(n, e)
            .and_then(|k| k.verify_token::<NoCustomClaims>(token, opts()))
            .is_ok(),
        (KeyMaterial::Rsa { n, e }, Alg::PS384) => PS384PublicKey::from_components(n, e)
            .and_then(|k| k.verify_token::<NoCustomClaims>(token, opts()))
            .is_ok(),
        (KeyMaterial::Rsa { n, e }, Alg::PS512) => PS512PublicKey::from_components(n, e)
            .and_then(|k| k.verify_token::<NoCustomClaims>(token, opts()))
            .is_ok(),
        (KeyMaterial::P256(k), Alg::ES256) => {
            k.verify_token::<NoCustomClaims>(token, opts()).is_ok()
        }
        (KeyMaterial::P384(k), Alg::ES384) => {
            k.verify_token::<NoCustomClaims>(token, opts()).is_ok()
        }
        (KeyMaterial::Ed25519(k), Alg::EdDSA) => {
            k.verify_token::<NoCustomClaims>(token, opts()).is_ok()
        }
        (KeyMaterial::Oct(k), Alg::HS256) => HS256Key::from_bytes(k)
            .verify_token::<NoCustomClaims>(token, opts())
            .is_ok(),
        (KeyMaterial::Oct(k), Alg::HS384) => HS384Key::from_bytes(k)
            .verify_token::<NoCustomClaims>(token, opts())
            .is_ok(),
        (KeyMaterial::Oct(k), Alg::HS512) => HS512Key::from_bytes(k)
            .verify_token::<NoCustomClaims>(token, opts())
            .is_ok(),
        // `fits` already excludes every other pairing; refuse rather than guess.
        _ => false,
    };
    ok && key.fits(alg)
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
