//! Arithmetic modulo the P-384 prime `p = 2^384 - 2^128 - 2^96 + 2^32 - 1`, for ES384
//! verification (`ecdsa_p384.rs`): elements in Montgomery form (`x * 2^384 mod p`) on twelve
//! 32-bit limbs. wasm32 multiplies 32x32->64 natively, while the 64-bit limbs of the `p384`
//! crate need 128-bit products that wasm32 emulates with a call each. p's form makes the
//! Montgomery reduction multiplication-free: `-p^-1 mod 2^32` is 1, so each step's multiple
//! of p is the limb itself, added as a few shifted copies. Only public values pass through
//! here, so variable time is fine.

use crate::crypto::weierstrass::Field;

const LIMBS: usize = 12;

/// p, little-endian limbs.
const P: [u32; LIMBS] = [
    0xffff_ffff,
    0,
    0,
    0xffff_ffff,
    0xffff_fffe,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
];

/// `2^384 mod p` (one in Montgomery form) and `2^768 mod p` (what brings a value into it).
const R: [u32; LIMBS] = [1, 0xffff_ffff, 0xffff_ffff, 0, 1, 0, 0, 0, 0, 0, 0, 0];
const R2: [u32; LIMBS] = [1, 0xffff_fffe, 0, 2, 0, 0xffff_fffe, 0, 2, 1, 0, 0, 0];

/// An element `x` held as `x * 2^384 mod p`, always below p: equal elements have equal
/// limbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fe([u32; LIMBS]);

/// The full product of two 12-limb values.
fn mul_wide(a: &[u32; LIMBS], b: &[u32; LIMBS]) -> [u32; 2 * LIMBS] {
    let mut t = [0u32; 2 * LIMBS];
    for (i, ai) in a.iter().enumerate() {
        let ai = u64::from(*ai);
        let Some(row) = t.get_mut(i..) else {
            continue;
        };
        let mut carry = 0u64;
        for (tj, bj) in row.iter_mut().zip(b) {
            let s = u64::from(*tj) + ai * u64::from(*bj) + carry;
            *tj = s as u32;
            carry = s >> 32;
        }
        if let Some(top) = row.get_mut(LIMBS) {
            *top = carry as u32;
        }
    }
    t
}

fn bump(acc: &mut [i64; 2 * LIMBS + 1], i: usize, d: i64) {
    if let Some(x) = acc.get_mut(i) {
        *x += d;
    }
}

/// `t * 2^-384 mod p` for `t < p * 2^384`, below p. Step i clears limb i by adding `m * p`
/// with m the limb's value: `m * p = m * 2^384 - m * 2^128 - m * 2^96 + m * 2^32 - m`.
/// The limbs are kept as signed sums and carried as the steps go.
fn reduce(t: &[u32; 2 * LIMBS]) -> [u32; LIMBS] {
    let mut acc = [0i64; 2 * LIMBS + 1];
    for (a, x) in acc.iter_mut().zip(t) {
        *a = i64::from(*x);
    }
    let mut carry = 0i64;
    for i in 0..LIMBS {
        let v = acc.get(i).copied().unwrap_or(0) + carry;
        let m = v & 0xffff_ffff;
        // v - m is a multiple of 2^32: limb i becomes zero.
        carry = (v - m) >> 32;
        bump(&mut acc, i + 1, m);
        bump(&mut acc, i + 3, -m);
        bump(&mut acc, i + 4, -m);
        bump(&mut acc, i + LIMBS, m);
    }
    let mut out = [0u32; LIMBS];
    for (o, a) in out.iter_mut().zip(acc.iter().skip(LIMBS)) {
        let v = a + carry;
        *o = v as u32;
        carry = v >> 32;
    }
    let top = acc.last().copied().unwrap_or(0) + carry;
    // The sum is below 2p (t < p * 2^384 and m < 2^384): one subtraction at most.
    if top != 0 || ge(&out, &P) {
        out = sub_limbs(&out, &P).0;
    }
    out
}

fn mont_mul(a: &[u32; LIMBS], b: &[u32; LIMBS]) -> [u32; LIMBS] {
    reduce(&mul_wide(a, b))
}

fn limbs_from_be(bytes: &[u8; 48]) -> [u32; LIMBS] {
    let mut out = [0u32; LIMBS];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks_exact(4)) {
        *limb = chunk.iter().fold(0, |acc, b| (acc << 8) | u32::from(*b));
    }
    out
}

