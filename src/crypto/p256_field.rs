//! Arithmetic modulo the P-256 prime `p = 2^256 - 2^224 + 2^192 + 2^96 - 1`, for ES256
//! verification (`ecdsa_p256.rs`), on eight 32-bit limbs: wasm32 multiplies 32x32->64
//! natively, while the 64-bit limbs of the `p256` crate need 128-bit products that wasm32
//! emulates with a call each. Products are reduced the NIST way (FIPS 186-4 D.2.3): p's
//! special form turns the reduction into additions of the product's words. Only public
//! values pass through here (a key, a signature, a digest), so variable time is fine.

use crate::crypto::weierstrass::Field;

/// An element, little-endian limbs: any value below 2^256 that is congruent to it, so below
/// 2p but not always below p. Sums, differences and products skip the final subtraction;
/// comparisons and output bring the value below p first.
#[derive(Clone, Copy, Debug)]
pub struct Fe([u32; 8]);

impl PartialEq for Fe {
    fn eq(&self, other: &Fe) -> bool {
        self.canonical() == other.canonical()
    }
}

/// `2^256 - p = 2^224 - 2^192 - 2^96 + 1`: what a carry out of the top limb is worth.
const C: [u32; 8] = [
    1,
    0,
    0,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_fffe,
    0,
];

/// All ones when `on`, else zero: for masks instead of branches (see `reduce`).
#[inline(always)]
fn mask(on: bool) -> u32 {
    0u32.wrapping_sub(u32::from(on))
}

/// `limbs & mask`, limb by limb.
#[inline(always)]
fn masked(limbs: &[u32; 8], on: bool) -> [u32; 8] {
    let m = mask(on);
    limbs.map(|l| l & m)
}

const P: [u32; 8] = [
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0,
    0,
    1,
    0xffff_ffff,
];

/// `a >= b`.
fn ge(a: &[u32; 8], b: &[u32; 8]) -> bool {
    for (x, y) in a.iter().zip(b).rev() {
        if x != y {
            return x > y;
        }
    }
    true
}

/// `a - b` and the borrow out.
fn sub_limbs(a: &[u32; 8], b: &[u32; 8]) -> ([u32; 8], bool) {
    let mut out = [0u32; 8];
    let mut borrow = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let d = u64::from(*x)
            .wrapping_sub(u64::from(*y))
            .wrapping_sub(borrow);
        *o = d as u32;
        borrow = (d >> 63) & 1;
    }
    (out, borrow != 0)
}

/// `a + b` and the carry out.
fn add_limbs(a: &[u32; 8], b: &[u32; 8]) -> ([u32; 8], bool) {
    let mut out = [0u32; 8];
    let mut carry = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let s = u64::from(*x) + u64::from(*y) + carry;
        *o = s as u32;
        carry = s >> 32;
    }
    (out, carry != 0)
}

fn limbs_from_be(bytes: &[u8; 32]) -> [u32; 8] {
    let mut out = [0u32; 8];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks_exact(4)) {
        *limb = chunk.iter().fold(0, |acc, b| (acc << 8) | u32::from(*b));
    }
    out
}

/// One column of a product scan: the column's 64-bit products summed as separate low and
/// high halves (independent adds, no carry chain per product; 16 halves stay far below
/// 2^64), plus the carry from the column below.
#[derive(Default)]
struct Column {
    lo: u64,
    hi: u64,
}

impl Column {
    #[inline(always)]
    fn add_all<const N: usize>(&mut self, products: &[u64; N]) {
        for p in products {
            self.lo += p & 0xffff_ffff;
            self.hi += p >> 32;
        }
    }

    #[inline(always)]
    fn add_twice<const N: usize>(&mut self, products: &[u64; N]) {
        for p in products {
            self.lo += (p & 0xffff_ffff) << 1;
            self.hi += (p >> 32) << 1;
        }
    }

    /// The column's word; what is above it carries into the next column.
    #[inline(always)]
    fn next(&mut self) -> u32 {
        let word = self.lo as u32;
        self.lo = (self.lo >> 32) + self.hi;
        self.hi = 0;
        word
    }
}

/// Signed words (each well inside i64) to limbs, and the signed carry out of the top.
#[inline(always)]
fn propagate(words: [i64; 8]) -> ([u32; 8], i64) {
    let mut out = [0u32; 8];
    let mut carry = 0i64;
    for (o, v) in out.iter_mut().zip(words) {
        let v = v + carry;
        *o = v as u32;
        carry = v >> 32;
    }
    (out, carry)
}

