//! ES256 verification (ECDSA over P-256 with SHA-256, RFC 7518 §3.4): `u1*G + u2*Q` by
//! interleaved wNAF in Jacobian coordinates (`weierstrass.rs`) over `p256_field`. Each
//! scalar is cut into pieces, and each piece has its own table of odd multiples of `2^(16j)`
//! times the point (the generator's built once per VM, each key's once per key), so one pass
//! of 16 doublings serves every piece instead of 256 doublings for two whole scalars (see
//! `wnaf.rs`). The `p256` crate still checks the key is on the curve, parses and range-checks `r` and `s`, and does the scalar
//! arithmetic modulo the group order (one inversion per signature). Verification works on
//! public values only, so variable time is fine.

use std::sync::OnceLock;

use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::PrimeField;
use p256::{FieldBytes, Scalar};

use crate::crypto::p256_field::Fe;
use crate::crypto::weierstrass::{self, Affine, Curve, Tables};

/// Window widths: 2^(w-2) odd multiples per table. The generator's tables are shared by
/// every key, so they can be wider: 16 tables of 32 points, 32 KB per VM; 8 KB per key.
const G_WINDOW: u32 = 7;
const KEY_WINDOW: u32 = 5;

/// The generator's coordinates (SEC 2, NIST SP 800-186 G.1.2), big-endian.
const G_X: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
const G_Y: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];
/// The group order n, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The curve, for `weierstrass.rs`.
struct P256;

impl Curve for P256 {
    type F = Fe;
    const N: &'static [u8] = &N;
    const G_WINDOW: u32 = G_WINDOW;
    const KEY_WINDOW: u32 = KEY_WINDOW;

    fn generator_tables() -> &'static [Vec<Affine<Fe>>] {
        static TABLES: OnceLock<Tables<Fe>> = OnceLock::new();
        TABLES.get_or_init(|| weierstrass::generator(&G_X, &G_Y, G_WINDOW))
    }
}

/// A P-256 public key with its tables of odd multiples.
pub struct P256Key {
    tables: Tables<Fe>,
}

impl P256Key {
    /// `x`, `y`: big-endian coordinates. The point must already be known to be on the curve
    /// (the caller decodes it with the `p256` crate, which checks that).
    pub fn new(x: &[u8; 32], y: &[u8; 32]) -> Option<P256Key> {
        let q = Affine {
            x: Fe::from_be_bytes(x)?,
            y: Fe::from_be_bytes(y)?,
        };
        weierstrass::tables(&q, KEY_WINDOW).map(|tables| P256Key { tables })
    }

