//! Points of the NIST curves `y^2 = x^3 - 3x + b` for ECDSA verification (`ecdsa_p256.rs`,
//! `ecdsa_p384.rs`), generic over the field: Jacobian coordinates with a = -3 doubling and
//! mixed additions, tables of odd multiples per scalar piece (see `wnaf.rs`), and the
//! double-scalar multiplication `u1*G + u2*Q` with one pass of doublings for all pieces.
//! Verification works on public values only, so variable time is fine.

use std::fmt::Debug;

use crate::crypto::wnaf::{self, PIECE_BITS};

/// A prime field, with elements kept by value.
pub trait Field: Copy + Debug + PartialEq + 'static {
    /// The size of an element's big-endian encoding.
    const BYTES: usize;
    fn zero() -> Self;
    fn one() -> Self;
    /// A big-endian value of [`Field::BYTES`] bytes; None unless it is below the prime.
    fn from_be_bytes(bytes: &[u8]) -> Option<Self>;
    fn is_zero(&self) -> bool;
    fn add(&self, b: &Self) -> Self;
    fn sub(&self, b: &Self) -> Self;
    fn neg(&self) -> Self;
    fn double(&self) -> Self;
    fn mul(&self, b: &Self) -> Self;
    fn square(&self) -> Self;
    /// The prime minus 2, little-endian 32-bit limbs: the exponent of [`Field::invert`].
    const P_MINUS_2: &'static [u32];

    /// `self^(p-2)`: the inverse of a non-zero element (Fermat), zero for zero. Only used
    /// when tables are built, once per key and once per VM for the generator.
    fn invert(&self) -> Self {
        let mut acc = Self::one();
        for limb in Self::P_MINUS_2.iter().rev() {
            for bit in (0..32).rev() {
                acc = acc.square();
                if (limb >> bit) & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }
}

/// A curve's constants for ECDSA verification.
pub trait Curve {
    type F: Field;
    /// The group order n, big-endian.
    const N: &'static [u8];
    /// Window widths: 2^(w-2) odd multiples per table. The generator's tables are shared by
    /// every key, so they can be wider.
    const G_WINDOW: u32;
    const KEY_WINDOW: u32;
    fn generator_tables() -> &'static [Vec<Affine<Self::F>>];
}

/// A point in affine coordinates, never the point at infinity.
#[derive(Clone, Copy, Debug)]
pub struct Affine<F> {
    pub x: F,
    pub y: F,
}

/// A point in Jacobian coordinates `(X/Z^2, Y/Z^3)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
pub struct Jacobian<F> {
    pub x: F,
    pub y: F,
    pub z: F,
}

/// The odd multiples of `2^(16j) * P` for each piece j: the tables of one point.
pub type Tables<F> = Vec<Vec<Affine<F>>>;

impl<F: Field> Affine<F> {
    pub fn neg(&self) -> Affine<F> {
        Affine {
            x: self.x,
            y: self.y.neg(),
        }
    }
}

impl<F: Field> Jacobian<F> {
    pub fn infinity() -> Jacobian<F> {
        Jacobian {
            x: F::one(),
            y: F::one(),
            z: F::zero(),
        }
    }

    pub fn from_affine(a: &Affine<F>) -> Jacobian<F> {
        Jacobian {
            x: a.x,
            y: a.y,
            z: F::one(),
        }
    }

    pub fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    /// Doubling for a = -3 ("dbl-2001-b", 3M + 5S).
    pub fn double(&self) -> Jacobian<F> {
        if self.is_infinity() || self.y.is_zero() {
            return Jacobian::infinity();
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&gamma2_8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `self + q` with q affine ("madd", 7M + 4S), including the cases the formula cannot
    /// take: either side at infinity, equal points (a doubling) and opposite points.
    pub fn add_affine(&self, q: &Affine<F>) -> Jacobian<F> {
        if self.is_infinity() {
            return Jacobian::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::infinity()
            };
        }
        Jacobian::sum(&self.x, &self.y, &h, &r, self.z.mul(&h))
    }

    /// The end of both additions: from `u1 = X1*Z2^2`, `s1 = Y1*Z2^3`, `h = u2 - u1`,
    /// `r = s2 - s1` (h not zero) and `Z1*Z2*h`.
    fn sum(u1: &F, s1: &F, h: &F, r: &F, z3: F) -> Jacobian<F> {
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = u1.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&hhh));
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `self + q` for two Jacobian points ("add-2007-bl", 11M + 5S), with the same special
    /// cases as [`Jacobian::add_affine`]. Only used to build tables.
    pub fn add(&self, q: &Jacobian<F>) -> Jacobian<F> {
        if self.is_infinity() {
            return *q;
        }
        if q.is_infinity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = q.x.mul(&z1z1);
        let s1 = self.y.mul(&q.z).mul(&z2z2);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::infinity()
            };
        }
        Jacobian::sum(&u1, &s1, &h, &r, self.z.mul(&q.z).mul(&h))
    }
}

