//! ES256 verification (ECDSA over P-256 with SHA-256, RFC 7518 §3.4): `u1*G + u2*Q` by
//! interleaved wNAF in Jacobian coordinates over `p256_field`. Each scalar is cut into
//! pieces, and each piece has its own table of odd multiples of `2^(16j)` times the point
//! (the generator's built once per VM, each key's once per key), so one pass of 16 doublings
//! serves every piece instead of 256 doublings for two whole scalars (see `wnaf.rs`). The `p256` crate still
//! checks the key is on the curve, parses and range-checks `r` and `s`, and does the scalar
//! arithmetic modulo the group order (one inversion per signature). Verification works on
//! public values only, so variable time is fine.

use std::sync::OnceLock;

use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::PrimeField;
use p256::{FieldBytes, Scalar};

use crate::p256_field::Fe;
use crate::wnaf::{self, PIECES, PIECE_BITS};

/// A point in affine coordinates, never the point at infinity.
#[derive(Clone, Copy, Debug)]
struct Affine {
    x: Fe,
    y: Fe,
}

/// A point in Jacobian coordinates `(X/Z^2, Y/Z^3)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

const INFINITY: Jacobian = Jacobian {
    x: Fe::ONE,
    y: Fe::ONE,
    z: Fe::ZERO,
};

/// Window widths: 2^(w-2) odd multiples per table. The generator's tables are shared by
/// every key, so they can be wider: 16 tables of 32 points, 32 KB per VM; 8 KB per key.
const G_WINDOW: u32 = 7;

/// The generator's coordinates (SEC 2, NIST SP 800-186 G.1.2), big-endian.
const G_X: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
const G_Y: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];
const KEY_WINDOW: u32 = 5;

/// The odd multiples of `2^(16j) * P` for each piece j: the tables of one point.
type Tables = Vec<Vec<Affine>>;

impl Affine {
    fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: self.y.neg(),
        }
    }
}

impl Jacobian {
    fn from_affine(a: &Affine) -> Jacobian {
        Jacobian {
            x: a.x,
            y: a.y,
            z: Fe::ONE,
        }
    }

    fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    /// Doubling for a = -3 ("dbl-2001-b", 3M + 5S).
    fn double(&self) -> Jacobian {
        if self.is_infinity() || self.y.is_zero() {
            return INFINITY;
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
    fn add_affine(&self, q: &Affine) -> Jacobian {
        if self.is_infinity() {
            return Jacobian::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            return if r.is_zero() { self.double() } else { INFINITY };
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = self.x.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&hhh));
        Jacobian {
            x: x3,
            y: y3,
            z: self.z.mul(&h),
        }
    }

    /// `self + q` for two Jacobian points ("add-2007-bl", 11M + 5S), with the same special
    /// cases as [`Jacobian::add_affine`]. Only used to build tables.
    fn add(&self, q: &Jacobian) -> Jacobian {
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
            return if r.is_zero() { self.double() } else { INFINITY };
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = u1.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&hhh));
        Jacobian {
            x: x3,
            y: y3,
            z: self.z.mul(&q.z).mul(&h),
        }
    }
}

/// Affine forms of Jacobian points with one field inversion (Montgomery's trick); None for
/// the point at infinity.
fn to_affine_each(points: &[Jacobian]) -> Vec<Option<Affine>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::ONE;
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

/// The tables of a point: for each piece j, the odd multiples `Q, 3Q, 5Q, ...` of
/// `Q = 2^(16j) * P`, 2^(w-2) of them, built in Jacobian form and brought to affine form
/// together with a single field inversion.
fn tables(p: &Affine, w: u32) -> Option<Tables> {
    let count = 1usize << (w - 2);
    let mut all = Vec::with_capacity(PIECES * count);
    let mut base = Jacobian::from_affine(p);
    for j in 0..PIECES {
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

fn table_entry(table: &[Affine], digit: i8) -> Option<Affine> {
    let p = wnaf::entry(table, digit)?;
    Some(if digit < 0 { p.neg() } else { *p })
}

fn generator_tables() -> &'static [Vec<Affine>] {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let g = Fe::from_be_bytes(&G_X)
            .zip(Fe::from_be_bytes(&G_Y))
            .map(|(x, y)| Affine { x, y });
        // Both coordinates are constants below p; an empty table set fails every check.
        g.and_then(|g| tables(&g, G_WINDOW)).unwrap_or_default()
    })
}

