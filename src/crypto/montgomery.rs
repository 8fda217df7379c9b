//! Modular exponentiation by 65537 for RSA verification: Montgomery arithmetic on 32-bit limbs
//! with a dedicated squaring. wasm32 multiplies 32x32->64 natively but must emulate the
//! 128-bit products of 64-bit limbs; a squaring needs about half the limb products of a
//! multiplication, and 16 of the 17 steps of `x^65537` are squarings. Only public values
//! (key, signature) pass through here, so variable time is fine.

/// An odd modulus with its Montgomery constants, computed once per key.
pub struct Modulus {
    /// Little-endian 32-bit limbs; the top limb is not zero.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0: u32,
    /// `R^2 mod n`, with `R = 2^(32 * limbs)`.
    r2: Vec<u32>,
}

fn limbs_from_be(bytes: &[u8], limbs: usize) -> Vec<u32> {
    let mut out: Vec<u32> = bytes
        .rchunks(4)
        .map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        .collect();
    out.resize(limbs.max(out.len()), 0);
    out
}

/// `a >= b` for equal lengths (little-endian limbs).
fn ge(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}

/// Adds the products `x_i * y_(len-1-i)` (y walked backwards) to the split sum. Four at a
/// time: the loop's own bookkeeping otherwise costs as much as the products.
#[inline(always)]
fn dot(lo: &mut u64, hi: &mut u64, x: &[u32], y: Option<&[u32]>) {
    let y = y.unwrap_or_default();
    let mut add = |a: u32, b: u32| {
        let p = u64::from(a) * u64::from(b);
        *lo += p & 0xffff_ffff;
        *hi += p >> 32;
    };
    let (xs, ys) = (x.chunks_exact(4), y.rchunks_exact(4));
    let (x_rest, y_rest) = (xs.remainder(), ys.remainder());
    for (a, b) in xs.zip(ys) {
        if let ([a0, a1, a2, a3], [b3, b2, b1, b0]) = (a, b) {
            add(*a0, *b0);
            add(*a1, *b1);
            add(*a2, *b2);
            add(*a3, *b3);
        }
    }
    for (a, b) in x_rest.iter().zip(y_rest.iter().rev()) {
        add(*a, *b);
    }
}

/// `a -= b` for equal lengths; returns the borrow.
fn sub_assign(a: &mut [u32], b: &[u32]) -> bool {
    let mut borrow = false;
    for (x, y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(*y);
        let (d2, b2) = d1.overflowing_sub(u32::from(borrow));
        *x = d2;
        borrow = b1 | b2;
    }
    borrow
}