/// Affine forms of Jacobian points with one field inversion (Montgomery's trick); None for
/// the point at infinity.
pub fn to_affine_each<F: Field>(points: &[Jacobian<F>]) -> Vec<Option<Affine<F>>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = F::one();
    for p in points {
        prefix.push(acc);
        if !p.is_infinity() {
            acc = acc.mul(&p.z);
        }
    }
    let mut inv = acc.invert();
    let mut out = vec![None; points.len()];
    for ((p, before), slot) in points.iter().zip(prefix).zip(out.iter_mut()).rev() {
        if p.is_infinity() {
            continue;
        }
        let zinv = inv.mul(&before);
        inv = inv.mul(&p.z);
        let zinv2 = zinv.square();
        *slot = Some(Affine {
            x: p.x.mul(&zinv2),
            y: p.y.mul(&zinv2).mul(&zinv),
        });
    }
    out
}

/// The number of pieces of a scalar as wide as the field.
fn pieces<F: Field>() -> usize {
    F::BYTES * 8 / PIECE_BITS
}

/// The tables of a point: for each piece j, the odd multiples `Q, 3Q, 5Q, ...` of
/// `Q = 2^(16j) * P`, 2^(w-2) of them, built in Jacobian form and brought to affine form
/// together with a single field inversion.
pub fn tables<F: Field>(p: &Affine<F>, w: u32) -> Option<Tables<F>> {
    let count = 1usize << (w - 2);
    let mut all = Vec::with_capacity(pieces::<F>() * count);
    let mut base = Jacobian::from_affine(p);
    for j in 0..pieces::<F>() {
        if j > 0 {
            for _ in 0..PIECE_BITS {
                base = base.double();
            }
        }
        let two = base.double();
        let mut acc = base;
        for _ in 0..count {
            all.push(acc);
            acc = acc.add(&two);
        }
    }
    // None if any multiple were at infinity, which needs k * P = O for some k below the
    // (prime) group order: impossible for a point on the curve other than O.
    to_affine_each(&all)
        .chunks(count)
        .map(|table| table.iter().copied().collect::<Option<Vec<_>>>())
        .collect()
}

/// The tables of a curve's generator, from its big-endian coordinates: built once per VM by
/// the curve. Empty (failing every check) if the constants were not a point.
pub fn generator<F: Field>(x: &[u8], y: &[u8], w: u32) -> Tables<F> {
    F::from_be_bytes(x)
        .zip(F::from_be_bytes(y))
        .and_then(|(x, y)| tables(&Affine { x, y }, w))
        .unwrap_or_default()
}

fn table_entry<F: Field>(table: &[Affine<F>], digit: i8) -> Option<Affine<F>> {
    let p = wnaf::entry(table, digit)?;
    Some(if digit < 0 { p.neg() } else { *p })
}

/// One side of `u1*G + u2*Q`: a big-endian scalar, the tables of its point and their window.
struct Side<'a, F> {
    scalar_be: &'a [u8],
    tables: &'a [Vec<Affine<F>>],
    window: u32,
}

