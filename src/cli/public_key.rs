//! Public keys as `jwt-authz jwks` reads them: PEM SubjectPublicKeyInfo (`PUBLIC KEY`), PKCS#1
//! (`RSA PUBLIC KEY`) and X.509 certificates (`CERTIFICATE`, the first one's key; the chain
//! goes in `x5c`), turned into the JWK the filter reads.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use x509_cert::der::Encode;
use x509_cert::Certificate;

use crate::cli::mint::{ec_jwk, ed25519_jwk, rsa_jwk};
use crate::crypto::signature::Alg;

/// The PEM label of the first block in `text`, if any.
fn first_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = text.get(start..)?;
    rest.get(..rest.find("-----")?)
}

/// True when `text` holds a public key or a certificate rather than a private key.
pub fn is_public(text: &str) -> bool {
    matches!(
        first_label(text),
        Some("PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE")
    )
}

/// The JWK (no `kid`, no `alg`) of the public key in `text` for `alg`: a `PUBLIC KEY` or
/// `RSA PUBLIC KEY` PEM, or PEM certificates, whose first one's key is taken and whose DER
/// forms are listed in `x5c`.
pub fn jwk(alg: Alg, text: &str) -> Result<Value, String> {
    if first_label(text) == Some("CERTIFICATE") {
        let chain = Certificate::load_pem_chain(text.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        let leaf = chain.first().ok_or("no certificate")?;
        let spki = leaf
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())?;
        let mut x5c = Vec::new();
        for cert in &chain {
            x5c.push(STANDARD.encode(cert.to_der().map_err(|e| e.to_string())?));
        }
        let mut v = from_spki(alg, Key::Der(&spki))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("x5c".into(), json!(x5c));
        }
        return Ok(v);
    }
    from_spki(alg, Key::Pem(text))
}

enum Key<'a> {
    Pem(&'a str),
    Der(&'a [u8]),
}

fn from_spki(alg: Alg, key: Key) -> Result<Value, String> {
    let wrong = |kind: &str, e: jwt_simple::Error| format!("not {kind} public key ({alg:?}): {e}");
    Ok(match alg {
        Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
            // SubjectPublicKeyInfo, or PKCS#1 `RSAPublicKey`.
            let k = match key {
                Key::Pem(p) => RS256PublicKey::from_pem(p),
                Key::Der(d) => RS256PublicKey::from_der(d),
            }
            .map_err(|e| wrong("an RSA", e))?;
            rsa_jwk(k.to_components())
        }
        Alg::ES256 => {
            let k = match key {
                Key::Pem(p) => ES256PublicKey::from_pem(p),
                Key::Der(d) => ES256PublicKey::from_der(d),
            }
            .map_err(|e| wrong("a P-256", e))?;
            ec_jwk("P-256", k.public_key().to_bytes_uncompressed(), 32)
        }
        Alg::ES384 => {
            let k = match key {
                Key::Pem(p) => ES384PublicKey::from_pem(p),
                Key::Der(d) => ES384PublicKey::from_der(d),
            }
            .map_err(|e| wrong("a P-384", e))?;
            ec_jwk("P-384", k.public_key().to_bytes_uncompressed(), 48)
        }
        Alg::EdDSA => {
            let k = match key {
                Key::Pem(p) => Ed25519PublicKey::from_pem(p),
                Key::Der(d) => Ed25519PublicKey::from_der(d),
            }
            .map_err(|e| wrong("an Ed25519", e))?;
            ed25519_jwk(&k.to_bytes())
        }
        Alg::HS256 | Alg::HS384 | Alg::HS512 => {
            return Err(format!("{alg:?} keys are secrets, not public keys"))
        }
    })
}