/// `a >= b`.
fn ge(a: &[u32; LIMBS], b: &[u32; LIMBS]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}

/// `a + b` and the carry out of the top limb.
fn add_limbs(a: &[u32; LIMBS], b: &[u32; LIMBS]) -> ([u32; LIMBS], bool) {
    let mut out = [0u32; LIMBS];
    let mut carry = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let s = u64::from(*x) + u64::from(*y) + carry;
        *o = s as u32;
        carry = s >> 32;
    }
    (out, carry != 0)
}

/// `a - b` and the borrow out of the top limb.
fn sub_limbs(a: &[u32; LIMBS], b: &[u32; LIMBS]) -> ([u32; LIMBS], bool) {
    let mut out = [0u32; LIMBS];
    let mut borrow = false;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let (d1, b1) = x.overflowing_sub(*y);
        let (d2, b2) = d1.overflowing_sub(u32::from(borrow));
        *o = d2;
        borrow = b1 | b2;
    }
    (out, borrow)
}

impl Fe {
    pub const ZERO: Fe = Fe([0; LIMBS]);

    /// A big-endian value; None unless it is below p.
    pub fn from_be_bytes(bytes: &[u8; 48]) -> Option<Fe> {
        let x = limbs_from_be(bytes);
        if ge(&x, &P) {
            return None;
        }
        Some(Fe(mont_mul(&x, &R2)))
    }

    pub fn one() -> Fe {
        Fe(R)
    }

    /// The value, big-endian.
    pub fn to_be_bytes(self) -> [u8; 48] {
        let mut unit = [0u32; LIMBS];
        if let Some(first) = unit.first_mut() {
            *first = 1;
        }
        // x * R * 1 * R^-1 = x.
        let plain = mont_mul(&self.0, &unit);
        let mut out = [0u8; 48];
        for (chunk, limb) in out.rchunks_exact_mut(4).zip(plain) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }
}