/// A P-256 public key with its tables of odd multiples.
pub struct P256Key {
    tables: Tables,
}

impl P256Key {
    /// `x`, `y`: big-endian coordinates. The point must already be known to be on the curve
    /// (the caller decodes it with the `p256` crate, which checks that).
    pub fn new(x: &[u8; 32], y: &[u8; 32]) -> Option<P256Key> {
        let q = Affine {
            x: Fe::from_be_bytes(x)?,
            y: Fe::from_be_bytes(y)?,
        };
        tables(&q, KEY_WINDOW).map(|tables| P256Key { tables })
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
        let g = generator_tables();
        if g.len() != PIECES || self.tables.len() != PIECES {
            return None;
        }
        // u1's pieces go with the generator's tables, u2's with the key's.
        let terms: Vec<_> = wnaf::terms(&u1, g, G_WINDOW)
            .chain(wnaf::terms(&u2, &self.tables, KEY_WINDOW))
            .collect();
        let mut acc = INFINITY;
        for i in (0..=PIECE_BITS).rev() {
            acc = acc.double();
            for (table, digits) in &terms {
                match digits.get(i) {
                    Some(0) | None => {}
                    Some(d) => acc = acc.add_affine(&table_entry(table, *d)?),
                }
            }
        }
        if acc.is_infinity() {
            return Some(false);
        }
        // The x coordinate X/Z^2, reduced modulo n, must equal r: compare r*Z^2 with X, and
        // (r + n)*Z^2 too when r + n is still below p (x is below p, n is just below it).
        let r_bytes: [u8; 32] = r.to_repr().into();
        let zz = acc.z.square();
        if Fe::from_be_bytes(&r_bytes)?.mul(&zz) == acc.x {
            return Some(true);
        }
        let r_plus_n = add_order(&r_bytes)?;
        Some(Fe::from_be_bytes(&r_plus_n).is_some_and(|v| v.mul(&zz) == acc.x))
    }
}

/// `r + n` as 32 big-endian bytes; None when it does not fit.
fn add_order(r: &[u8; 32]) -> Option<[u8; 32]> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for ((o, a), b) in out.iter_mut().zip(r).zip(N).rev() {
        let s = u16::from(*a) + u16::from(b) + carry;
        *o = s as u8;
        carry = s >> 8;
    }
    (carry == 0).then_some(out)
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

    #[test]
    fn jacobian_addition_agrees_with_mixed_addition() {
        let g = generator_tables()[0][0];
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
        assert!(INFINITY.add(&INFINITY).is_infinity());
        let left = to_affine_each(&[INFINITY.add(&three)])[0].unwrap();
        let right = to_affine_each(&[three.add(&INFINITY)])[0].unwrap();
        let plain = to_affine_each(&[three])[0].unwrap();
        assert_eq!((left.x, left.y), (plain.x, plain.y));
        assert_eq!((right.x, right.y), (plain.x, plain.y));
    }

    #[test]
    fn opposite_and_equal_points_add_correctly() {
        let g = generator_tables()[0][0];
        let jg = Jacobian::from_affine(&g);
        assert!(jg.add_affine(&g.neg()).is_infinity());
        let doubled = to_affine_each(&[jg.add_affine(&g)])[0].unwrap();
        let direct = to_affine_each(&[jg.double()])[0].unwrap();
        assert_eq!((doubled.x, doubled.y), (direct.x, direct.y));
        assert!(INFINITY.double().is_infinity());
        let from_inf = to_affine_each(&[INFINITY.add_affine(&g)])[0].unwrap();
        assert_eq!((from_inf.x, from_inf.y), (g.x, g.y));
    }
}
