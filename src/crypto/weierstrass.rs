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
    use p256::elliptic_curve::group::Curve as _;
    use p256::elliptic_curve::ops::MulByGeneratorVartime;
    use p256::elliptic_curve::point::{AffineCoordinates, DecompressPoint};
    use p256::elliptic_curve::subtle::Choice;
    use p256::elliptic_curve::FieldBytes;
    use p256::elliptic_curve::{CurveArithmetic, Field as _, Group, PrimeField};

    pub(crate) use crate::test_rng::Rng;

    type Scalar<E> = <E as CurveArithmetic>::Scalar;
    type Point<E> = <E as CurveArithmetic>::ProjectivePoint;

    /// A big-endian number as the reference crate's scalar; None unless it is below n.
    fn scalar<E: CurveArithmetic>(be: &[u8]) -> Option<Scalar<E>> {
        let mut repr = <Scalar<E> as PrimeField>::Repr::default();
        repr.copy_from_slice(be);
        Scalar::<E>::from_repr(repr).into()
    }

    fn be<E: CurveArithmetic>(k: &Scalar<E>) -> Vec<u8> {
        k.to_repr().to_vec()
    }

    /// The reference crate's point in our form; None for the identity.
    fn ours<C: Curve, E: CurveArithmetic>(p: &Point<E>) -> Option<Affine<C::F>> {
        if bool::from(p.is_identity()) {
            return None;
        }
        let a = p.to_affine();
        Some(Affine {
            x: C::F::from_be_bytes(a.x().as_ref())?,
            y: C::F::from_be_bytes(a.y().as_ref())?,
        })
    }

    fn affine<F: Field>(p: &Jacobian<F>) -> Option<(F, F)> {
        to_affine_each(&[*p])[0].map(|a| (a.x, a.y))
    }

    /// A scalar of 16-bit pieces from values whose recodings line up with each other (half
    /// the pieces zero, so that few terms meet in the loop); the top piece is cleared when
    /// the scalar is not below n.
    fn structured<E: CurveArithmetic>(rng: &mut Rng, bytes: usize) -> Scalar<E> {
        const PIECES: [u16; 16] = [
            0, 1, 2, 3, 5, 7, 9, 15, 16, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x5555,
        ];
        let mut be: Vec<u8> = (0..bytes / 2)
            .flat_map(|_| {
                let piece = if rng.below(2) == 0 {
                    0
                } else {
                    PIECES[rng.below(16)]
                };
                piece.to_be_bytes()
            })
            .collect();
        scalar::<E>(&be).unwrap_or_else(|| {
            be[..2].fill(0);
            scalar::<E>(&be).unwrap()
        })
    }

    /// How often the loop of `double_scalar` met each addition its formula cannot do.
    #[derive(Debug, Default)]
    pub(crate) struct Exceptional {
        /// The sum so far equal to the table entry: a doubling.
        pub equal: usize,
        /// The sum so far the entry's opposite: the point at infinity.
        pub opposite: usize,
        /// The sum so far at infinity: the entry itself.
        pub from_infinity: usize,
        pub products: usize,
        pub infinite_results: usize,
    }

    /// The loop of `double_scalar`, replayed on discrete logarithms: every point here is a
    /// multiple of G, which has prime order n, so two points are equal (or opposite) exactly
    /// when their multiples are equal (or opposite) modulo n. Each side is a big-endian
    /// scalar, the multiple of G its tables are of, and their window. Returns the sum.
    fn replay<E: CurveArithmetic>(
        sides: [(&[u8], Scalar<E>, u32); 2],
        counts: &mut Exceptional,
    ) -> Scalar<E> {
        let mut terms = Vec::new();
        for (scalar_be, log, w) in sides {
            // The multiple of G of the point 2^(16j) * P whose table piece j uses.
            let mut base = log;
            for piece in wnaf::pieces(scalar_be) {
                if piece != 0 {
                    terms.push((base, wnaf::digits(piece, w)));
                }
                base *= Scalar::<E>::from(1u64 << PIECE_BITS);
            }
        }
        let mut acc = Scalar::<E>::ZERO;
        for i in (0..=PIECE_BITS).rev() {
            acc = acc.double();
            for (base, digits) in &terms {
                let d = digits[i];
                if d == 0 {
                    continue;
                }
                let mut entry = *base * Scalar::<E>::from(u64::from(d.unsigned_abs()));
                if d < 0 {
                    entry = -entry;
                }
                if bool::from(acc.is_zero()) {
                    counts.from_infinity += 1;
                } else if acc == entry {
                    counts.equal += 1;
                } else if acc == -entry {
                    counts.opposite += 1;
                }
                acc += entry;
            }
        }
        acc
    }

    /// `double_scalar` (u1 with the generator's tables, u2 with a key's) against the
    /// reference crate's `u1*G + u2*Q`, on keys `Q = c*G` for small and structured c and on
    /// structured scalars, with u2 = u1/c (the sum is 2*u1*G) and u2 = -u1/c (infinity)
    /// among them: those make the sum so far meet table entries inside the loop. Asserts
    /// that every exceptional addition happened, and returns how often.
    pub(crate) fn double_scalar_agrees<C: Curve, E: CurveArithmetic>(rounds: usize) -> Exceptional {
        let mut rng = Rng(0x1f83_d9ab_fb41_bd6b);
        let pow2 = |e: usize| (0..e).fold(Scalar::<E>::ONE, |k, _| k.double());
        let top = pow2(PIECE_BITS * (pieces::<C::F>() - 1));
        let small = |c: u64| Scalar::<E>::from(c);
        let keys = [
            small(1),
            -small(1),
            small(2),
            -small(2),
            small(3),
            pow2(16),
            -pow2(16),
            small(3) * pow2(16),
            pow2(32),
            pow2(16) + small(1),
            small(0x7fff),
            top,
            -top,
            structured::<E>(&mut rng, C::F::BYTES),
            scalar::<E>(&rng.bytes(C::F::BYTES)).unwrap_or(small(5)),
        ];
        let g = Point::<E>::generator();
        let mut counts = Exceptional::default();
        for c in keys {
            let key = g * c;
            let key_tables = tables(&ours::<C, E>(&key).unwrap(), C::KEY_WINDOW).unwrap();
            let c_inv = c.invert().unwrap();
            for round in 0..rounds {
                let u1 = structured::<E>(&mut rng, C::F::BYTES);
                let u2 = match round % 5 {
                    0 => structured::<E>(&mut rng, C::F::BYTES),
                    1 => u1 * c_inv,
                    2 => -(u1 * c_inv),
                    3 => u1,
                    _ => scalar::<E>(&rng.bytes(C::F::BYTES)).unwrap_or(u1),
                };
                let (u1_be, u2_be) = (be::<E>(&u1), be::<E>(&u2));
                let got = double_scalar(
                    Side {
                        scalar_be: &u1_be,
                        tables: C::generator_tables(),
                        window: C::G_WINDOW,
                    },
                    Side {
                        scalar_be: &u2_be,
                        tables: &key_tables,
                        window: C::KEY_WINDOW,
                    },
                )
                .unwrap();
                // Q = c*G, so the sum is (u1 + u2*c)*G: one multiplication by the reference.
                let want = Point::<E>::mul_by_generator_vartime(&(u1 + u2 * c));
                assert_eq!(
                    affine(&got),
                    ours::<C, E>(&want).map(|a| (a.x, a.y)),
                    "u1 {u1_be:x?} u2 {u2_be:x?}"
                );
                let sides = [
                    (&u1_be[..], Scalar::<E>::ONE, C::G_WINDOW),
                    (&u2_be[..], c, C::KEY_WINDOW),
                ];
                assert_eq!(replay::<E>(sides, &mut counts), u1 + u2 * c);
                counts.products += 1;
                counts.infinite_results += usize::from(got.is_infinity());
            }
        }
        println!("{counts:?}");
        assert!(
            counts.equal > 0 && counts.opposite > 0 && counts.from_infinity > 0,
            "{counts:?}"
        );
        counts
    }

    /// Every entry of a key's tables, and every 7th of the generator's, is its odd multiple
    /// `(2i + 1) * 2^(16j)` of the point, by the reference crate.
    pub(crate) fn tables_hold_odd_multiples<C: Curve, E: CurveArithmetic>() {
        let mut rng = Rng(0x5be0_cd19_137e_2179);
        let g = Point::<E>::generator();
        let c = structured::<E>(&mut rng, C::F::BYTES);
        let key_tables = tables(&ours::<C, E>(&(g * c)).unwrap(), C::KEY_WINDOW).unwrap();
        for (log, all, step) in [
            (c, key_tables.as_slice(), 1),
            (Scalar::<E>::ONE, C::generator_tables(), 7),
        ] {
            assert_eq!(all.len(), pieces::<C::F>());
            let mut base = log;
            for table in all {
                for (i, entry) in table.iter().enumerate().step_by(step) {
                    let multiple = base * Scalar::<E>::from(2 * i as u64 + 1);
                    let want = Point::<E>::mul_by_generator_vartime(&multiple);
                    let want = ours::<C, E>(&want).unwrap();
                    assert_eq!((entry.x, entry.y), (want.x, want.y));
                }
                base *= Scalar::<E>::from(1u64 << PIECE_BITS);
            }
        }
    }

    /// `ecdsa_check` on points whose x is at or above n (x = n + t, decompressed), reached
    /// from random u1, u2 with the key `Q = (R - u1*G) / u2`: r = x - n matches, r + 1 does
    /// not, and r = x, which the comparison alone would take (F3 of the review), is refused.
    /// Scalars, r and table sets of the wrong size are refused too, rather than truncated.
    pub(crate) fn large_x_needs_r_below_n<C: Curve, E: CurveArithmetic>()
    where
        E::AffinePoint: DecompressPoint<E>,
    {
        let mut rng = Rng(0x510e_527f_ade6_82d1);
        let width = C::F::BYTES;
        // t below 2^96 keeps x = n + t below p on both curves; about half of them are points.
        let points: Vec<_> = (0..100)
            .filter_map(|_| {
                let mut t = vec![0u8; width];
                t[width - 12..].copy_from_slice(&rng.bytes(12));
                let x = add_be(C::N, &t)?;
                let mut x_bytes = FieldBytes::<E>::default();
                x_bytes.copy_from_slice(&x);
                let y_is_odd = Choice::from(rng.below(2) as u8);
                let point = E::AffinePoint::decompress(&x_bytes, y_is_odd);
                Some((t, x, Option::<E::AffinePoint>::from(point)?))
            })
            .take(12)
            .collect();
        assert_eq!(points.len(), 12);
        for (t, x, r_point) in points {
            let u1 = scalar::<E>(&rng.bytes(width)).unwrap();
            let u2 = scalar::<E>(&rng.bytes(width)).unwrap();
            let key = (Point::<E>::from(r_point) - Point::<E>::mul_by_generator_vartime(&u1))
                * u2.invert().unwrap();
            let key_tables = tables(&ours::<C, E>(&key).unwrap(), C::KEY_WINDOW).unwrap();
            let (u1, u2) = (be::<E>(&u1), be::<E>(&u2));
            let check = |u1: &[u8], u2: &[u8], r: &[u8]| ecdsa_check::<C>(&key_tables, u1, u2, r);
            assert_eq!(check(&u1, &u2, &t), Some(true));
            let mut t_plus_1 = t.clone();
            t_plus_1[width - 1] ^= 1;
            assert_eq!(check(&u1, &u2, &t_plus_1), Some(false));
            assert_eq!(check(&u1, &u2, &x), None);
            assert_eq!(check(&u1, &u2, C::N), None);
            assert_eq!(check(&u1[1..], &u2, &t), None);
            assert_eq!(check(&u1, &[u2.as_slice(), &[0]].concat(), &t), None);
            assert_eq!(check(&u1, &u2, &t[1..]), None);
            assert_eq!(ecdsa_check::<C>(&key_tables[1..], &u1, &u2, &t), None);
            // A table short and a scalar piece short agree with each other, but not with
            // the curve.
            assert_eq!(ecdsa_check::<C>(&key_tables[1..], &u1, &u2[2..], &t), None);
        }
    }

    #[test]
    fn big_endian_sums() {
        assert_eq!(add_be(&[0x01, 0xff], &[0x00, 0x01]), Some(vec![0x02, 0x00]));
        assert_eq!(add_be(&[0xff, 0xff], &[0x00, 0x01]), None);
        assert_eq!(add_be(&[0x01], &[0x00, 0x01]), None);
    }
}