/// A 512-bit product (little-endian words `c0..c15`) modulo p: FIPS 186-4 D.2.3's sum
/// `s1 + 2 s2 + 2 s3 + s4 + s5 - s6 - s7 - s8 - s9`, gathered per result word.
fn reduce(c: &[u32; 16]) -> Fe {
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15] = c.map(i64::from);
    let words = [
        c0 + c8 + c9 - c11 - c12 - c13 - c14,
        c1 + c9 + c10 - c12 - c13 - c14 - c15,
        c2 + c10 + c11 - c13 - c14 - c15,
        c3 - c8 - c9 + 2 * c11 + 2 * c12 + c13 - c15,
        c4 - c9 - c10 + 2 * c12 + 2 * c13 + c14,
        c5 - c10 - c11 + 2 * c13 + 2 * c14 + c15,
        c6 - c8 - c9 + c13 + 3 * c14 + 2 * c15,
        c7 + c8 - c10 - c11 - c12 - c13 + 3 * c15,
    ];
    let (mut out, mut t) = propagate(words);
    // What is left is t * 2^256 with |t| <= 8; 2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p).
    // Folding it once leaves |t| <= 1, folding that leaves 0. Both folds always run: a
    // branch on t would be taken at random, and mispredicted branches in every field
    // operation cost a verification about a quarter of its time (measured with distinct
    // tokens; one repeated token trains the predictor and hides it).
    for _ in 0..2 {
        let [w0, w1, w2, w3, w4, w5, w6, w7] = out.map(i64::from);
        (out, t) = propagate([w0 + t, w1, w2, w3 - t, w4, w5, w6 - t, w7 + t]);
    }
    Fe(out)
}

/// `x + carry * 2^256`, known to be below 2p, brought below p without a branch (see
/// `reduce`): p masked to zero or not is subtracted. (A select between `x` and `x - p`
/// compiles back into a branch.)
#[inline(always)]
fn minus_p_if_needed(x: [u32; 8], carry: bool) -> [u32; 8] {
    let (_, below_p) = sub_limbs(&x, &P);
    sub_limbs(&x, &masked(&P, carry | !below_p)).0
}

impl Fe {
    pub const ZERO: Fe = Fe([0; 8]);
    pub const ONE: Fe = Fe([1, 0, 0, 0, 0, 0, 0, 0]);

    /// A big-endian value; None unless it is below p.
    pub fn from_be_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let x = limbs_from_be(bytes);
        if ge(&x, &P) {
            return None;
        }
        Some(Fe(x))
    }

    /// The value below p.
    fn canonical(&self) -> [u32; 8] {
        minus_p_if_needed(self.0, false)
    }

    /// The value below p, big-endian.
    pub fn to_be_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.rchunks_exact_mut(4).zip(self.canonical()) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }
}

