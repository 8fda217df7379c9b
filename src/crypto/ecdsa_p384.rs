//! ES384 verification (ECDSA over P-384 with SHA-384, RFC 7518 §3.4): the same
//! double-scalar multiplication as ES256 (`weierstrass.rs`: 24 pieces of 16 bits, a table
//! per piece, one pass of 16 doublings) over `p384_field`. The `p384` crate still checks the
//! key is on the curve, parses and range-checks `r` and `s`, and does the scalar arithmetic
//! modulo the group order. Verification works on public values only, so variable time is
//! fine.

use std::sync::OnceLock;

use p384::elliptic_curve::ops::Reduce;
use p384::elliptic_curve::PrimeField;
use p384::{FieldBytes, Scalar};

use crate::crypto::p384_field::Fe;
use crate::crypto::weierstrass::{self, Affine, Curve, Tables};

/// Window widths: 2^(w-2) odd multiples per table. The generator's: 24 tables of 32 points,
/// 72 KB per VM; a key's: 24 tables of 8 points, 18 KB.
const G_WINDOW: u32 = 7;
const KEY_WINDOW: u32 = 5;

/// The generator's coordinates (SEC 2, NIST SP 800-186 G.1.3), big-endian.
const G_X: [u8; 48] = [
    0xaa, 0x87, 0xca, 0x22, 0xbe, 0x8b, 0x05, 0x37, 0x8e, 0xb1, 0xc7, 0x1e, 0xf3, 0x20, 0xad, 0x74,
    0x6e, 0x1d, 0x3b, 0x62, 0x8b, 0xa7, 0x9b, 0x98, 0x59, 0xf7, 0x41, 0xe0, 0x82, 0x54, 0x2a, 0x38,
    0x55, 0x02, 0xf2, 0x5d, 0xbf, 0x55, 0x29, 0x6c, 0x3a, 0x54, 0x5e, 0x38, 0x72, 0x76, 0x0a, 0xb7,
];
const G_Y: [u8; 48] = [
    0x36, 0x17, 0xde, 0x4a, 0x96, 0x26, 0x2c, 0x6f, 0x5d, 0x9e, 0x98, 0xbf, 0x92, 0x92, 0xdc, 0x29,
    0xf8, 0xf4, 0x1d, 0xbd, 0x28, 0x9a, 0x14, 0x7c, 0xe9, 0xda, 0x31, 0x13, 0xb5, 0xf0, 0xb8, 0xc0,
    0x0a, 0x60, 0xb1, 0xce, 0x1d, 0x7e, 0x81, 0x9d, 0x7a, 0x43, 0x1d, 0x7c, 0x90, 0xea, 0x0e, 0x5f,
];
/// The group order n, big-endian.
const N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// The curve, for `weierstrass.rs`.
struct P384;

impl Curve for P384 {
    type F = Fe;
    const N: &'static [u8] = &N;
    const G_WINDOW: u32 = G_WINDOW;
    const KEY_WINDOW: u32 = KEY_WINDOW;

    fn generator_tables() -> &'static [Vec<Affine<Fe>>] {
        static TABLES: OnceLock<Tables<Fe>> = OnceLock::new();
        TABLES.get_or_init(|| weierstrass::generator(&G_X, &G_Y, G_WINDOW))
    }
}

/// A P-384 public key with its tables of odd multiples.
pub struct P384Key {
    tables: Tables<Fe>,
}

impl P384Key {
    /// `x`, `y`: big-endian coordinates. The point must already be known to be on the curve
    /// (the caller decodes it with the `p384` crate, which checks that).
    pub fn new(x: &[u8; 48], y: &[u8; 48]) -> Option<P384Key> {
        let q = Affine {
            x: Fe::from_be_bytes(x)?,
            y: Fe::from_be_bytes(y)?,
        };
        weierstrass::tables(&q, KEY_WINDOW).map(|tables| P384Key { tables })
    }

