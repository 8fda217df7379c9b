//! The filter's own signature arithmetic against the reference crates, on keys derived from
//! the input: a signature the reference makes over the input's message, then possibly
//! altered at an input-chosen byte, must get the same answer from both (`p256`'s and
//! `p384`'s ECDSA verification for ES256 and ES384, `ed25519-dalek`'s `verify_strict` for
//! EdDSA). RSA moduli and
//! signatures straight from the input must never panic.
#![no_main]

use ed25519_dalek::Signer as _;
use envoy_jwt_authz::crypto::ecdsa_p256::P256Key;
use envoy_jwt_authz::crypto::ecdsa_p384::P384Key;
use envoy_jwt_authz::crypto::ed25519::Ed25519Key;
use envoy_jwt_authz::crypto::rsa::{Hash, RsaKey};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::{Signer as _, Verifier as _};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some((&secret, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let Some((&[at, flip], msg)) = rest.split_first_chunk::<2>() else {
        return;
    };
    match pick % 4 {
        0 => {
            let Ok(sk) = p256::ecdsa::SigningKey::from_slice(&secret) else {
                return;
            };
            let point = sk.verifying_key().to_sec1_point(false);
            let bytes = point.as_bytes();
            let (Some(x), Some(y)) = (bytes.get(1..33), bytes.get(33..65)) else {
                return;
            };
            let (Ok(x), Ok(y)) = (<&[u8; 32]>::try_from(x), <&[u8; 32]>::try_from(y)) else {
                return;
            };
            let ours = P256Key::new(x, y).expect("a valid public key");
            let sig: p256::ecdsa::Signature = sk.sign(msg);
            let mut sig = sig.to_bytes().to_vec();
            if let Some(b) = sig.get_mut(usize::from(at) % 64) {
                *b ^= flip;
            }
            let reference = p256::ecdsa::Signature::from_slice(&sig)
                .is_ok_and(|s| sk.verifying_key().verify(msg, &s).is_ok());
            assert_eq!(ours.verify(msg, &sig), reference);
        }
        1 => {
            let sk = ed25519_dalek::SigningKey::from_bytes(&secret);
            let public = sk.verifying_key().to_bytes();
            let ours = Ed25519Key::new(&public).expect("a valid public key");
            let mut sig = sk.sign(msg).to_bytes();
            if let Some(b) = sig.get_mut(usize::from(at) % 64) {
                *b ^= flip;
            }
            let reference = sk
                .verifying_key()
                .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok();
            assert_eq!(ours.verify(msg, &sig), reference);
        }
        2 => {
            // A 48-byte secret from the 32 the input gives.
            let mut secret48 = [0u8; 48];
            for (d, s) in secret48.iter_mut().zip(secret.iter().cycle()) {
                *d = *s;
            }
            let Ok(sk) = p384::ecdsa::SigningKey::from_slice(&secret48) else {
                return;
            };
            let point = sk.verifying_key().to_sec1_point(false);
            let bytes = point.as_bytes();
            let (Some(x), Some(y)) = (bytes.get(1..49), bytes.get(49..97)) else {
                return;
            };
            let (Ok(x), Ok(y)) = (<&[u8; 48]>::try_from(x), <&[u8; 48]>::try_from(y)) else {
                return;
            };
            let ours = P384Key::new(x, y).expect("a valid public key");
            let sig: p384::ecdsa::Signature = sk.sign(msg);
            let mut sig = sig.to_bytes().to_vec();
            if let Some(b) = sig.get_mut(usize::from(at) % 96) {
                *b ^= flip;
            }
            let reference = p384::ecdsa::Signature::from_slice(&sig)
                .is_ok_and(|s| sk.verifying_key().verify(msg, &s).is_ok());
            assert_eq!(ours.verify(msg, &sig), reference);
        }
        _ => {
            // A 2048-bit modulus and a signature from the input (odd, top bit set).
            let mut n = [0x5au8; 256];
            for (d, s) in n.iter_mut().zip(msg.iter().cycle()) {
                *d = *s;
            }
            n[0] |= 0x80;
            n[255] |= 1;
            if let Ok(key) = RsaKey::new(&n) {
                let sig: Vec<u8> = msg.iter().rev().cycle().take(256).copied().collect();
                let _ = key.verify_pkcs1(Hash::Sha256, msg, &sig);
                let _ = key.verify_pss(Hash::Sha256, msg, &sig);
            }
        }
    }
});