impl Field for Fe {
    const BYTES: usize = 48;
    // p - 2: p's low limb is odd and above 2, so no borrow.
    const P_MINUS_2: &'static [u32] = &{
        let mut e = P;
        e[0] -= 2;
        e
    };
    fn zero() -> Fe {
        Fe::ZERO
    }
    fn one() -> Fe {
        Fe::one()
    }
    fn from_be_bytes(bytes: &[u8]) -> Option<Fe> {
        Fe::from_be_bytes(bytes.try_into().ok()?)
    }

    fn is_zero(&self) -> bool {
        self.0 == [0; LIMBS]
    }

    fn add(&self, b: &Fe) -> Fe {
        let (s, carry) = add_limbs(&self.0, &b.0);
        if carry || ge(&s, &P) {
            Fe(sub_limbs(&s, &P).0)
        } else {
            Fe(s)
        }
    }

    fn sub(&self, b: &Fe) -> Fe {
        let (d, borrow) = sub_limbs(&self.0, &b.0);
        if borrow {
            Fe(add_limbs(&d, &P).0)
        } else {
            Fe(d)
        }
    }

    fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    fn double(&self) -> Fe {
        self.add(self)
    }

    fn mul(&self, b: &Fe) -> Fe {
        Fe(mont_mul(&self.0, &b.0))
    }

    fn square(&self) -> Fe {
        self.mul(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::weierstrass::tests::Rng;
    use crypto_bigint::{BoxedUint, NonZero};

    /// p, big-endian.
    const P_BE: [u8; 48] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
        0xff, 0xff, 0xff,
    ];

    /// `a * b`, `a + b`, `a - b` and `-a` modulo p by crypto-bigint's general big-integer
    /// arithmetic, big-endian.
    fn reference(a: &[u8; 48], b: &[u8; 48]) -> [Vec<u8>; 4] {
        let p = BoxedUint::from_be_slice(&P_BE, 1024).unwrap();
        let modp = |x: BoxedUint| {
            x.rem_vartime(&NonZero::new(p.clone()).unwrap())
                .to_be_bytes()[128 - 48..]
                .to_vec()
        };
        let a = BoxedUint::from_be_slice(a, 1024).unwrap();
        let b = BoxedUint::from_be_slice(b, 1024).unwrap();
        [
            modp(a.wrapping_mul(&b)),
            modp(a.wrapping_add(&b)),
            modp(a.wrapping_add(&p).wrapping_sub(&b)),
            modp(p.wrapping_sub(&a)),
        ]
    }

    /// Values at the edges (0, 1, p - 1, p - 2, 2^383, all ones but below p) and pseudo-random
    /// ones below p.
    fn values() -> Vec<[u8; 48]> {
        let mut out = Vec::new();
        let p_minus = |k: u8| {
            let mut v = P_BE;
            v[47] -= k;
            v
        };
        out.push([0u8; 48]);
        let mut one = [0u8; 48];
        one[47] = 1;
        out.push(one);
        out.push(p_minus(1));
        out.push(p_minus(2));
        let mut top = [0u8; 48];
        top[0] = 0x80;
        out.push(top);
        let mut seed = 0x243f_6a88_85a3_08d3u64;
        for _ in 0..40 {
            let mut v = [0u8; 48];
            for b in v.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            if Fe::from_be_bytes(&v).is_some() {
                out.push(v);
            }
        }
        out
    }

    #[test]
    fn agrees_with_crypto_bigint() {
        let vs = values();
        for a in &vs {
            let fa = Fe::from_be_bytes(a).unwrap();
            assert_eq!(fa.to_be_bytes(), *a);
            for b in &vs {
                let fb = Fe::from_be_bytes(b).unwrap();
                let [mul, add, sub, neg] = reference(a, b);
                assert_eq!(fa.mul(&fb).to_be_bytes().to_vec(), mul);
                assert_eq!(fa.add(&fb).to_be_bytes().to_vec(), add);
                assert_eq!(fa.sub(&fb).to_be_bytes().to_vec(), sub);
                assert_eq!(fa.neg().to_be_bytes().to_vec(), neg);
                if a == b {
                    assert_eq!(fa.square().to_be_bytes().to_vec(), mul);
                }
            }
        }
    }

    #[test]
    fn inverts() {
        for a in values() {
            let fa = Fe::from_be_bytes(&a).unwrap();
            if fa.is_zero() {
                assert!(fa.invert().is_zero());
            } else {
                assert_eq!(fa.mul(&fa.invert()), Fe::one());
            }
        }
    }

    #[test]
    fn reduction_ends_below_p() {
        // t = y * 2^384 + (2^384 - p) needs exactly one multiple of p (m = 1 at step 0, and
        // nothing after), so the sum before the last subtraction is y + 1.
        let with_high = |y: [u32; LIMBS]| {
            let mut t = [0u32; 2 * LIMBS];
            t[..LIMBS].copy_from_slice(&R);
            t[LIMBS..].copy_from_slice(&y);
            reduce(&t)
        };
        let mut y = P;
        y[0] -= 1;
        // y + 1 = p: the subtraction that random values almost never need.
        assert_eq!(with_high(y), [0; LIMBS]);
        y[0] -= 1;
        let mut p_minus_1 = P;
        p_minus_1[0] -= 1;
        assert_eq!(with_high(y), p_minus_1);
    }

    /// Little-endian limbs as a crypto-bigint number, wide enough for `t * 2^384`.
    fn big(limbs: &[u32]) -> BoxedUint {
        let be: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
        BoxedUint::from_be_slice(&be, 1024).unwrap()
    }

    /// `x mod p` by crypto-bigint's general division, big-endian.
    fn modp(x: &BoxedUint) -> Vec<u8> {
        let r = x.rem_vartime(&NonZero::new(big(&P)).unwrap()).to_be_bytes();
        r[r.len() - 48..].to_vec()
    }

    /// `x * 2^384 mod p`: what Montgomery reduction must undo.
    fn times_r(x: &[u32]) -> Vec<u8> {
        modp(&big(x).shl(384))
    }

    /// Patterned limbs below p: limb patterns (the top limb cleared when that is not below
    /// p) or p - d with d's low limbs patterned.
    fn below_p(rng: &mut Rng) -> [u32; LIMBS] {
        if rng.below(3) == 0 {
            let mut d = [0u32; LIMBS];
            for limb in d.iter_mut().take(1 + rng.below(LIMBS)) {
                *limb = rng.limb();
            }
            let (v, borrow) = sub_limbs(&P, &d);
            if !borrow && d != [0; LIMBS] {
                return v;
            }
        }
        let mut v = [(); LIMBS].map(|()| rng.limb());
        if ge(&v, &P) {
            v[LIMBS - 1] = 0;
        }
        v
    }

    /// Montgomery reduction on its own, on every input its callers can give (t < p * 2^384):
    /// patterned limbs, and values just below the bound. The result is below p and is
    /// `t / 2^384` modulo p.
    #[test]
    fn raw_reduction_agrees_with_crypto_bigint() {
        let mut rng = Rng(0x3c6e_f372_fe94_f82b);
        let (mut top_carry, mut subtracted) = (0, 0);
        let two_384 = big(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        for i in 0..20_000 {
            let mut t = [0u32; 2 * LIMBS];
            if i % 4 == 0 {
                // p * 2^384 - d.
                let mut d = [0u32; 2 * LIMBS];
                for limb in d.iter_mut().take(1 + rng.below(2 * LIMBS)) {
                    *limb = rng.limb();
                }
                let bound = big(&P).shl(384);
                let v = bound.wrapping_sub(big(&d)).to_be_bytes();
                for (limb, chunk) in t.iter_mut().zip(v.rchunks_exact(4)) {
                    *limb = u32::from_be_bytes(chunk.try_into().unwrap());
                }
            } else {
                t[..LIMBS].copy_from_slice(&[(); LIMBS].map(|()| rng.limb()));
                t[LIMBS..].copy_from_slice(&below_p(&mut rng));
            }
            let out = reduce(&t);
            assert!(!ge(&out, &P), "{t:x?}");
            let back = times_r(&out);
            assert_eq!(back, modp(&big(&t)), "{t:x?}");
            // Which correction ran: before it the sum S = (t + m * p) / 2^384 with
            // 0 <= m < 2^384 was out or out + p, and out + p exactly when out * 2^384 < t.
            if big(&out).shl(384) < big(&t) {
                subtracted += 1;
                top_carry += usize::from(big(&out).wrapping_add(big(&P)) >= two_384);
            }
        }
        assert!(subtracted > 0 && top_carry > 0, "{subtracted} {top_carry}");
    }

    /// Mul, square, add, sub, neg and double on patterned Montgomery limbs, against
    /// crypto-bigint; every result is below p, so equal elements have equal limbs.
    #[test]
    fn limb_patterns_agree_with_crypto_bigint() {
        let mut rng = Rng(0xa54f_f53a_5f1d_36f1);
        let p = big(&P);
        let values: Vec<[u32; LIMBS]> = (0..2000).map(|_| below_p(&mut rng)).collect();
        for (i, a) in values.iter().enumerate() {
            let (fa, big_a) = (Fe(*a), big(a));
            let outputs = [fa.square(), fa.double(), fa.neg()];
            assert_eq!(times_r(&outputs[0].0), modp(&big_a.wrapping_mul(&big_a)));
            assert_eq!(
                outputs[1].0,
                Fe(limbs48(&modp(&big_a.wrapping_add(&big_a)))).0
            );
            assert_eq!(outputs[2].0, Fe(limbs48(&modp(&p.wrapping_sub(&big_a)))).0);
            for b in [
                &values[(i + 1) % values.len()],
                &values[rng.below(values.len())],
            ] {
                let (fb, big_b) = (Fe(*b), big(b));
                let [mul, add, sub] = [fa.mul(&fb), fa.add(&fb), fa.sub(&fb)];
                assert_eq!(times_r(&mul.0), modp(&big_a.wrapping_mul(&big_b)));
                assert_eq!(add.0, limbs48(&modp(&big_a.wrapping_add(&big_b))));
                assert_eq!(
                    sub.0,
                    limbs48(&modp(&big_a.wrapping_add(&p).wrapping_sub(&big_b)))
                );
                for out in [mul, add, sub].iter().chain(&outputs) {
                    assert!(!ge(&out.0, &P));
                }
            }
        }
    }

    fn limbs48(be: &[u8]) -> [u32; LIMBS] {
        limbs_from_be(be.try_into().unwrap())
    }

    #[test]
    fn refuses_values_not_below_p() {
        assert!(Fe::from_be_bytes(&P_BE).is_none());
        assert!(Fe::from_be_bytes(&[0xff; 48]).is_none());
    }
}
