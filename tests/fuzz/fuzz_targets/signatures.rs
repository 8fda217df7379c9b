//! The filter's own signature arithmetic against the reference crates, on keys derived from
//! the input: a signature the reference makes over the input's message, then possibly
//! altered at an input-chosen byte, must get the same answer from both (`p256`'s and
//! `p384`'s ECDSA verification for ES256 and ES384, `ed25519-dalek`'s `verify_strict` for
//! EdDSA). Bit 2 of the first byte picks the harder keys: ±c·2^(16j)·G for ECDSA, a torsion
//! point added to the key and to R for EdDSA. RSA runs on the committed test keys
//! (tests/fixtures/rsa) against the `rsa` crate's PKCS#1 v1.5 and PSS `verify_digest`, with
//! honest signatures altered, encodings altered and then signed with the private key, and
//! signatures moved out of range.
#![no_main]

use envoy_jwt_authz::crypto::ecdsa_p256::P256Key;
use envoy_jwt_authz::crypto::ecdsa_p384::P384Key;
use envoy_jwt_authz::crypto::ed25519::Ed25519Key;
use envoy_jwt_authz::crypto::rsa::{Hash, RsaKey};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::elliptic_curve::ff::PrimeField;
use rsa::pkcs8::AssociatedOid;
use rsa::sha2::digest::FixedOutputReset;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::signature::{DigestVerifier, RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::BigUint;
use std::sync::OnceLock;

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
            let key = if pick & 4 != 0 {
                small_key::<p256::Scalar>(&secret, 16)
            } else {
                secret.to_vec()
            };
            let Ok(sk) = p256::ecdsa::SigningKey::from_slice(&key) else {
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
        1 if pick & 4 != 0 => torsion_case(pick, &secret, at, flip, msg),
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
            let key = if pick & 4 != 0 {
                small_key::<p384::Scalar>(&secret, 24)
            } else {
                secret48.to_vec()
            };
            let Ok(sk) = p384::ecdsa::SigningKey::from_slice(&key) else {
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
        _ => rsa_case(&secret, at, flip, msg),
    }
});

/// The private key `c * 2^(16j)` or its negative, c < 2^16 and j below the number of 16-bit
/// pieces of the scalar: its public key shares multiples with the generator's tables, which
/// drives the interleaved loop into its exceptional additions (doubling, cancellation).
fn small_key<S>(secret: &[u8; 32], pieces: u8) -> Vec<u8>
where
    S: PrimeField + From<u64> + std::ops::Neg<Output = S>,
{
    let c = S::from(u64::from(u16::from_be_bytes([secret[0], secret[1]])));
    let s = (0..secret[2] % pieces).fold(c, |acc, _| acc * S::from(1 << 16));
    let s = if secret[3] & 1 == 1 { -s } else { s };
    s.to_repr().as_ref().to_vec()
}

/// EdDSA with mixed-order points: the key A = aB + T and the signature's R + T' for torsion
/// points T, T' (8 each), signed by the hazmat signer under that key. It verifies
/// (cofactorless, as `verify_strict`) only when T' cancels k * T.
fn torsion_case(pick: u8, secret: &[u8; 32], at: u8, flip: u8, msg: &[u8]) {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(secret);
    let t_a = EIGHT_TORSION[usize::from(pick >> 3) % 8];
    let t_r = EIGHT_TORSION[usize::from(secret[31]) % 8];
    let a = (EdwardsPoint::mul_base(&esk.scalar) + t_a)
        .compress()
        .to_bytes();
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&a) else {
        return;
    };
    let mut sig = ed25519_dalek::hazmat::raw_sign::<Sha512>(&esk, msg, &vk).to_bytes();
    let Some(r) = sig
        .first_chunk::<32>()
        .and_then(|r| CompressedEdwardsY(*r).decompress())
    else {
        return;
    };
    sig[..32].copy_from_slice(&(r + t_r).compress().to_bytes());
    if let Some(b) = sig.get_mut(usize::from(at) % 64) {
        *b ^= flip;
    }
    let reference = vk
        .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok();
    let ours = Ed25519Key::new(&a).is_some_and(|k| k.verify(msg, &sig));
    assert_eq!(ours, reference);
}