impl Modulus {
    /// `n`: big-endian bytes. None unless `n` is odd and above 1.
    pub fn new(n: &[u8]) -> Option<Self> {
        let mut n = limbs_from_be(n, 0);
        while n.last() == Some(&0) {
            n.pop();
        }
        let low = *n.first()?;
        if low & 1 == 0 || (n.len() == 1 && low == 1) {
            return None;
        }
        // Newton's iteration doubles the correct low bits of the inverse each round:
        // 1 -> 2 -> 4 -> 8 -> 16 -> 32 bits (an odd number is its own inverse mod 8, so 3 bits
        // to start is more than enough).
        let mut inv = low;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(low.wrapping_mul(inv)));
        }
        let mut m = Self {
            r2: Vec::new(),
            n0: inv.wrapping_neg(),
            n,
        };
        m.r2 = m.r_squared();
        Some(m)
    }

    /// `R^2 mod n`, as BoringSSL does it: doublings from `2^(bits-1)` (below n) give
    /// `2^k * R mod n`, the Montgomery form of `2^k`; each Montgomery squaring doubles that
    /// exponent, so five give `2^(32k)`, whose Montgomery form is `R^2 mod n`. About
    /// `k + 32` doublings and 5 squarings, instead of `64k` doublings.
    fn r_squared(&self) -> Vec<u32> {
        let k = self.limbs();
        let top = self.n.last().map_or(0, |t| t.leading_zeros() as usize);
        let high_bit = (32 * k).saturating_sub(top + 1);
        let mut x = vec![0u32; k];
        if let Some(limb) = x.get_mut(high_bit / 32) {
            *limb = 1 << (high_bit % 32);
        }
        for _ in high_bit..33 * k {
            let mut carry = 0u32;
            for limb in x.iter_mut() {
                let next = *limb >> 31;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            // x < n before, so 2x < 2n: one subtraction (wrapping past a carry out) suffices.
            if carry == 1 || ge(&x, &self.n) {
                sub_assign(&mut x, &self.n);
            }
        }
        let (mut m, mut y) = (vec![0u32; k], vec![0u32; k]);
        for _ in 0..5 {
            self.square(&x, &mut m, &mut y);
            std::mem::swap(&mut x, &mut y);
        }
        x
    }

    /// The modulus length in limbs.
    fn limbs(&self) -> usize {
        self.n.len()
    }

    /// `x * R^-1 mod n` into `out` (k limbs), where `column(c)` gives column c of the
    /// product x (the sum of its limb products `u_i * v_j` with `i + j = c`) as split
    /// halves. Product scanning: each column is summed, the multiple of n that clears its
    /// low limb is chosen, and the column's carry passes to the next. The sums of low and
    /// of high halves stay below 2^41 for 4096-bit moduli, and their adds are independent:
    /// no carry chain per limb product.
    #[inline(always)]
    fn reduce_columns(&self, m: &mut [u32], out: &mut [u32], column: impl Fn(usize) -> (u64, u64)) {
        let k = self.limbs();
        let n = self.n.as_slice();
        let mut carry = 0u64;
        for c in 0..2 * k - 1 {
            let (mut lo, mut hi) = column(c);
            lo += carry;
            let first = (c + 1).saturating_sub(k);
            if c < k {
                // m_0..m_(c-1) with n_c..n_1, then the new m_c with n_0.
                dot(
                    &mut lo,
                    &mut hi,
                    m.get(..c).unwrap_or_default(),
                    n.get(1..=c),
                );
                let mc = (lo as u32).wrapping_mul(self.n0);
                if let Some(slot) = m.get_mut(c) {
                    *slot = mc;
                }
                let p = u64::from(mc) * u64::from(self.low_limb());
                lo += p & 0xffff_ffff;
                hi += p >> 32;
            } else {
                dot(
                    &mut lo,
                    &mut hi,
                    m.get(first..).unwrap_or_default(),
                    n.get(first..),
                );
                if let Some(slot) = out.get_mut(c - k) {
                    *slot = lo as u32;
                }
            }
            carry = (lo >> 32) + hi;
        }
        // Columns k..2k-2 filled out[..k-1]; what is left is limb k-1 and a top bit.
        if let Some(slot) = out.last_mut() {
            *slot = carry as u32;
        }
        let top = carry >> 32;
        // The result is below 2n: one subtraction at most.
        if top != 0 || ge(out, n) {
            sub_assign(out, n);
        }
    }

    /// The modulus' lowest limb.
    fn low_limb(&self) -> u32 {
        self.n.first().copied().unwrap_or(1)
    }

    /// `a * b * R^-1 mod n` into `out`; `m` is k limbs of scratch.
    fn mul(&self, a: &[u32], b: &[u32], m: &mut [u32], out: &mut [u32]) {
        let k = self.limbs();
        self.reduce_columns(m, out, |c| {
            let first = (c + 1).saturating_sub(k);
            let (mut lo, mut hi) = (0, 0);
            dot(
                &mut lo,
                &mut hi,
                a.get(first..=c.min(k - 1)).unwrap_or_default(),
                b.get(c - c.min(k - 1)..=c - first),
            );
            (lo, hi)
        });
    }

    /// `a^2 * R^-1 mod n` into `out`: each cross product once, doubled, plus the square of
    /// the middle limb.
    fn square(&self, a: &[u32], m: &mut [u32], out: &mut [u32]) {
        let k = self.limbs();
        self.reduce_columns(m, out, |c| {
            let first = (c + 1).saturating_sub(k);
            // Cross products a_i * a_(c-i) with i < c - i.
            let last = c.div_ceil(2);
            let (mut lo, mut hi) = (0, 0);
            if first < last {
                dot(
                    &mut lo,
                    &mut hi,
                    a.get(first..last).unwrap_or_default(),
                    a.get(c + 1 - last..=c - first),
                );
            }
            lo *= 2;
            hi *= 2;
            if c % 2 == 0 {
                if let Some(mid) = a.get(c / 2) {
                    let p = u64::from(*mid) * u64::from(*mid);
                    lo += p & 0xffff_ffff;
                    hi += p >> 32;
                }
            }
            (lo, hi)
        });
    }

    /// `s^65537 mod n` as big-endian bytes as long as `n`'s limbs; None when `s` (big-endian)
    /// is not below `n`.
    pub fn pow_65537(&self, s: &[u8]) -> Option<Vec<u8>> {
        let k = self.limbs();
        if s.len() > 4 * k {
            return None;
        }
        let s = limbs_from_be(s, k);
        if ge(&s, &self.n) {
            return None;
        }
        let mut t = vec![0u32; k];
        let mut x = vec![0u32; k];
        let mut y = vec![0u32; k];
        // Into Montgomery form (s * R), then 16 squarings: s^65536 * R.
        self.mul(&s, &self.r2, &mut t, &mut x);
        for _ in 0..8 {
            self.square(&x, &mut t, &mut y);
            self.square(&y, &mut t, &mut x);
        }
        // Multiplying by plain s drops the R: s^65537.
        self.mul(&x, &s, &mut t, &mut y);
        Some(y.iter().rev().flat_map(|l| l.to_be_bytes()).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, NonZero, Odd};

    /// The same power by crypto-bigint's general exponentiation.
    fn reference(n: &[u8], s: &[u8]) -> Vec<u8> {
        let bits = u32::try_from(n.len().div_ceil(8) * 64).unwrap();
        let n = BoxedUint::from_be_slice(n, bits).unwrap();
        let params = BoxedMontyParams::new_vartime(Odd::new(n).unwrap());
        let s = BoxedUint::from_be_slice(s, bits).unwrap();
        let e = BoxedUint::from(65537u32);
        BoxedMontyForm::new(s, &params)
            .pow(&e)
            .retrieve()
            .to_be_bytes()
            .to_vec()
    }

    /// A deterministic byte stream (xorshift) for moduli and bases.
    fn bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 24) as u8
            })
            .collect()
    }

    fn check(n: &[u8], s: &[u8]) {
        let got = Modulus::new(n).unwrap().pow_65537(s).unwrap();
        let want = reference(n, s);
        // Each is as long as whole limbs; compare the values.
        let trim = |v: &[u8]| {
            v.iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(trim(&got), trim(&want), "n = {n:02x?}, s = {s:02x?}");
    }

    #[test]
    fn agrees_with_crypto_bigint_on_random_values() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for len in [256usize, 384, 512, 257, 33, 8, 5] {
            for round in 0..8 {
                let mut n = bytes(&mut seed, len);
                // Half with a full top byte, half with whatever the stream gave.
                if round % 2 == 0 {
                    n[0] |= 0x80;
                }
                n[0] |= 1;
                n[len - 1] |= 1;
                let mut s = bytes(&mut seed, len);
                s[0] %= n[0];
                check(&n, &s);
            }
        }
    }

    #[test]
    fn agrees_on_extreme_values() {
        // All-ones moduli maximise every carry; n - 1, 0, 1 and 2 are the edge bases.
        for len in [256usize, 512] {
            let n = vec![0xffu8; len];
            let mut n_minus_1 = n.clone();
            n_minus_1[len - 1] = 0xfe;
            for s in [n_minus_1, vec![0], vec![1], vec![2], vec![0xff; len - 1]] {
                check(&n, &s);
            }
        }
        // A top limb of 1: R is far above n.
        let mut n = vec![0x5bu8; 257];
        n[0] = 1;
        check(&n, &[0x42; 200]);
    }

    #[test]
    fn refuses_bases_not_below_the_modulus() {
        let n = [0xc3u8; 256];
        let m = Modulus::new(&n).unwrap();
        assert!(m.pow_65537(&n).is_none());
        assert!(m.pow_65537(&[0xffu8; 256]).is_none());
        assert!(m.pow_65537(&[1u8; 257]).is_none());
        let mut below = n;
        below[255] -= 1;
        assert!(m.pow_65537(&below).is_some());
    }

    /// A value as crypto-bigint sees it, at a precision that holds `2 * R^2` for k limbs.
    fn big(limbs: &[u32], k: usize) -> BoxedUint {
        let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        BoxedUint::from_le_slice(&bytes, 64 * (k as u32 + 1)).unwrap()
    }

    /// Moduli that stress the carries and the final subtraction (little-endian limbs, odd,
    /// top limb not zero): all ones, `2^(32k) - c`, `n0 = 1` (low limb all ones),
    /// `n0 = -1` (low limb 1), alternating limbs, top limb all ones, top limb 1, random.
    fn adversarial_moduli(k: usize, seed: &mut u64) -> Vec<Vec<u32>> {
        let mut random = || {
            let mut n: Vec<u32> = bytes(seed, 4 * k)
                .chunks(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            n[0] |= 1;
            n[k - 1] |= 1 << 7;
            n
        };
        let mut list = vec![vec![u32::MAX; k]];
        for c in [3, 0x1_2345] {
            let mut n = vec![u32::MAX; k];
            n[0] = u32::MAX - c + 1;
            list.push(n);
        }
        let mut n = random();
        n[0] = u32::MAX;
        list.push(n);
        if k > 1 {
            let mut n = random();
            n[0] = 1;
            list.push(n);
        }
        let mut n: Vec<u32> = (0..k)
            .map(|i| {
                if (k - 1 - i).is_multiple_of(2) {
                    u32::MAX
                } else {
                    0
                }
            })
            .collect();
        n[0] |= 1;
        list.push(n);
        let mut n = random();
        n[k - 1] = u32::MAX;
        list.push(n);
        if k > 1 {
            let mut n = random();
            n[k - 1] = 1;
            list.push(n);
        }
        list.push(random());
        list
    }

    /// `mul` and `square` on 1..=140 limbs (every size to 24, then those around the RSA
    /// sizes and the largest, to keep the debug build's run short) against crypto-bigint: `out * R == a * b (mod n)`
    /// with `out < n`. The value before the final subtraction, `(a * b + m * n) / R`, is
    /// rebuilt from the quotient limbs `m` so that both branches (and the top-carry case)
    /// are seen to run; `R^2 mod n` is checked too.
    #[test]
    fn mul_and_square_agree_with_crypto_bigint_on_both_subtraction_branches() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        let (mut subtracted, mut kept, mut carried) = (0, 0, 0);
        let sizes = [31, 32, 33, 48, 63, 64, 65, 96, 97, 127, 128, 129, 140];
        for k in (1..=24usize).chain(sizes) {
            let shift = 32 * k as u32;
            for n in adversarial_moduli(k, &mut seed) {
                let be: Vec<u8> = n.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
                let m = Modulus::new(&be).unwrap();
                let nb = big(&n, k);
                let nz = NonZero::new(nb.clone()).unwrap();
                let r2 = BoxedUint::one_with_precision(64 * (k as u32 + 1))
                    .shl(2 * shift)
                    .rem_vartime(&nz);
                assert_eq!(big(&m.r2, k), r2, "R^2 mod n, n = {n:08x?}");

                // 0, 1, n - 1, n - 2, the largest all-ones value below n, and random values.
                let one = BoxedUint::one_with_precision(64 * (k as u32 + 1));
                let mut ops = vec![
                    BoxedUint::zero_with_precision(64 * (k as u32 + 1)),
                    one.clone(),
                    nb.wrapping_sub(&one),
                    nb.wrapping_sub(&one).wrapping_sub(&one),
                    one.shl(nb.bits() - 1).wrapping_sub(&one),
                ];
                for _ in 0..4 {
                    ops.push(
                        BoxedUint::from_le_slice_vartime(&bytes(&mut seed, 4 * k)).rem_vartime(&nz),
                    );
                }
                let ops: Vec<Vec<u32>> = ops
                    .iter()
                    .map(|x| {
                        x.to_le_bytes()
                            .chunks(4)
                            .take(k)
                            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                            .collect()
                    })
                    .collect();
                let (mut scratch, mut out) = (vec![0u32; k], vec![0u32; k]);
                for (i, a) in ops.iter().enumerate() {
                    for (squaring, b) in [(true, a), (false, &ops[(i + 1) % ops.len()])] {
                        if squaring {
                            m.square(a, &mut scratch, &mut out);
                        } else {
                            m.mul(a, b, &mut scratch, &mut out);
                        }
                        let (ab, ob) = (big(a, k).wrapping_mul(big(b, k)), big(&out, k));
                        assert!(ob < nb, "out >= n, n = {n:08x?}, a = {a:08x?}");
                        assert_eq!(ob.shl(shift).rem_vartime(&nz), ab.rem_vartime(&nz));
                        let t = ab.wrapping_add(big(&scratch, k).wrapping_mul(&nb));
                        assert!(bool::from(t.shl(64 * (k as u32 + 1) - shift).is_zero()));
                        let before = t.shr(shift);
                        if before >= nb {
                            assert_eq!(before.wrapping_sub(&nb), ob);
                            subtracted += 1;
                            if before.bits() > shift {
                                carried += 1;
                            }
                        } else {
                            assert_eq!(before, ob);
                            kept += 1;
                        }
                    }
                }
            }
        }
        assert!(subtracted > 0 && kept > 0 && carried > 0);
        eprintln!("subtracted {subtracted} (carry {carried}), kept {kept}");
    }

    #[test]
    fn refuses_even_or_trivial_moduli() {
        assert!(Modulus::new(&[0x12, 0x34]).is_none());
        assert!(Modulus::new(&[0, 0, 1]).is_none());
        assert!(Modulus::new(&[]).is_none());
        assert!(Modulus::new(&[0, 0]).is_none());
        assert!(Modulus::new(&[0, 3]).is_some());
    }
}