    /// True when `sig` (`r || s`, 64 bytes) is a valid ES256 signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.check(msg, sig).unwrap_or(false)
    }

    fn check(&self, msg: &[u8], sig: &[u8]) -> Option<bool> {
        // Parses r and s, each in [1, n-1].
        let sig = p256::ecdsa::Signature::from_slice(sig).ok()?;
        let (r, s) = sig.split_scalars();
        let digest = hmac_sha256::Hash::hash(msg);
        let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(digest));
        let s_inv = Option::<Scalar>::from(s.invert_vartime())?;
        let u1: [u8; 32] = (z * s_inv).to_repr().into();
        let u2: [u8; 32] = (*r * s_inv).to_repr().into();
        let r_bytes: [u8; 32] = r.to_repr().into();
        weierstrass::ecdsa_check::<P256>(&self.tables, &u1, &u2, &r_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};

    fn key_of(sk: &SigningKey) -> P256Key {
        let point = sk.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        P256Key::new(
            bytes[1..33].try_into().unwrap(),
            bytes[33..65].try_into().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn agrees_with_the_p256_crate() {
        for i in 1..=24u8 {
            let mut secret = [0x5au8; 32];
            secret[0] = i;
            secret[31] = i.wrapping_mul(37);
            let sk = SigningKey::from_bytes(&secret.into()).unwrap();
            let key = key_of(&sk);
            let msg = format!("header.payload-{i}");
            let sig: Signature = sk.sign(msg.as_bytes());
            let bytes = sig.to_bytes();
            assert!(key.verify(msg.as_bytes(), &bytes), "key {i}");
            assert!(!key.verify(b"other", &bytes));
            let mut flipped = bytes;
            flipped[40] ^= 1;
            assert!(!key.verify(msg.as_bytes(), &flipped));
            // (r, n - s) verifies too: ECDSA signatures are malleable, as in the p256 crate.
            let (r, s) = sig.split_scalars();
            let negated = Signature::from_scalars(r.to_repr(), (-*s).to_repr()).unwrap();
            assert!(key.verify(msg.as_bytes(), &negated.to_bytes()));
            // Another key refuses it.
            let other = key_of(&SigningKey::from_bytes(&[i.wrapping_add(1); 32].into()).unwrap());
            assert!(!other.verify(msg.as_bytes(), &bytes));
        }
    }

    #[test]
    fn refuses_malformed_signatures() {
        let sk = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let key = key_of(&sk);
        assert!(!key.verify(b"m", &[]));
        assert!(!key.verify(b"m", &[0u8; 64]));
        assert!(!key.verify(b"m", &[0xffu8; 64]));
        assert!(!key.verify(b"m", &[1u8; 63]));
    }

    type Jacobian = weierstrass::Jacobian<Fe>;
    fn to_affine_each(p: &[Jacobian]) -> Vec<Option<Affine<Fe>>> {
        weierstrass::to_affine_each(p)
    }

    #[test]
    fn jacobian_addition_agrees_with_mixed_addition() {
        let g = P256::generator_tables()[0][0];
        let jg = Jacobian::from_affine(&g);
        let three = jg.double().add(&jg);
        let five = three.add(&jg.double());
        let via_mixed = three.add_affine(&g).add_affine(&g);
        let [a, b] = [five, via_mixed].map(|p| to_affine_each(&[p])[0].unwrap());
        assert_eq!((a.x, a.y), (b.x, b.y));
        assert!(jg.add(&Jacobian::from_affine(&g.neg())).is_infinity());
        let doubled = to_affine_each(&[jg.add(&jg)])[0].unwrap();
        let direct = to_affine_each(&[jg.double()])[0].unwrap();
        assert_eq!((doubled.x, doubled.y), (direct.x, direct.y));
        assert!(Jacobian::infinity()
            .add(&Jacobian::infinity())
            .is_infinity());
        let left = to_affine_each(&[Jacobian::infinity().add(&three)])[0].unwrap();
        let right = to_affine_each(&[three.add(&Jacobian::infinity())])[0].unwrap();
        let plain = to_affine_each(&[three])[0].unwrap();
        assert_eq!((left.x, left.y), (plain.x, plain.y));
        assert_eq!((right.x, right.y), (plain.x, plain.y));
    }

    #[test]
    fn opposite_and_equal_points_add_correctly() {
        let g = P256::generator_tables()[0][0];
        let jg = Jacobian::from_affine(&g);
        assert!(jg.add_affine(&g.neg()).is_infinity());
        let doubled = to_affine_each(&[jg.add_affine(&g)])[0].unwrap();
        let direct = to_affine_each(&[jg.double()])[0].unwrap();
        assert_eq!((doubled.x, doubled.y), (direct.x, direct.y));
        assert!(Jacobian::infinity().double().is_infinity());
        let from_inf = to_affine_each(&[Jacobian::infinity().add_affine(&g)])[0].unwrap();
        assert_eq!((from_inf.x, from_inf.y), (g.x, g.y));
    }

    #[test]
    fn double_scalar_meets_every_exceptional_addition() {
        weierstrass::tests::double_scalar_agrees::<P256, p256::NistP256>(20);
    }

    #[test]
    fn tables_hold_odd_multiples() {
        weierstrass::tests::tables_hold_odd_multiples::<P256, p256::NistP256>();
    }

    #[test]
    fn large_x_needs_r_below_n() {
        weierstrass::tests::large_x_needs_r_below_n::<P256, p256::NistP256>();
    }
}
