//! JWK Set parsing into verification keys. Keys the filter cannot or must not use are skipped
//! with a reason (RFC 7517 §5), never fatal, and never replaced by anything invented.

use serde_json::{Map, Value};

use crate::crypto::rsa::{bit_length, RsaKey};
use crate::crypto::signature::{Alg, KeyMaterial};
use crate::jwt::strict_json;
use crate::jwt::token::decode_segment;

pub struct Jwk {
    pub kid: Option<String>,
    /// When the JWK names its algorithm, the token must use exactly that one.
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`: the key, not the token, decides.
    pub fn fits(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::Rsa(_) => matches!(
                alg,
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
            ),
            KeyMaterial::P256(_) => alg == Alg::ES256,
            KeyMaterial::P384(_) => alg == Alg::ES384,
            KeyMaterial::Ed25519(_) => alg == Alg::EdDSA,
            // RFC 7518 §3.2: the secret must be at least as long as the hash output.
            KeyMaterial::Oct(k) => match alg {
                Alg::HS256 => k.len() >= 32,
                Alg::HS384 => k.len() >= 48,
                Alg::HS512 => k.len() >= 64,
                _ => false,
            },
        }
    }
}

#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

impl KeySet {
    /// Keys that fit the token: same algorithm family (and `alg` when the key names one), and
    /// the same `kid` when both sides carry one, as Envoy selects.
    pub fn candidates<'a>(
        &'a self,
        alg: Alg,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| {
            k.fits(alg)
                && match (kid, k.kid.as_deref()) {
                    (Some(t), Some(kk)) => t == kk,
                    _ => true,
                }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The outcome of loading a set: the usable keys and why each other key was skipped.
pub struct Loaded {
    pub set: KeySet,
    pub skipped: Vec<String>,
}

pub const MAX_KEYS: usize = 64;

/// Parses a JWK Set document. `allow_oct` is true only for local (secret) sets.
pub fn parse(doc: &[u8], allow_oct: bool) -> Result<Loaded, String> {
    let root = strict_json::parse_object(doc)
        .ok_or_else(|| "Jwks is an invalid JSON (or has duplicate members)".to_string())?;
    let keys = match root.get("keys") {
        Some(Value::Array(keys)) => keys,
        Some(_) => return Err("[keys] in Jwks is not an array".into()),
        None => return Err("Jwks does not have [keys] field".into()),
    };
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "Jwks has {} keys, more than {MAX_KEYS}",
            keys.len()
        ));
    }
    let mut set = KeySet::default();
    let mut skipped = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match parse_key(key, allow_oct) {
            Ok(jwk) => set.keys.push(jwk),
            Err(why) => skipped.push(format!("keys[{i}]: {why}")),
        }
    }
    Ok(Loaded { set, skipped })
}

fn str_field<'a>(key: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match key.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("[{name}] is not a string")),
    }
}

fn b64_field(key: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let s = str_field(key, name)?.ok_or_else(|| format!("[{name}] is missing"))?;
    decode_segment(s).ok_or_else(|| format!("[{name}] is not base64url"))
}

fn parse_key(key: &Value, allow_oct: bool) -> Result<Jwk, String> {
    let Value::Object(key) = key else {
        return Err("not a JSON object".into());
    };
    if let Some(u) = str_field(key, "use")? {
        if u != "sig" {
            return Err(format!("[use] is {u:?}, not \"sig\""));
        }
    }
    if let Some(ops) = key.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            return Err("[key_ops] does not include \"verify\"".into());
        }
    }
    let kid = str_field(key, "kid")?.map(str::to_owned);
    let alg = match str_field(key, "alg")? {
        None => None,
        Some(a) => Some(Alg::from_name(a).ok_or_else(|| format!("[alg] {a:?} is not supported"))?),
    };
    let kty = str_field(key, "kty")?.ok_or("[kty] is missing")?;
    let material = match kty {
        "RSA" => rsa(key)?,
        "EC" => ec(key)?,
        "OKP" => okp(key)?,
        "oct" if allow_oct => {
            let k = b64_field(key, "k")?;
            if k.len() < 32 {
                return Err("HMAC secret shorter than 32 bytes".into());
            }
            KeyMaterial::Oct(k)
        }
        "oct" => return Err("symmetric keys are accepted from local_jwks only".into()),
        other => return Err(format!("[kty] {other:?} is not supported")),
    };
    let jwk = Jwk { kid, alg, material };
    if let Some(a) = alg {
        if !jwk.fits(a) {
            return Err(format!("[alg] {a:?} does not fit [kty] {kty}"));
        }
    }
    Ok(jwk)
}

fn strip_leading_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

fn rsa(key: &Map<String, Value>) -> Result<KeyMaterial, String> {
    let n = b64_field(key, "n")?;
    let e = b64_field(key, "e")?;
    // 2048 bits is RFC 7518's floor; 4096 bounds the cost of one verification in the sandbox.
    // Counted in bits (leading zeros ignored), so that 2041..2047-bit moduli are refused too.
    let bits = bit_length(&n);
    if !(2048..=4096).contains(&bits) {
        return Err(format!("RSA modulus of {bits} bits is outside 2048..=4096"));
    }
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Err("RSA modulus is even".into());
    }
    // Every real JWKS uses 65537, and small exponents are where RSA verification bugs live.
    if strip_leading_zeros(&e) != [1, 0, 1] {
        return Err("RSA exponent is not 65537 (AQAB)".into());
    }
    RsaKey::new(&n).map(|k| KeyMaterial::Rsa(Box::new(k)))
}

fn ec(key: &Map<String, Value>) -> Result<KeyMaterial, String> {
    let crv = str_field(key, "crv")?.ok_or("[crv] is missing")?;
    let x = b64_field(key, "x")?;
    let y = b64_field(key, "y")?;
    let size = match crv {
        "P-256" => 32,
        "P-384" => 48,
        other => return Err(format!("[crv] {other:?} is not supported")),
    };
    if x.len() != size || y.len() != size {
        return Err(format!("[x] and [y] must be {size} bytes for {crv}"));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    // Decoding the SEC1 point checks that it lies on the curve.
    if size == 32 {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .map_err(|_| "EC key: the point is not on P-256".to_string())?;
        let coord = |v: &[u8]| {
            <[u8; 32]>::try_from(v)
                .map_err(|_| "[x] and [y] must be 32 bytes for P-256".to_string())
        };
        crate::crypto::ecdsa_p256::P256Key::new(&coord(&x)?, &coord(&y)?)
            .map(|k| KeyMaterial::P256(Box::new(k)))
            .ok_or_else(|| "EC key: the point is not on P-256".to_string())
    } else {
        p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .map_err(|_| "EC key: the point is not on P-384".to_string())?;
        let coord = |v: &[u8]| {
            <[u8; 48]>::try_from(v)
                .map_err(|_| "[x] and [y] must be 48 bytes for P-384".to_string())
        };
        crate::crypto::ecdsa_p384::P384Key::new(&coord(&x)?, &coord(&y)?)
            .map(|k| KeyMaterial::P384(Box::new(k)))
            .ok_or_else(|| "EC key: the point is not on P-384".to_string())
    }
}

fn okp(key: &Map<String, Value>) -> Result<KeyMaterial, String> {
    match str_field(key, "crv")? {
        Some("Ed25519") => {}
        Some(other) => return Err(format!("[crv] {other:?} is not supported")),
        None => return Err("[crv] is missing".into()),
    }
    let x: [u8; 32] = b64_field(key, "x")?
        .try_into()
        .map_err(|_| "[x] must be 32 bytes for Ed25519")?;
    crate::crypto::ed25519::Ed25519Key::new(&x)
        .map(|k| KeyMaterial::Ed25519(Box::new(k)))
        .ok_or_else(|| "Ed25519 key: [x] is not the encoding of a curve point".to_string())
}
