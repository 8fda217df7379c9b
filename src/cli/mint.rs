//! Native-only key and token tooling for the `jwt-authz` command, the demo and the tests:
//! generate keys, publish them as a JWK Set, sign tokens, and forge hostile ones.
//! Not compiled into the filter.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

use crate::crypto::signature::Alg;

/// A private key able to sign for one algorithm.
pub enum Signer {
    RS256(RS256KeyPair),
    RS384(RS384KeyPair),
    RS512(RS512KeyPair),
    PS256(PS256KeyPair),
    ES256(ES256KeyPair),
    ES384(ES384KeyPair),
    EdDSA(Ed25519KeyPair),
    HS256(Vec<u8>),
    HS384(Vec<u8>),
    HS512(Vec<u8>),
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Signer {
    /// A fresh key for `alg` (RSA keys are 2048 bits).
    pub fn generate(alg: Alg) -> Result<Self, String> {
        Ok(match alg {
            Alg::RS256 => Self::RS256(RS256KeyPair::generate(2048).map_err(err)?),
            Alg::RS384 => Self::RS384(RS384KeyPair::generate(2048).map_err(err)?),
            Alg::RS512 => Self::RS512(RS512KeyPair::generate(2048).map_err(err)?),
            Alg::PS256 => Self::PS256(PS256KeyPair::generate(2048).map_err(err)?),
            Alg::ES256 => Self::ES256(ES256KeyPair::generate()),
            Alg::ES384 => Self::ES384(ES384KeyPair::generate()),
            Alg::EdDSA => Self::EdDSA(Ed25519KeyPair::generate()),
            Alg::HS256 => Self::HS256(HS256Key::generate().to_bytes()),
            // As long as the hash output: the shortest secret the filter (RFC 7518 §3.2)
            // accepts for the algorithm.
            Alg::HS384 => Self::HS384(random_secret(48)?),
            Alg::HS512 => Self::HS512(random_secret(64)?),
            other => return Err(format!("generating {other:?} keys is not supported")),
        })
    }

    /// Loads a PEM private key (an HS256/384/512 "PEM" is the raw secret, base64url).
    pub fn from_pem(alg: Alg, pem: &str) -> Result<Self, String> {
        Ok(match alg {
            Alg::RS256 => Self::RS256(RS256KeyPair::from_pem(pem).map_err(err)?),
            Alg::RS384 => Self::RS384(RS384KeyPair::from_pem(pem).map_err(err)?),
            Alg::RS512 => Self::RS512(RS512KeyPair::from_pem(pem).map_err(err)?),
            Alg::PS256 => Self::PS256(PS256KeyPair::from_pem(pem).map_err(err)?),
            Alg::ES256 => Self::ES256(ES256KeyPair::from_pem(pem).map_err(err)?),
            Alg::ES384 => Self::ES384(ES384KeyPair::from_pem(pem).map_err(err)?),
            Alg::EdDSA => Self::EdDSA(Ed25519KeyPair::from_pem(pem).map_err(err)?),
            Alg::HS256 => Self::HS256(URL_SAFE_NO_PAD.decode(pem.trim()).map_err(err)?),
            Alg::HS384 => Self::HS384(URL_SAFE_NO_PAD.decode(pem.trim()).map_err(err)?),
            Alg::HS512 => Self::HS512(URL_SAFE_NO_PAD.decode(pem.trim()).map_err(err)?),
            other => return Err(format!("{other:?} keys are not supported")),
        })
    }

    pub fn to_pem(&self) -> Result<String, String> {
        Ok(match self {
            Self::RS256(k) => k.to_pem().map_err(err)?,
            Self::RS384(k) => k.to_pem().map_err(err)?,
            Self::RS512(k) => k.to_pem().map_err(err)?,
            Self::PS256(k) => k.to_pem().map_err(err)?,
            Self::ES256(k) => k.to_pem().map_err(err)?,
            Self::ES384(k) => k.to_pem().map_err(err)?,
            Self::EdDSA(k) => k.to_pem(),
            Self::HS256(k) | Self::HS384(k) | Self::HS512(k) => URL_SAFE_NO_PAD.encode(k),
        })
    }

    /// The public JWK (the secret itself for HS256/384/512), with `kid` and `alg` when given.
    pub fn jwk(&self, kid: Option<&str>, with_alg: bool) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let rsa = rsa_jwk;
        let ec = ec_jwk;
        let (mut v, alg) = match self {
            Self::RS256(k) => (rsa(k.public_key().to_components()), "RS256"),
            Self::RS384(k) => (rsa(k.public_key().to_components()), "RS384"),
            Self::RS512(k) => (rsa(k.public_key().to_components()), "RS512"),
            Self::PS256(k) => (rsa(k.public_key().to_components()), "PS256"),
            Self::ES256(k) => (
                ec(
                    "P-256",
                    k.public_key().public_key().to_bytes_uncompressed(),
                    32,
                ),
                "ES256",
            ),
            Self::ES384(k) => (
                ec(
                    "P-384",
                    k.public_key().public_key().to_bytes_uncompressed(),
                    48,
                ),
                "ES384",
            ),
            Self::EdDSA(k) => (ed25519_jwk(&k.public_key().to_bytes()), "EdDSA"),
            Self::HS256(k) => (json!({"kty":"oct","k":b64(k)}), "HS256"),
            Self::HS384(k) => (json!({"kty":"oct","k":b64(k)}), "HS384"),
            Self::HS512(k) => (json!({"kty":"oct","k":b64(k)}), "HS512"),
        };
        if let (Some(obj), Some(kid)) = (v.as_object_mut(), kid) {
            obj.insert("kid".into(), json!(kid));
        }
        if let (Some(obj), true) = (v.as_object_mut(), with_alg) {
            obj.insert("alg".into(), json!(alg));
        }
        v
    }

