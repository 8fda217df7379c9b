//! JWS signature checks over the parsed key material: the key (its type, and its `alg` when
//! the JWK names one) has already decided the algorithm family; this runs the one primitive
//! that fits. Pure-Rust primitives, called directly (`crate::crypto::rsa`, `crate::crypto::ecdsa_p256`,
//! `crate::crypto::ecdsa_p384`, `crate::crypto::ed25519`, `hmac-sha256`/`hmac-sha512`): the claims are already checked by the
//! verifier, so nothing is parsed twice, and the module carries one copy of each primitive.

use crate::crypto::rsa::Hash;

/// Algorithms the filter can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            _ => return None,
        })
    }
}

/// Key material, parsed once when the set is loaded.
pub enum KeyMaterial {
    Rsa(Box<crate::crypto::rsa::RsaKey>),
    P256(Box<crate::crypto::ecdsa_p256::P256Key>),
    P384(Box<crate::crypto::ecdsa_p384::P384Key>),
    Ed25519(Box<crate::crypto::ed25519::Ed25519Key>),
    /// HMAC secret: only from `local_jwks`, since a fetched key is public by definition.
    Oct(Vec<u8>),
}

/// Compares without an early exit, so a forger learns nothing from timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when `sig` is a valid `alg` signature of `signing_input` under `key`.
pub fn verify(key: &KeyMaterial, alg: Alg, signing_input: &[u8], sig: &[u8]) -> bool {
    let msg = signing_input;
    match (key, alg) {
        (KeyMaterial::Rsa(k), Alg::RS256) => k.verify_pkcs1(Hash::Sha256, msg, sig),
        (KeyMaterial::Rsa(k), Alg::RS384) => k.verify_pkcs1(Hash::Sha384, msg, sig),
        (KeyMaterial::Rsa(k), Alg::RS512) => k.verify_pkcs1(Hash::Sha512, msg, sig),
        (KeyMaterial::Rsa(k), Alg::PS256) => k.verify_pss(Hash::Sha256, msg, sig),
        (KeyMaterial::Rsa(k), Alg::PS384) => k.verify_pss(Hash::Sha384, msg, sig),
        (KeyMaterial::Rsa(k), Alg::PS512) => k.verify_pss(Hash::Sha512, msg, sig),
        // ECDSA signatures in JWS are r || s (P1363), never DER.
        (KeyMaterial::P256(k), Alg::ES256) => k.verify(msg, sig),
        (KeyMaterial::P384(k), Alg::ES384) => k.verify(msg, sig),
        // Strict: also refuses small-order keys and R points, which admit forgeries that
        // verify under many messages.
        (KeyMaterial::Ed25519(k), Alg::EdDSA) => k.verify(msg, sig),
        (KeyMaterial::Oct(k), Alg::HS256) => constant_time_eq(&hmac_sha256::HMAC::mac(msg, k), sig),
        (KeyMaterial::Oct(k), Alg::HS384) => {
            constant_time_eq(&hmac_sha512::sha384::HMAC::mac(msg, k), sig)
        }
        (KeyMaterial::Oct(k), Alg::HS512) => constant_time_eq(&hmac_sha512::HMAC::mac(msg, k), sig),
        // Any other pairing is a key that does not fit the token: refuse, never guess.
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_mismatched_pairs() {
        let key = KeyMaterial::Oct(vec![7u8; 32]);
        let mac = hmac_sha256::HMAC::mac(b"a.b", [7u8; 32]);
        assert!(verify(&key, Alg::HS256, b"a.b", &mac));
        assert!(!verify(&key, Alg::HS256, b"a.c", &mac));
        assert!(!verify(&key, Alg::HS256, b"a.b", &mac[..31]));
        assert!(!verify(&key, Alg::HS384, b"a.b", &mac));
        assert!(!verify(&key, Alg::RS256, b"a.b", &mac));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b"ab"));
    }
}
