//! ES256 and ES384 through the filter's public key types (`P256Key`, `P384Key`), against the
//! `p256` and `p384` crates' `VerifyingKey::verify`, on signatures that honest signers almost
//! never make: R with x(R) at or above n (the final check's `r + n` case), and r or s at the
//! edges of [1, n - 1]. Both verifiers must give the same answer on every one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_bigint::BoxedUint;
use envoy_jwt_authz::crypto::ecdsa_p256::P256Key;
use envoy_jwt_authz::crypto::ecdsa_p384::P384Key;
use p256::elliptic_curve::ops::{MulByGeneratorVartime, Reduce};
use p256::elliptic_curve::point::{AffineCoordinates, DecompressPoint};
use p256::elliptic_curve::subtle::Choice;
use p256::elliptic_curve::{CurveArithmetic, Field, FieldBytes, PrimeField};

type Scalar<E> = <E as CurveArithmetic>::Scalar;
type Point<E> = <E as CurveArithmetic>::ProjectivePoint;
type AffinePoint<E> = <E as CurveArithmetic>::AffinePoint;
/// Both verifiers for one key: (the filter's answer, the reference crate's answer).
type Both = Box<dyn Fn(&[u8], &[u8]) -> (bool, bool)>;

/// What differs between the curves.
trait Suite {
    type E: CurveArithmetic;
    /// The message's digest (SHA-256 or SHA-384), as wide as a scalar.
    fn digest(msg: &[u8]) -> Vec<u8>;
    fn verifiers(key: &AffinePoint<Self::E>) -> Both;
}

struct Es256;
struct Es384;

impl Suite for Es256 {
    type E = p256::NistP256;
    fn digest(msg: &[u8]) -> Vec<u8> {
        hmac_sha256::Hash::hash(msg).to_vec()
    }
    fn verifiers(key: &p256::AffinePoint) -> Both {
        let ours = P256Key::new(&key.x().into(), &key.y().into()).unwrap();
        let reference = p256::ecdsa::VerifyingKey::from_affine(*key).unwrap();
        Box::new(move |msg, sig| {
            use p256::ecdsa::signature::Verifier;
            let theirs = p256::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| reference.verify(msg, &s).is_ok());
            (ours.verify(msg, sig), theirs)
        })
    }
}

impl Suite for Es384 {
    type E = p384::NistP384;
    fn digest(msg: &[u8]) -> Vec<u8> {
        hmac_sha512::sha384::Hash::hash(msg).to_vec()
    }
    fn verifiers(key: &p384::AffinePoint) -> Both {
        let ours = P384Key::new(&key.x().into(), &key.y().into()).unwrap();
        let reference = p384::ecdsa::VerifyingKey::from_affine(*key).unwrap();
        Box::new(move |msg, sig| {
            use p384::ecdsa::signature::Verifier;
            let theirs = p384::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| reference.verify(msg, &s).is_ok());
            (ours.verify(msg, sig), theirs)
        })
    }
}

/// A xorshift generator: fixed seeds, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

fn field_bytes<E: CurveArithmetic>(be: &[u8]) -> FieldBytes<E> {
    let mut out = FieldBytes::<E>::default();
    out.copy_from_slice(be);
    out
}

/// A big-endian number modulo n.
fn reduce<E: CurveArithmetic>(be: &[u8]) -> Scalar<E> {
    <Scalar<E> as Reduce<FieldBytes<E>>>::reduce(&field_bytes::<E>(be))
}

fn be<E: CurveArithmetic>(k: &Scalar<E>) -> Vec<u8> {
    k.to_repr().to_vec()
}

/// `a + b` for big-endian numbers of one width, by crypto-bigint; None when the sum does not
/// fit that width.
fn add_be(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let width = a.len();
    let big = |v: &[u8]| BoxedUint::from_be_slice(v, 8 * width as u32 + 8).unwrap();
    let sum = big(a).wrapping_add(big(b)).to_be_bytes();
    let (carry, low) = sum.split_at(sum.len() - width);
    carry.iter().all(|c| *c == 0).then(|| low.to_vec())
}

/// n, big-endian: (n - 1) + 1.
fn order<E: CurveArithmetic>() -> Vec<u8> {
    let n_minus_1 = be::<E>(&-Scalar::<E>::ONE);
    let mut one = vec![0u8; n_minus_1.len()];
    *one.last_mut().unwrap() = 1;
    add_be(&n_minus_1, &one).unwrap()
}

/// The key for which `(r, s)` signs `msg`, given a point R whose x is r modulo n (ECDSA run
/// backwards): with `u1 = z/s` and `u2 = r/s`, `Q = (R - u1*G) / u2`. Returns the key and
/// the signature `r || s`.
fn forge<S: Suite>(
    big_r: &AffinePoint<S::E>,
    r: &Scalar<S::E>,
    s: &Scalar<S::E>,
    msg: &[u8],
) -> (AffinePoint<S::E>, Vec<u8>) {
    let z = reduce::<S::E>(&S::digest(msg));
    let s_inv = s.invert().unwrap();
    let (u1, u2) = (z * s_inv, *r * s_inv);
    let q = (Point::<S::E>::from(*big_r) - Point::<S::E>::mul_by_generator_vartime(&u1))
        * u2.invert().unwrap();
    let sig = [be::<S::E>(r), be::<S::E>(s)].concat();
    (q.into(), sig)
}