    /// True when `sig` (`r || s`, 96 bytes) is a valid ES384 signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.check(msg, sig).unwrap_or(false)
    }

    fn check(&self, msg: &[u8], sig: &[u8]) -> Option<bool> {
        // Parses r and s, each in [1, n-1].
        let sig = p384::ecdsa::Signature::from_slice(sig).ok()?;
        let (r, s) = sig.split_scalars();
        let digest = hmac_sha512::sha384::Hash::hash(msg);
        let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(digest));
        let s_inv = Option::<Scalar>::from(s.invert_vartime())?;
        let u1: [u8; 48] = (z * s_inv).to_repr().into();
        let u2: [u8; 48] = (*r * s_inv).to_repr().into();
        let r_bytes: [u8; 48] = r.to_repr().into();
        weierstrass::ecdsa_check::<P384>(&self.tables, &u1, &u2, &r_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::weierstrass::Field as _;
    use p384::ecdsa::signature::Signer;
    use p384::ecdsa::{Signature, SigningKey};

    fn key_of(sk: &SigningKey) -> P384Key {
        let point = sk.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        P384Key::new(
            bytes[1..49].try_into().unwrap(),
            bytes[49..97].try_into().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn agrees_with_the_p384_crate() {
        for i in 1..=12u8 {
            let mut secret = [0x5au8; 48];
            secret[0] = i;
            secret[47] = i.wrapping_mul(37);
            let sk = SigningKey::from_bytes(&secret.into()).unwrap();
            let key = key_of(&sk);
            let msg = format!("header.payload-{i}");
            let sig: Signature = sk.sign(msg.as_bytes());
            let bytes = sig.to_bytes();
            assert!(key.verify(msg.as_bytes(), &bytes), "key {i}");
            assert!(!key.verify(b"other", &bytes));
            let mut flipped = bytes;
            flipped[60] ^= 1;
            assert!(!key.verify(msg.as_bytes(), &flipped));
            // (r, n - s) verifies too: ECDSA signatures are malleable, as in the p384 crate.
            let (r, s) = sig.split_scalars();
            let negated = Signature::from_scalars(r.to_repr(), (-*s).to_repr()).unwrap();
            assert!(key.verify(msg.as_bytes(), &negated.to_bytes()));
            // Another key refuses it.
            let other = key_of(&SigningKey::from_bytes(&[i.wrapping_add(1); 48].into()).unwrap());
            assert!(!other.verify(msg.as_bytes(), &bytes));
        }
    }

    #[test]
    fn refuses_malformed_signatures() {
        let sk = SigningKey::from_bytes(&[7u8; 48].into()).unwrap();
        let key = key_of(&sk);
        assert!(!key.verify(b"m", &[]));
        assert!(!key.verify(b"m", &[0u8; 96]));
        assert!(!key.verify(b"m", &[0xffu8; 96]));
        assert!(!key.verify(b"m", &[1u8; 95]));
    }

    #[test]
    fn the_generator_is_on_the_curve() {
        // y^2 = x^3 - 3x + b (b from SEC 2).
        let b = Fe::from_be_bytes(&[
            0xb3, 0x31, 0x2f, 0xa7, 0xe2, 0x3e, 0xe7, 0xe4, 0x98, 0x8e, 0x05, 0x6b, 0xe3, 0xf8,
            0x2d, 0x19, 0x18, 0x1d, 0x9c, 0x6e, 0xfe, 0x81, 0x41, 0x12, 0x03, 0x14, 0x08, 0x8f,
            0x50, 0x13, 0x87, 0x5a, 0xc6, 0x56, 0x39, 0x8d, 0x8a, 0x2e, 0xd1, 0x9d, 0x2a, 0x85,
            0xc8, 0xed, 0xd3, 0xec, 0x2a, 0xef,
        ])
        .unwrap();
        let (x, y) = (
            Fe::from_be_bytes(&G_X).unwrap(),
            Fe::from_be_bytes(&G_Y).unwrap(),
        );
        let three_x = x.double().add(&x);
        assert_eq!(y.square(), x.square().mul(&x).sub(&three_x).add(&b));
        assert_eq!(P384::generator_tables().len(), 24);
    }

    #[test]
    fn double_scalar_meets_every_exceptional_addition() {
        weierstrass::tests::double_scalar_agrees::<P384, p384::NistP384>(20);
    }

    #[test]
    fn tables_hold_odd_multiples() {
        weierstrass::tests::tables_hold_odd_multiples::<P384, p384::NistP384>();
    }

    #[test]
    fn large_x_needs_r_below_n() {
        weierstrass::tests::large_x_needs_r_below_n::<P384, p384::NistP384>();
    }
}