/// A committed test key: modBits 2041, 2049 and 3073 (= 1 mod 8: PSS's EM is one octet
/// shorter than the modulus) and 4096.
struct RsaFixture {
    private: rsa::RsaPrivateKey,
    ours: RsaKey,
}

fn rsa_keys() -> &'static [RsaFixture] {
    static KEYS: OnceLock<Vec<RsaFixture>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            include_str!("../../fixtures/rsa/rsa2041.json"),
            include_str!("../../fixtures/rsa/rsa2049.json"),
            include_str!("../../fixtures/rsa/rsa3073.json"),
            include_str!("../../fixtures/rsa/rsa4096.json"),
        ]
        .iter()
        .map(|doc| {
            use base64::Engine as _;
            let jwk: serde_json::Value = serde_json::from_str(doc).expect("fixture JSON");
            let field = |name: &str| {
                let text = jwk[name].as_str().expect("fixture field");
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .expect("fixture base64url");
                BigUint::from_bytes_be(&bytes)
            };
            let n = field("n");
            let private = rsa::RsaPrivateKey::from_components(
                n.clone(),
                field("e"),
                field("d"),
                vec![field("p"), field("q")],
            )
            .expect("fixture key");
            let ours = RsaKey::new(&n.to_bytes_be()).expect("fixture modulus");
            RsaFixture { private, ours }
        })
        .collect()
    })
}

/// The signer's randomness (PSS salts) drawn from the input, so that runs replay.
struct InputRng<'a>(std::iter::Cycle<std::slice::Iter<'a, u8>>);

impl rsa::rand_core::RngCore for InputRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.0.next().copied().unwrap_or(0);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for InputRng<'_> {}

/// An honest signature by the `rsa` crate: PKCS#1 v1.5, or PSS with `salt_len`.
fn rsa_sign<D>(
    key: &rsa::RsaPrivateKey,
    pss: bool,
    salt_len: usize,
    rng: &mut InputRng,
    msg: &[u8],
) -> Option<Vec<u8>>
where
    D: Digest + FixedOutputReset + AssociatedOid,
{
    if pss {
        rsa::pss::SigningKey::<D>::new_with_salt_len(key.clone(), salt_len)
            .try_sign_with_rng(rng, msg)
            .ok()
            .map(|s| s.to_vec())
    } else {
        rsa::pkcs1v15::SigningKey::<D>::new(key.clone())
            .try_sign(msg)
            .ok()
            .map(|s| s.to_vec())
    }
}

/// The `rsa` crate's answer by its `verify_digest` path, which refuses s >= n (its `Pss`
/// `SignatureScheme` path does not: review F8).
fn rsa_reference<D>(key: &rsa::RsaPublicKey, pss: bool, msg: &[u8], sig: &[u8]) -> bool
where
    D: Digest + FixedOutputReset + AssociatedOid,
{
    let digest = D::new_with_prefix(msg);
    if pss {
        rsa::pss::Signature::try_from(sig).is_ok_and(|s| {
            rsa::pss::VerifyingKey::<D>::new(key.clone())
                .verify_digest(digest, &s)
                .is_ok()
        })
    } else {
        rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| {
            rsa::pkcs1v15::VerifyingKey::<D>::new(key.clone())
                .verify_digest(digest, &s)
                .is_ok()
        })
    }
}