fn decompress<E: CurveArithmetic>(x: &[u8], y_is_odd: u8) -> Option<AffinePoint<E>>
where
    AffinePoint<E>: DecompressPoint<E>,
{
    AffinePoint::<E>::decompress(&field_bytes::<E>(x), Choice::from(y_is_odd)).into()
}

/// Signatures whose R has x in [n, p) (x = n + t; r = t): both verifiers accept them, and
/// (r, -s); both refuse (r + 1, s) and (x, s), where x >= n is not a valid r.
fn large_x<S: Suite>(seed: u64)
where
    AffinePoint<S::E>: DecompressPoint<S::E>,
{
    let mut rng = Rng(seed);
    let n = order::<S::E>();
    let width = n.len();
    let mut forged = 0;
    for i in 0..100 {
        let mut t = vec![0u8; width];
        t[width - 12..].copy_from_slice(&rng.bytes(12));
        let x = add_be(&n, &t).unwrap();
        let Some(big_r) = decompress::<S::E>(&x, (i % 2) as u8) else {
            continue;
        };
        let s = reduce::<S::E>(&rng.bytes(width));
        let r = reduce::<S::E>(&t);
        let msg = format!("header.payload-{i}");
        let (key, sig) = forge::<S>(&big_r, &r, &s, msg.as_bytes());
        let both = S::verifiers(&key);
        let msg = msg.as_bytes();
        assert_eq!(both(msg, &sig), (true, true), "x = n + {t:x?}");
        let negated = [be::<S::E>(&r), be::<S::E>(&-s)].concat();
        assert_eq!(both(msg, &negated), (true, true));
        let r_plus_1 = [be::<S::E>(&(r + Scalar::<S::E>::ONE)), be::<S::E>(&s)].concat();
        assert_eq!(both(msg, &r_plus_1), (false, false));
        let r_is_x = [x, be::<S::E>(&s)].concat();
        assert_eq!(both(msg, &r_is_x), (false, false));
        forged += 1;
        if forged == 6 {
            return;
        }
    }
    panic!("only {forged} points with x at or above n");
}

#[test]
fn es256_signatures_with_x_at_or_above_n() {
    large_x::<Es256>(0x2545_f491_4f6c_dd1d);
}

#[test]
fn es384_signatures_with_x_at_or_above_n() {
    large_x::<Es384>(0x9e37_79b9_7f4a_7c15);
}

/// r and s at the edges. Valid signatures with s = 1, 2, n - 2, n - 1, and with r = 1, 2,
/// n - 2, n - 1 (forged from a point whose x is r or r + n, where one exists), are accepted
/// by both. With either half replaced by 0, n, n + 1 or all ones they are refused by both;
/// replaced by another edge value, both give the same answer.
fn edges<S: Suite>(seed: u64)
where
    AffinePoint<S::E>: DecompressPoint<S::E>,
{
    let mut rng = Rng(seed);
    let n = order::<S::E>();
    let width = n.len();
    let small = |k: u64| Scalar::<S::E>::from(k);
    let minus = |k: u64| -Scalar::<S::E>::from(k);
    let in_range = [small(1), small(2), minus(2), minus(1)];
    let mut one = vec![0u8; width];
    one[width - 1] = 1;
    let out_of_range = [
        vec![0u8; width],
        n.clone(),
        add_be(&n, &one).unwrap(),
        vec![0xff; width],
    ];
    let msg = b"header.payload";
    // Points R with their r: one whose x is each edge r, or r + n (below p only for small
    // r), where such a point exists; and a random multiple of G, for the edge values of s.
    let random = Point::<S::E>::mul_by_generator_vartime(&reduce::<S::E>(&rng.bytes(width)));
    let random: AffinePoint<S::E> = random.into();
    let mut points = vec![(random, reduce::<S::E>(&random.x()))];
    for r in in_range {
        let r_be = be::<S::E>(&r);
        let found = [Some(r_be.clone()), add_be(&r_be, &n)]
            .iter()
            .flatten()
            .flat_map(|x| [0, 1].map(|odd| decompress::<S::E>(x, odd)))
            .flatten()
            .next();
        points.extend(found.map(|big_r| (big_r, r)));
    }
    assert!(points.len() > 1, "no point has an edge r");
    let (mut accepted, mut refused) = (0, 0);
    for (big_r, r) in points {
        let random_s = reduce::<S::E>(&rng.bytes(width));
        for s in in_range.iter().chain([&random_s]) {
            let (key, sig) = forge::<S>(&big_r, &r, s, msg);
            let both = S::verifiers(&key);
            assert_eq!(both(msg, &sig), (true, true), "r {r:?} s {s:?}");
            accepted += 1;
            let (r_half, s_half) = sig.split_at(width);
            let replaced = |v: &[u8]| [[v, s_half].concat(), [r_half, v].concat()];
            for v in &out_of_range {
                for candidate in replaced(v) {
                    assert_eq!(both(msg, &candidate), (false, false), "{candidate:x?}");
                }
            }
            for v in in_range.iter().map(be::<S::E>) {
                for candidate in replaced(&v) {
                    let (ours, theirs) = both(msg, &candidate);
                    assert_eq!(ours, theirs, "{candidate:x?}");
                    refused += usize::from(!ours);
                }
            }
        }
    }
    assert!(accepted > 0 && refused > 0, "{accepted} {refused}");
}

#[test]
fn es256_edge_r_and_s() {
    edges::<Es256>(0x6a09_e667_f3bc_c909);
}

#[test]
fn es384_edge_r_and_s() {
    edges::<Es384>(0xbb67_ae85_84ca_a73b);
}