/// `a + b` for two scalars with their points' tables; None if a table set does not fit the
/// field's scalars, or a scalar its tables.
fn double_scalar<F: Field>(a: Side<F>, b: Side<F>) -> Option<Jacobian<F>> {
    if a.tables.len() != pieces::<F>() || b.tables.len() != pieces::<F>() {
        return None;
    }
    let terms: Vec<_> = wnaf::terms(a.scalar_be, a.tables, a.window)?
        .chain(wnaf::terms(b.scalar_be, b.tables, b.window)?)
        .collect();
    let mut acc = Jacobian::infinity();
    for i in (0..=PIECE_BITS).rev() {
        acc = acc.double();
        for (table, digits) in &terms {
            match digits.get(i) {
                Some(0) | None => {}
                Some(d) => acc = acc.add_affine(&table_entry(table, *d)?),
            }
        }
    }
    Some(acc)
}

/// ECDSA verification once the scalars are known (`u1 = z/s`, `u2 = r/s` modulo n, all
/// big-endian and as wide as the field): `u1*G + u2*Q` has x coordinate r modulo n. None if
/// a table set or a scalar does not fit the curve, or r is not below n.
pub fn ecdsa_check<C: Curve>(
    key_tables: &[Vec<Affine<C::F>>],
    u1: &[u8],
    u2: &[u8],
    r: &[u8],
) -> Option<bool> {
    // The final check would also take r = x(R) when x(R) >= n, which is no valid r: refused
    // here rather than left to the callers' parsers. (Same widths: byte order is number order.)
    if r.len() != C::N.len() || r >= C::N {
        return None;
    }
    // u1's pieces go with the generator's tables, u2's with the key's.
    let p = double_scalar(
        Side {
            scalar_be: u1,
            tables: C::generator_tables(),
            window: C::G_WINDOW,
        },
        Side {
            scalar_be: u2,
            tables: key_tables,
            window: C::KEY_WINDOW,
        },
    )?;
    Some(x_mod_n_is(&p, r, C::N))
}

/// ECDSA's final check: the x coordinate of `p`, reduced modulo the group order `n`, equals
/// `r` (both big-endian, as wide as the field). Compares `r*Z^2` with X, and `(r + n)*Z^2`
/// too when `r + n` is still below the prime (x is below the prime, n just below it).
fn x_mod_n_is<F: Field>(p: &Jacobian<F>, r_be: &[u8], n_be: &[u8]) -> bool {
    if p.is_infinity() {
        return false;
    }
    let zz = p.z.square();
    if F::from_be_bytes(r_be).is_some_and(|r| r.mul(&zz) == p.x) {
        return true;
    }
    add_be(r_be, n_be)
        .and_then(|sum| F::from_be_bytes(&sum))
        .is_some_and(|v| v.mul(&zz) == p.x)
}

/// `a + b` for big-endian numbers of one width; None when the sum does not fit.
fn add_be(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    if a.len() != b.len() {
        return None;
    }
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b).rev() {
        let s = u16::from(*x) + u16::from(*y) + carry;
        *o = s as u8;
        carry = s >> 8;
    }
    (carry == 0).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;

    /// A xorshift generator for test inputs: fixed seeds, so a failure reproduces.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// A 32-bit limb: one of the patterns where carries, borrows and folds pile up, or
        /// (one time in ten) random.
        pub fn limb(&mut self) -> u32 {
            const PATTERNS: [u32; 9] = [
                0,
                1,
                2,
                0x7fff_ffff,
                0x8000_0000,
                0xffff_fffe,
                0xffff_ffff,
                0xffff_0000,
                0x0000_ffff,
            ];
            PATTERNS
                .get(self.below(PATTERNS.len() + 1))
                .copied()
                .unwrap_or(self.next() as u32)
        }
    }

    #[test]
    fn big_endian_sums() {
        assert_eq!(add_be(&[0x01, 0xff], &[0x00, 0x01]), Some(vec![0x02, 0x00]));
        assert_eq!(add_be(&[0xff, 0xff], &[0x00, 0x01]), None);
        assert_eq!(add_be(&[0x01], &[0x00, 0x01]), None);
    }
}
