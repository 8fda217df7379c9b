//! EdDSA verification (Ed25519, RFC 8032, as `ed25519-dalek`'s `verify_strict`) on
//! curve25519-dalek's point arithmetic. `[s]B - [k]A` is computed as for ES256
//! (`ecdsa_p256.rs`): each scalar cut into pieces, each piece with a table of odd multiples
//! of `2^(16j)` times its point (the base point's once per VM, each key's once per key), so
//! one pass of 16 doublings serves every piece instead of about 253 (see `wnaf.rs`).
//! Verification works on public values only, so variable time is fine.

use std::sync::OnceLock;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;

use crate::crypto::wnaf::{self, PIECES, PIECE_BITS};

/// Window widths (2^(w-2) odd multiples per table): 8 for the base point (16 tables of 64
/// points, 160 KB per VM) and 6 for a key (40 KB per key) take one addition in eight off an
/// uncached request against 7 and 5 (63 -> 56 µs in V8); a key width of 7 gained 1.5 µs in
/// Envoy for twice the memory.
const B_WINDOW: u32 = 8;
const KEY_WINDOW: u32 = 6;

/// For each piece j, the odd multiples `P, 3P, 5P, ...` of `2^(16j)` times a point.
type Tables = Vec<Vec<EdwardsPoint>>;

/// `2^n * p`. Three doublings at a time by the cofactor multiplication (a run of projective
/// doublings in curve25519-dalek, which keeps its general `mul_by_pow_2` private), the rest
/// by addition.
fn double_times(p: &EdwardsPoint, n: u32) -> EdwardsPoint {
    let mut acc = *p;
    for _ in 0..n / 3 {
        acc = acc.mul_by_cofactor();
    }
    for _ in 0..n % 3 {
        acc = acc + acc;
    }
    acc
}

fn tables(p: &EdwardsPoint, w: u32) -> Tables {
    let mut out = Vec::with_capacity(PIECES);
    let mut base = *p;
    for j in 0..PIECES {
        if j > 0 {
            base = double_times(&base, PIECE_BITS as u32);
        }
        let two = base + base;
        let mut table = Vec::with_capacity(1 << (w - 2));
        let mut acc = base;
        for _ in 0..1usize << (w - 2) {
            table.push(acc);
            acc += two;
        }
        out.push(table);
    }
    out
}

/// A scalar's big-endian bytes (curve25519-dalek's are little-endian).
fn big_endian(scalar: &Scalar) -> [u8; 32] {
    let mut be = scalar.to_bytes();
    be.reverse();
    be
}

/// The canonical encodings of the eight points of small order: an `R` among them is refused
/// (a byte comparison, where testing the computed point would cost three doublings).
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    ENCODINGS.get_or_init(|| EIGHT_TORSION.map(|p| p.compress().to_bytes()))
}

fn base_tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| tables(&ED25519_BASEPOINT_POINT, B_WINDOW))
}

/// An Ed25519 public key: its encoding (hashed into every challenge), whether it has small
/// order (such keys verify nothing, as in `verify_strict`), and the tables of `-A`.
pub struct Ed25519Key {
    encoded: [u8; 32],
    weak: bool,
    minus_a: Tables,
}

impl Ed25519Key {
    /// None when `x` is not the encoding of a curve point.
    pub fn new(x: &[u8; 32]) -> Option<Ed25519Key> {
        let a = CompressedEdwardsY(*x).decompress()?;
        Some(Ed25519Key {
            encoded: *x,
            weak: a.is_small_order(),
            minus_a: tables(&-a, KEY_WINDOW),
        })
    }