/// `x` as `len` big-endian bytes (longer if it does not fit).
fn be_padded(x: &BigUint, len: usize) -> Vec<u8> {
    let bytes = x.to_bytes_be();
    let mut out = vec![0; len.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    out
}

/// One RSA case: key, hash, scheme and construction from `secret`, then the filter against
/// the `rsa` crate, which must agree except where the crate is lenient (F8).
fn rsa_case(secret: &[u8; 32], at: u8, flip: u8, msg: &[u8]) {
    let keys = rsa_keys();
    let Some(key) = keys.get(usize::from(secret[0]) % keys.len()) else {
        return;
    };
    let public = key.private.to_public_key();
    let (n, e) = (public.n(), public.e());
    let k = public.size();
    let hash = [Hash::Sha256, Hash::Sha384, Hash::Sha512][usize::from(secret[1]) % 3];
    let h_len = [32, 48, 64][usize::from(secret[1]) % 3];
    let pss = secret[2] & 1 == 1;
    // Salt = hLen mostly, else any length the encoding can hold.
    let salt_len = if secret[3] & 3 != 0 {
        h_len
    } else {
        usize::from(secret[4]) % (k - h_len - 1)
    };
    // The candidate, and whether it is an unaltered honest signature with salt = hLen.
    let (sig, honest) = if secret[6] % 4 == 3 {
        // Bytes from the input (no signature to make: private operations are the slow part).
        let sig = msg.iter().rev().cycle().take(k + usize::from(flip % 3) - 1);
        (sig.copied().collect(), false)
    } else {
        let mut rng = InputRng(secret.iter().cycle());
        let honest = match hash {
            Hash::Sha256 => rsa_sign::<Sha256>(&key.private, pss, salt_len, &mut rng, msg),
            Hash::Sha384 => rsa_sign::<Sha384>(&key.private, pss, salt_len, &mut rng, msg),
            Hash::Sha512 => rsa_sign::<Sha512>(&key.private, pss, salt_len, &mut rng, msg),
        };
        let Some(honest) = honest else {
            return;
        };
        let s = BigUint::from_bytes_be(&honest);
        let spot = usize::from(u16::from_be_bytes([secret[5], at]));
        let sig = match secret[6] % 4 {
            // The signature itself, one byte altered (flip = 0: unaltered).
            0 => {
                let mut sig = honest.clone();
                if let Some(b) = sig.get_mut(spot % k) {
                    *b ^= flip;
                }
                sig
            }
            // The encoding altered (its first byte, its last, or any), then signed.
            1 => {
                let mut em = be_padded(&s.modpow(e, n), k);
                let spot = match secret[7] % 4 {
                    0 => 0,
                    1 => k - 1,
                    _ => spot % k,
                };
                if let Some(b) = em.get_mut(spot) {
                    *b ^= flip;
                }
                let c = BigUint::from_bytes_be(&em);
                let Ok(forged) =
                    rsa::hazmat::rsa_decrypt_and_check(&key.private, None::<&mut InputRng>, &c)
                else {
                    return;
                };
                be_padded(&forged, k)
            }
            // Out of range or of length: s + j * n, a leading 00, the last byte cut.
            _ => match secret[7] % 3 {
                0 => be_padded(&(&s + n * BigUint::from(1 + flip % 4)), k),
                1 => [&[0u8][..], &honest].concat(),
                _ => honest.get(..k - 1).unwrap_or_default().to_vec(),
            },
        };
        let unaltered = sig == honest && salt_len == h_len;
        (sig, unaltered)
    };
    let ours = if pss {
        key.ours.verify_pss(hash, msg, &sig)
    } else {
        key.ours.verify_pkcs1(hash, msg, &sig)
    };
    if honest {
        assert!(ours, "an honest signature was refused");
    }
    let reference = match hash {
        Hash::Sha256 => rsa_reference::<Sha256>(&public, pss, msg, &sig),
        Hash::Sha384 => rsa_reference::<Sha384>(&public, pss, msg, &sig),
        Hash::Sha512 => rsa_reference::<Sha512>(&public, pss, msg, &sig),
    };
    let value = BigUint::from_bytes_be(&sig);
    let in_range = sig.len() == k && value < *n;
    assert!(
        in_range || !ours,
        "a signature out of range or of the wrong length verified"
    );
    // RFC 8017 §9.1.2: with modBits = 1 mod 8 the octet above PSS's EM must be zero; the rsa
    // crate ignores it (F8), the filter must refuse.
    let octet_above_em = in_range
        && pss
        && n.bits() % 8 == 1
        && be_padded(&value.modpow(e, n), k)
            .first()
            .is_some_and(|b| *b != 0);
    if octet_above_em {
        assert!(!ours, "a non-zero octet above the PSS encoding verified");
    } else {
        assert_eq!(ours, reference, "the filter and the rsa crate disagree");
    }
}