    /// Signs `payload` (any JSON object; `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` are
    /// carried as given) with header `{"alg", "typ":"JWT", "kid"}`.
    pub fn sign(&self, kid: Option<&str>, payload: &Map<String, Value>) -> Result<String, String> {
        let claims = to_claims(payload)?;
        macro_rules! sign_with {
            ($owned:expr) => {{
                let key = $owned;
                let key = match kid {
                    Some(kid) => key.with_key_id(kid),
                    None => key,
                };
                key.sign(claims).map_err(err)
            }};
        }
        match self {
            Self::RS256(k) => sign_with!(k.clone()),
            Self::RS384(k) => sign_with!(k.clone()),
            Self::RS512(k) => sign_with!(k.clone()),
            Self::PS256(k) => sign_with!(k.clone()),
            // The EC key pairs are not Clone: rebuild them from their scalar.
            Self::ES256(k) => sign_with!(ES256KeyPair::from_bytes(&k.to_bytes()).map_err(err)?),
            Self::ES384(k) => sign_with!(ES384KeyPair::from_bytes(&k.to_bytes()).map_err(err)?),
            Self::EdDSA(k) => sign_with!(Ed25519KeyPair::from_bytes(&k.to_bytes()).map_err(err)?),
            Self::HS256(secret) => Ok(hmac_token(Alg::HS256, secret, kid, payload)),
            Self::HS384(secret) => Ok(hmac_token(Alg::HS384, secret, kid, payload)),
            Self::HS512(secret) => Ok(hmac_token(Alg::HS512, secret, kid, payload)),
        }
    }
}

/// The JWK of an RSA public key (no `kid`, no `alg`).
pub fn rsa_jwk(c: RSAPublicKeyComponents) -> Value {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    json!({"kty":"RSA","n":b64(&c.n),"e":b64(&c.e)})
}