impl Field for Fe {
    const BYTES: usize = 32;
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
        Fe::ONE
    }
    fn from_be_bytes(bytes: &[u8]) -> Option<Fe> {
        Fe::from_be_bytes(bytes.try_into().ok()?)
    }

    /// Zero is 0 or p, the only values below 2^256 congruent to it.
    fn is_zero(&self) -> bool {
        self.0 == [0; 8] || self.0 == P
    }

    fn add(&self, b: &Fe) -> Fe {
        // A carry is worth C. If adding C carries again, what wrapped is below C, and
        // adding C once more cannot carry.
        let (s, carry) = add_limbs(&self.0, &b.0);
        let (s, carry) = add_limbs(&s, &masked(&C, carry));
        Fe(add_limbs(&s, &masked(&C, carry)).0)
    }

    fn sub(&self, b: &Fe) -> Fe {
        // A borrow took 2^256, which is C too much: take C off, and once more if that
        // borrows again (the second time cannot).
        let (d, borrow) = sub_limbs(&self.0, &b.0);
        let (d, borrow) = sub_limbs(&d, &masked(&C, borrow));
        Fe(sub_limbs(&d, &masked(&C, borrow)).0)
    }

    fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    fn double(&self) -> Fe {
        self.add(self)
    }

    /// Product scanning, written out: the 64 limb products of a column-by-column schoolbook
    /// multiplication, kept in locals (a loop over the arrays compiles to bounds-checked loads).
    fn mul(&self, b: &Fe) -> Fe {
        let [a0, a1, a2, a3, a4, a5, a6, a7] = self.0.map(u64::from);
        let [b0, b1, b2, b3, b4, b5, b6, b7] = b.0.map(u64::from);
        let mut c = [0u32; 16];
        let mut col = Column::default();
        col.add_all(&[a0 * b0]);
        c[0] = col.next();
        col.add_all(&[a0 * b1, a1 * b0]);
        c[1] = col.next();
        col.add_all(&[a0 * b2, a1 * b1, a2 * b0]);
        c[2] = col.next();
        col.add_all(&[a0 * b3, a1 * b2, a2 * b1, a3 * b0]);
        c[3] = col.next();
        col.add_all(&[a0 * b4, a1 * b3, a2 * b2, a3 * b1, a4 * b0]);
        c[4] = col.next();
        col.add_all(&[a0 * b5, a1 * b4, a2 * b3, a3 * b2, a4 * b1, a5 * b0]);
        c[5] = col.next();
        col.add_all(&[
            a0 * b6,
            a1 * b5,
            a2 * b4,
            a3 * b3,
            a4 * b2,
            a5 * b1,
            a6 * b0,
        ]);
        c[6] = col.next();
        col.add_all(&[
            a0 * b7,
            a1 * b6,
            a2 * b5,
            a3 * b4,
            a4 * b3,
            a5 * b2,
            a6 * b1,
            a7 * b0,
        ]);
        c[7] = col.next();
        col.add_all(&[
            a1 * b7,
            a2 * b6,
            a3 * b5,
            a4 * b4,
            a5 * b3,
            a6 * b2,
            a7 * b1,
        ]);
        c[8] = col.next();
        col.add_all(&[a2 * b7, a3 * b6, a4 * b5, a5 * b4, a6 * b3, a7 * b2]);
        c[9] = col.next();
        col.add_all(&[a3 * b7, a4 * b6, a5 * b5, a6 * b4, a7 * b3]);
        c[10] = col.next();
        col.add_all(&[a4 * b7, a5 * b6, a6 * b5, a7 * b4]);
        c[11] = col.next();
        col.add_all(&[a5 * b7, a6 * b6, a7 * b5]);
        c[12] = col.next();
        col.add_all(&[a6 * b7, a7 * b6]);
        c[13] = col.next();
        col.add_all(&[a7 * b7]);
        c[14] = col.next();
        c[15] = col.next();
        reduce(&c)
    }

    /// As `mul(self, self)`, with each cross product computed once and doubled.
    fn square(&self) -> Fe {
        let [a0, a1, a2, a3, a4, a5, a6, a7] = self.0.map(u64::from);
        let mut c = [0u32; 16];
        let mut col = Column::default();
        col.add_all(&[a0 * a0]);
        c[0] = col.next();
        col.add_twice(&[a0 * a1]);
        c[1] = col.next();
        col.add_twice(&[a0 * a2]);
        col.add_all(&[a1 * a1]);
        c[2] = col.next();
        col.add_twice(&[a0 * a3, a1 * a2]);
        c[3] = col.next();
        col.add_twice(&[a0 * a4, a1 * a3]);
        col.add_all(&[a2 * a2]);
        c[4] = col.next();
        col.add_twice(&[a0 * a5, a1 * a4, a2 * a3]);
        c[5] = col.next();
        col.add_twice(&[a0 * a6, a1 * a5, a2 * a4]);
        col.add_all(&[a3 * a3]);
        c[6] = col.next();
        col.add_twice(&[a0 * a7, a1 * a6, a2 * a5, a3 * a4]);
        c[7] = col.next();
        col.add_twice(&[a1 * a7, a2 * a6, a3 * a5]);
        col.add_all(&[a4 * a4]);
        c[8] = col.next();
        col.add_twice(&[a2 * a7, a3 * a6, a4 * a5]);
        c[9] = col.next();
        col.add_twice(&[a3 * a7, a4 * a6]);
        col.add_all(&[a5 * a5]);
        c[10] = col.next();
        col.add_twice(&[a4 * a7, a5 * a6]);
        c[11] = col.next();
        col.add_twice(&[a5 * a7]);
        col.add_all(&[a6 * a6]);
        c[12] = col.next();
        col.add_twice(&[a6 * a7]);
        c[13] = col.next();
        col.add_all(&[a7 * a7]);
        c[14] = col.next();
        c[15] = col.next();
        reduce(&c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::crypto::weierstrass::tests::Rng;
    use crypto_bigint::{BoxedUint, NonZero};

    fn fe(hex: &str) -> Fe {
        Fe::from_be_bytes(&hex32(hex)).unwrap()
    }

    const P_MINUS_1: &str = "ffffffff00000001000000000000000000000000fffffffffffffffffffffffe";
    const P_HEX: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";

    #[test]
    fn round_trips_and_refuses_values_not_below_p() {
        let x = fe("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
        assert_eq!(
            x.to_be_bytes(),
            *b"\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96"
        );
        let p = {
            let mut b = fe(P_MINUS_1).to_be_bytes();
            b[31] += 1;
            b
        };
        assert!(Fe::from_be_bytes(&p).is_none());
        assert_eq!(element(&p), Fe::ZERO);
        assert!(element(&p).is_zero());
        assert_ne!(element(&[0xff; 32]), Fe::ZERO);
        assert_eq!(Fe::from_be_bytes(&[0; 32]), Some(Fe::ZERO));
    }

    /// Any 256-bit value is an element, below p or not.
    fn element(bytes: &[u8; 32]) -> Fe {
        Fe(limbs_from_be(bytes))
    }

    fn hex32(hex: &str) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        b
    }

    /// Little-endian limbs as a crypto-bigint number, wide enough for products.
    fn big(limbs: &[u32]) -> BoxedUint {
        let be: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
        BoxedUint::from_be_slice(&be, 512).unwrap()
    }

    /// `x mod p` by crypto-bigint's general division, big-endian.
    fn modp(x: &BoxedUint) -> [u8; 32] {
        let r = x.rem_vartime(&NonZero::new(big(&P)).unwrap()).to_be_bytes();
        r[r.len() - 32..].try_into().unwrap()
    }

    /// A value below 2^256 where the corrections are likely: limb patterns, p + d, p - d or
    /// 2^256 - d, with d's low limbs patterned (the "below 2^256, not below p" form).
    fn edge_value(rng: &mut Rng) -> [u32; 8] {
        let mut d = [0u32; 8];
        for limb in d.iter_mut().take(1 + rng.below(6)) {
            *limb = rng.limb();
        }
        match rng.below(5) {
            0 => add_limbs(&P, &d).0,
            1 => sub_limbs(&P, &d).0,
            2 => sub_limbs(&[0; 8], &d).0,
            _ => [(); 8].map(|()| rng.limb()),
        }
    }

    /// Fixed edges (p - 1, p, p + 2^96, 2^256 - 1, 2^256 - 2^96 - 2^160, 0, 1) and patterned
    /// values.
    fn values(rng: &mut Rng, count: usize) -> Vec<[u32; 8]> {
        let mut values: Vec<[u32; 8]> = [
            P_MINUS_1,
            P_HEX,
            "ffffffff00000001000000000000000000000001000000000000000000000000",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "ffffffff00000000ffffffffffffffffffffffff000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000001",
        ]
        .map(|h| limbs_from_be(&hex32(h)))
        .to_vec();
        values.extend((0..count).map(|_| edge_value(rng)));
        values
    }

    /// Mul, square, add, sub, neg and double of patterned values, and whether they are zero
    /// or equal, against crypto-bigint. Inputs are any values below 2^256, as results are.
    #[test]
    fn limb_patterns_agree_with_crypto_bigint() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let p = big(&P);
        let two_p = p.wrapping_add(&p);
        let two_256_plus_p = big(&[0, 0, 0, 0, 0, 0, 0, 0, 1]).wrapping_add(&p);
        let values = values(&mut rng, 3000);
        // How often the inputs needed what random values almost never need: a value at or
        // above p, a sum at or above 2^256 + p (a carry, and another after adding C), a
        // difference below -p (a borrow, and another after taking C off).
        let (mut above_p, mut second_carry, mut second_borrow) = (0, 0, 0);
        for (i, a) in values.iter().enumerate() {
            let (fa, big_a) = (Fe(*a), big(a));
            let a_mod = modp(&big_a);
            assert_eq!(fa.to_be_bytes(), a_mod);
            assert_eq!(fa.is_zero(), a_mod == [0; 32]);
            if big_a >= p {
                above_p += 1;
                assert_eq!(fa, Fe(sub_limbs(a, &P).0));
            }
            assert_eq!(fa.square().to_be_bytes(), modp(&big_a.wrapping_mul(&big_a)));
            assert_eq!(fa.double().to_be_bytes(), modp(&big_a.wrapping_add(&big_a)));
            assert_eq!(fa.neg().to_be_bytes(), modp(&two_p.wrapping_sub(&big_a)));
            // Pairs with the fixed edges, with the next value and at random.
            for j in [i % 7, (i + 1) % values.len(), rng.below(values.len())] {
                let (fb, big_b) = (Fe(values[j]), big(&values[j]));
                assert_eq!(fa.mul(&fb).to_be_bytes(), modp(&big_a.wrapping_mul(&big_b)));
                let sum = big_a.wrapping_add(&big_b);
                second_carry += usize::from(sum >= two_256_plus_p);
                assert_eq!(fa.add(&fb).to_be_bytes(), modp(&sum));
                second_borrow += usize::from(big_b > big_a.wrapping_add(&p));
                let difference = big_a.wrapping_add(&two_p).wrapping_sub(&big_b);
                assert_eq!(fa.sub(&fb).to_be_bytes(), modp(&difference));
                assert_eq!(fa == fb, a_mod == modp(&big_b));
            }
        }
        assert!(
            above_p > 0 && second_carry > 0 && second_borrow > 0,
            "{above_p} {second_carry} {second_borrow}"
        );
    }

    /// The NIST reduction on its own, on every 512-bit value a product can be: patterned
    /// words up to (2^256 - 1)^2.
    #[test]
    fn raw_reduction_agrees_with_crypto_bigint() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut inputs: Vec<[u32; 16]> = (0..20_000)
            .map(|_| {
                let mut c = [(); 16].map(|()| rng.limb());
                // Below 0xffffffff * 2^480, so below (2^256 - 1)^2 = 2^512 - 2^257 + 1.
                c[15] = c[15].min(0xffff_fffe);
                c
            })
            .collect();
        let all_ones = big(&[u32::MAX; 8]);
        let largest = all_ones.wrapping_mul(&all_ones).to_be_bytes();
        inputs.push(limbs16(&largest[largest.len() - 64..]));
        for c in &inputs {
            assert_eq!(reduce(c).to_be_bytes(), modp(&big(c)), "{c:x?}");
        }
    }

    fn limbs16(be: &[u8]) -> [u32; 16] {
        let mut out = [0u32; 16];
        for (limb, chunk) in out.iter_mut().zip(be.rchunks_exact(4)) {
            *limb = u32::from_be_bytes(chunk.try_into().unwrap());
        }
        out
    }

    /// Chains of operations, each result (in whatever form it is left) the next input, as
    /// in a point formula; the reference keeps its value below p.
    #[test]
    fn chained_operations_agree_with_crypto_bigint() {
        let mut rng = Rng(0x6a09_e667_f3bc_c909);
        let p = big(&P);
        let operands = values(&mut rng, 200);
        for _ in 0..100 {
            let mut x = Fe(operands[rng.below(operands.len())]);
            let mut want = big(&x.canonical());
            for _ in 0..100 {
                let b = operands[rng.below(operands.len())];
                let (fb, big_b) = (Fe(b), big(&b));
                (x, want) = match rng.below(6) {
                    0 => (x.mul(&fb), want.wrapping_mul(&big_b)),
                    1 => (x.square(), want.wrapping_mul(&want)),
                    2 => (x.add(&fb), want.wrapping_add(&big_b)),
                    3 => (
                        x.sub(&fb),
                        want.wrapping_add(&p).wrapping_add(&p).wrapping_sub(&big_b),
                    ),
                    4 => (x.neg(), p.wrapping_sub(&want)),
                    _ => (x.double(), want.wrapping_add(&want)),
                };
                let reduced = modp(&want);
                assert_eq!(x.to_be_bytes(), reduced);
                want = BoxedUint::from_be_slice(&reduced, 512).unwrap();
            }
        }
    }

    #[test]
    fn arithmetic_identities() {
        let minus_one = fe(P_MINUS_1);
        assert_eq!(minus_one.add(&Fe::ONE), Fe::ZERO);
        assert_eq!(minus_one.square(), Fe::ONE);
        assert_eq!(Fe::ONE.neg(), minus_one);
        assert_eq!(Fe::ZERO.neg(), Fe::ZERO);
        let a = fe("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
        let b = fe("fffffffe00000002000000010000000100000000fffffffffffffffffffffff0");
        // (a + b)^2 = a^2 + 2ab + b^2
        let left = a.add(&b).square();
        let right = a.square().add(&a.mul(&b).double()).add(&b.square());
        assert_eq!(left, right);
        assert_eq!(a.sub(&b).add(&b), a);
        assert_eq!(a.mul(&a.invert()), Fe::ONE);
        assert_eq!(b.mul(&b.invert()), Fe::ONE);
        assert_eq!(minus_one.invert(), minus_one);
        // 2^255 * 2 = 2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p)
        let two_255 = fe("8000000000000000000000000000000000000000000000000000000000000000");
        assert_eq!(
            two_255.double(),
            fe("00000000fffffffeffffffffffffffffffffffff000000000000000000000001")
        );
    }
}