    /// True when `sig` (`R || s`, 64 bytes) is a valid signature of `msg`: `s` below the group
    /// order, `R` the canonical encoding of `[s]B - [k]A` with `k = SHA-512(R || A || msg)`,
    /// and neither `A` nor `R` of small order.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.check(msg, sig).unwrap_or(false)
    }

    fn check(&self, msg: &[u8], sig: &[u8]) -> Option<bool> {
        let (r, s) = sig.split_at_checked(32)?;
        let r: [u8; 32] = r.try_into().ok()?;
        let s: [u8; 32] = s.try_into().ok()?;
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s))?;
        if self.weak {
            return Some(false);
        }
        let mut h = hmac_sha512::Hash::new();
        h.update(r);
        h.update(self.encoded);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize());
        let b = base_tables();
        // s's pieces go with the base point's tables, k's with the key's (of -A).
        let terms: Vec<_> = wnaf::terms(&big_endian(&s), b, B_WINDOW)?
            .chain(wnaf::terms(&big_endian(&k), &self.minus_a, KEY_WINDOW)?)
            .collect();
        let mut acc = EdwardsPoint::identity();
        // Doublings owed since the last addition, done in one run (no conversion between).
        let mut owed = 0u32;
        for i in (0..=PIECE_BITS).rev() {
            owed += 1;
            for (table, digits) in &terms {
                let d = digits.get(i).copied().unwrap_or(0);
                if d == 0 {
                    continue;
                }
                if owed > 0 {
                    acc = double_times(&acc, owed);
                    owed = 0;
                }
                let p = wnaf::entry(table, d)?;
                if d > 0 {
                    acc += p;
                } else {
                    acc -= p;
                }
            }
        }
        if owed > 0 {
            acc = double_times(&acc, owed);
        }
        Some(acc.compress().to_bytes() == r && !small_order_encodings().contains(&r))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::weierstrass::tests::Rng;
    use ed25519_dalek::{Signer, SigningKey, Verifier};

    /// Our answer and `ed25519-dalek`'s `verify_strict` for the same key, message, signature.
    fn both(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> (bool, bool) {
        let ours = Ed25519Key::new(key).is_some_and(|k| k.verify(msg, sig));
        let reference = ed25519_dalek::VerifyingKey::from_bytes(key).is_ok_and(|k| {
            k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
                .is_ok()
        });
        (ours, reference)
    }

    /// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// `s + L`, little-endian; None when it does not fit 256 bits.
    fn plus_l(s: &[u8; 32]) -> Option<[u8; 32]> {
        let mut out = *s;
        let mut carry = 0u16;
        for (b, lb) in out.iter_mut().zip(L) {
            let v = u16::from(*b) + u16::from(lb) + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        (carry == 0).then_some(out)
    }

    /// The signature with its s replaced.
    fn with_s(sig: &[u8; 64], s: &[u8; 32]) -> [u8; 64] {
        let mut out = *sig;
        out[32..].copy_from_slice(s);
        out
    }

    fn signature(r: &EdwardsPoint, s: &Scalar) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(r.compress().as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }

    /// `k = SHA-512(R || A || msg) mod L`.
    fn challenge(r: &EdwardsPoint, key: &[u8; 32], msg: &[u8]) -> Scalar {
        let mut h = hmac_sha512::Hash::new();
        h.update(r.compress().as_bytes());
        h.update(key);
        h.update(msg);
        Scalar::from_bytes_mod_order_wide(&h.finalize())
    }

    fn random_scalar(rng: &mut Rng) -> Scalar {
        Scalar::from_bytes_mod_order(rng.bytes(32).try_into().unwrap())
    }

    /// The 8 points of small order in 22 encodings: each canonical and with its sign bit
    /// flipped (the point's opposite, or "-0" when x = 0), and, for the three whose y is
    /// below 19, y + p with either sign bit: 14 distinct byte strings.
    fn torsion_encodings() -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for t in EIGHT_TORSION {
            let canonical = t.compress().to_bytes();
            let mut flipped = canonical;
            flipped[31] ^= 0x80;
            out.extend([canonical, flipped]);
            // y + p = y + 2^255 - 19, little-endian: p's bytes with y added to the lowest
            // (no carry for y < 19), and the sign bit as it was.
            let y_is_small = canonical[1..31] == [0; 30] && canonical[31] & 0x7f == 0;
            if y_is_small && canonical[0] < 19 {
                let mut plus_p = [0xff; 32];
                plus_p[0] = 0xed + canonical[0];
                plus_p[31] = 0x7f | (canonical[31] & 0x80);
                let mut plus_p_flipped = plus_p;
                plus_p_flipped[31] ^= 0x80;
                out.extend([plus_p, plus_p_flipped]);
            }
        }
        out
    }

    /// A small-order key verifies nothing, even signatures that satisfy its equation
    /// (`R = sB - T` where T happens to be `kA`): both refuse every one.
    #[test]
    fn torsion_keys_verify_nothing() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let encodings = torsion_encodings();
        assert_eq!(encodings.len(), 22);
        let mut distinct = encodings.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 14);
        let msg = b"header.payload";
        let mut equation_holds = 0;
        for key in &distinct {
            let a = CompressedEdwardsY(*key).decompress().unwrap();
            assert!(a.is_small_order());
            for round in 0..3 {
                let s = if round == 0 {
                    Scalar::ZERO
                } else {
                    random_scalar(&mut rng)
                };
                for t in EIGHT_TORSION {
                    let r = EdwardsPoint::mul_base(&s) - t;
                    let sig = signature(&r, &s);
                    let k = challenge(&r, key, msg);
                    equation_holds += usize::from(EdwardsPoint::mul_base(&s) - k * a == r);
                    assert_eq!(both(key, msg, &sig), (false, false), "{key:x?} {sig:x?}");
                }
            }
        }
        // Some of them a verification without the small-order check would accept.
        assert!(equation_holds > 0);
    }

    /// Keys with a torsion component, `A = aB + T`, and signatures `R = rB + T'`,
    /// `s = r + ka`: `[s]B - [k]A = rB - kT`, so the cofactorless equation holds exactly when
    /// `T' = -kT`. Both verifiers must agree on each, accepting some and refusing others.
    /// R itself of small order (`R = T'`, `s = ka`, equation holding when `T' = -kT`) is
    /// refused by both.
    #[test]
    fn mixed_order_keys_agree_with_verify_strict() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let msg = b"header.payload";
        let (mut accepted, mut refused, mut small_r_holds) = (0, 0, 0);
        for _ in 0..3 {
            let a = random_scalar(&mut rng);
            for t in &EIGHT_TORSION[1..] {
                let key = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
                for t2 in EIGHT_TORSION {
                    let r = random_scalar(&mut rng);
                    let big_r = EdwardsPoint::mul_base(&r) + t2;
                    let k = challenge(&big_r, &key, msg);
                    let (ours, theirs) = both(&key, msg, &signature(&big_r, &(r + k * a)));
                    assert_eq!(ours, theirs, "{key:x?} {big_r:?}");
                    assert_eq!(ours, -(k * t) == t2);
                    accepted += usize::from(ours);
                    refused += usize::from(!ours);

                    let k = challenge(&t2, &key, msg);
                    small_r_holds += usize::from(-(k * t) == t2);
                    let sig = signature(&t2, &(k * a));
                    assert_eq!(both(&key, msg, &sig), (false, false), "{sig:x?}");
                }
            }
        }
        assert!(
            accepted > 0 && refused > 0 && small_r_holds > 0,
            "{accepted} {refused} {small_r_holds}"
        );
    }

    /// Honest signatures changed where a lax verifier would still accept or a careless one
    /// would miscompute: s + L, s + 2L, s = L, s with bit 253 or 255 set, R plus each
    /// torsion point, R with its sign bit flipped, and the key plus a torsion point. Both
    /// refuse each; the honest signature verifies under both.
    #[test]
    fn mutated_signatures_agree_with_verify_strict() {
        let mut rng = Rng(0x6a09_e667_f3bc_c909);
        for i in 0..8 {
            let sk = SigningKey::from_bytes(&rng.bytes(32).try_into().unwrap());
            let key = sk.verifying_key().to_bytes();
            let msg = format!("header.payload-{i}");
            let msg = msg.as_bytes();
            let sig = sk.sign(msg).to_bytes();
            assert_eq!(both(&key, msg, &sig), (true, true));
            let s: [u8; 32] = sig[32..].try_into().unwrap();
            let mut candidates = vec![with_s(&sig, &L)];
            let s_plus_l = plus_l(&s).unwrap();
            candidates.push(with_s(&sig, &s_plus_l));
            candidates.extend(plus_l(&s_plus_l).map(|s2| with_s(&sig, &s2)));
            for (byte, bit) in [(31, 0x20), (31, 0x80)] {
                let mut high = s;
                high[byte] |= bit;
                candidates.push(with_s(&sig, &high));
            }
            let big_r = CompressedEdwardsY(sig[..32].try_into().unwrap())
                .decompress()
                .unwrap();
            for t in &EIGHT_TORSION[1..] {
                let mut shifted = sig;
                shifted[..32].copy_from_slice((big_r + t).compress().as_bytes());
                candidates.push(shifted);
            }
            let mut flipped = sig;
            flipped[31] ^= 0x80;
            candidates.push(flipped);
            for candidate in &candidates {
                assert_eq!(both(&key, msg, candidate), (false, false), "{candidate:x?}");
            }
            let a = CompressedEdwardsY(key).decompress().unwrap();
            for t in &EIGHT_TORSION[1..] {
                let shifted = (a + t).compress().to_bytes();
                assert_eq!(both(&shifted, msg, &sig), (false, false));
            }
        }
    }

    #[test]
    fn agrees_with_ed25519_dalek() {
        for i in 0..40u8 {
            let sk = SigningKey::from_bytes(&[i.wrapping_mul(31).wrapping_add(7); 32]);
            let key = sk.verifying_key().to_bytes();
            let msg = vec![i; usize::from(i) * 5];
            let sig = sk.sign(&msg).to_bytes();
            assert_eq!(both(&key, &msg, &sig), (true, true), "key {i}");
            let mut tampered = sig;
            tampered[usize::from(i) % 64] ^= 0x10;
            let (ours, reference) = both(&key, &msg, &tampered);
            assert_eq!(ours, reference, "tampered {i}");
            assert!(!ours);
            assert_eq!(both(&key, b"other", &sig), (false, false));
            // s + L: the same point equation, but s is not canonical.
            let s = with_s(&sig, &plus_l(&sig[32..].try_into().unwrap()).unwrap());
            assert_eq!(both(&key, &msg, &s), (false, false), "s + L {i}");
        }
    }

    #[test]
    fn small_order_keys_and_r_are_refused() {
        // The identity (y = 1) as the key: every signature with R = identity and s = 0 would
        // satisfy the equation; strict verification refuses it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        assert_eq!(both(&identity, b"m", &sig), (false, false));
        // A point of order 2 (y = -1).
        let mut order2 = [0xffu8; 32];
        order2[0] = 0xec;
        order2[31] = 0x7f;
        assert_eq!(both(&order2, b"m", &sig), (false, false));
        // Not a point: refused at import.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(Ed25519Key::new(&not_a_point).is_none());
    }

    #[test]
    fn an_identity_r_is_refused_even_when_the_equation_holds() {
        // With the secret scalar a, s = k * a makes [s]B - [k]A the identity: a lax
        // verification accepts R = identity, a strict one must not.
        let sk = SigningKey::from_bytes(&[3u8; 32]);
        let key = sk.verifying_key().to_bytes();
        let mut r = [0u8; 32];
        r[0] = 1;
        let msg = b"header.payload";
        let mut h = hmac_sha512::Hash::new();
        h.update(r);
        h.update(key);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize());
        let s = k * sk.to_scalar();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(&s.to_bytes());
        let lax = ed25519_dalek::VerifyingKey::from_bytes(&key)
            .unwrap()
            .verify(msg, &ed25519_dalek::Signature::from_bytes(&sig));
        assert!(lax.is_ok(), "the forged equation must hold");
        assert_eq!(both(&key, msg, &sig), (false, false));
    }

    #[test]
    fn refuses_malformed_signatures() {
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let key = Ed25519Key::new(&sk.verifying_key().to_bytes()).unwrap();
        assert!(!key.verify(b"m", &[]));
        assert!(!key.verify(b"m", &[0u8; 63]));
        assert!(!key.verify(b"m", &[0u8; 64]));
        assert!(!key.verify(b"m", &[0xffu8; 64]));
        let sig = sk.sign(b"m").to_bytes();
        assert!(key.verify(b"m", &sig));
        assert!(!key.verify(b"m", &[sig.as_slice(), &[0]].concat()));
    }
}