/// The JWK of an EC public key given as an uncompressed SEC1 point of `size`-byte coordinates.
pub fn ec_jwk(crv: &str, point: Vec<u8>, size: usize) -> Value {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let x = point.get(1..1 + size).unwrap_or_default();
    let y = point.get(1 + size..).unwrap_or_default();
    json!({"kty":"EC","crv":crv,"x":b64(x),"y":b64(y)})
}

/// The JWK of an Ed25519 public key.
pub fn ed25519_jwk(x: &[u8]) -> Value {
    json!({"kty":"OKP","crv":"Ed25519","x":URL_SAFE_NO_PAD.encode(x)})
}

/// A token signed with HMAC: the header `{"alg", "typ":"JWT", "kid"}`.
fn hmac_token(alg: Alg, secret: &[u8], kid: Option<&str>, payload: &Map<String, Value>) -> String {
    let mut header = json!({"alg": format!("{alg:?}"), "typ": "JWT"});
    if let (Some(h), Some(kid)) = (header.as_object_mut(), kid) {
        h.insert("kid".into(), json!(kid));
    }
    hmac_raw(
        alg,
        secret,
        &header.to_string(),
        &Value::Object(payload.clone()).to_string(),
    )
}

fn random_secret(len: usize) -> Result<Vec<u8>, String> {
    let mut secret = vec![0; len];
    getrandom::fill(&mut secret).map_err(err)?;
    Ok(secret)
}

fn to_claims(payload: &Map<String, Value>) -> Result<JWTClaims<Map<String, Value>>, String> {
    let mut custom = payload.clone();
    let mut take_time = |name: &str| -> Result<Option<UnixTimeStamp>, String> {
        match custom.remove(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|s| Some(UnixTimeStamp::from_secs(s)))
                .ok_or_else(|| format!("{name} must be a whole number of seconds")),
        }
    };
    let issued_at = take_time("iat")?;
    let expires_at = take_time("exp")?;
    let invalid_before = take_time("nbf")?;
    let mut take_str = |name: &str| {
        custom
            .remove(name)
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let issuer = take_str("iss");
    let subject = take_str("sub");
    let jwt_id = take_str("jti");
    let audiences = match custom.remove("aud") {
        None => None,
        Some(Value::String(a)) => Some(Audiences::AsString(a)),
        Some(Value::Array(list)) => Some(Audiences::AsSet(
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect::<HashSet<String>>(),
        )),
        Some(_) => return Err("aud must be a string or a list of strings".into()),
    };
    Ok(JWTClaims {
        issued_at,
        expires_at,
        invalid_before,
        issuer,
        subject,
        audiences,
        jwt_id,
        nonce: None,
        custom,
    })
}

/// A token with exactly this header and payload, HMAC-SHA256 signed with `secret`: the forge
/// for hostile headers (`crit`, key confusion) that no honest library would produce.
pub fn hs256_raw(secret: &[u8], header_json: &str, payload_json: &str) -> String {
    hmac_raw(Alg::HS256, secret, header_json, payload_json)
}

/// [`hs256_raw`] with HMAC-SHA384 or HMAC-SHA512 for `HS384`/`HS512` (SHA-256 otherwise).
fn hmac_raw(alg: Alg, secret: &[u8], header_json: &str, payload_json: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(payload_json)
    );
    let input = signing_input.as_bytes();
    let mac = match alg {
        Alg::HS384 => URL_SAFE_NO_PAD.encode(hmac_sha512::sha384::HMAC::mac(input, secret)),
        Alg::HS512 => URL_SAFE_NO_PAD.encode(hmac_sha512::HMAC::mac(input, secret)),
        _ => URL_SAFE_NO_PAD.encode(hmac_sha256::HMAC::mac(input, secret)),
    };
    format!("{signing_input}.{mac}")
}

/// An unsigned token (`alg: none` style): header and payload with the given signature text.
pub fn unsigned(header_json: &str, payload_json: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(payload_json)
    )
}
