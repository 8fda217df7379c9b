//! RSA signature verification (RFC 8017 RSASSA-PKCS1-v1_5 and RSASSA-PSS). The exponent is
//! always 65537 (checked at key load); the arithmetic is in `montgomery.rs`.

use crate::crypto::montgomery::Modulus;
use sha2::{Digest, Sha256, Sha384, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha256 => run::<Sha256>(parts),
            Hash::Sha384 => run::<Sha384>(parts),
            Hash::Sha512 => run::<Sha512>(parts),
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The DER `DigestInfo` header that precedes the hash (RFC 8017 §9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// An RSA public key with exponent 65537.
pub struct RsaKey {
    modulus: Modulus,
    modulus_bits: usize,
    /// The modulus length in bytes: every signature is exactly this long.
    len: usize,
}

/// The length in bits of the big-endian number `be`, leading zero bytes ignored.
pub fn bit_length(be: &[u8]) -> usize {
    let mut rest = be.iter().skip_while(|b| **b == 0);
    rest.next().map_or(0, |top| {
        8 * (rest.count() + 1) - top.leading_zeros() as usize
    })
}

impl RsaKey {
    /// `n`: the big-endian modulus; leading zero bytes are ignored. The caller has checked its
    /// size and that the exponent is 65537.
    pub fn new(n: &[u8]) -> Result<Self, String> {
        let modulus = Modulus::new(n).ok_or("RSA modulus is not an odd number above 1")?;
        let modulus_bits = bit_length(n);
        Ok(Self {
            modulus,
            modulus_bits,
            len: modulus_bits.div_ceil(8),
        })
    }

    /// `sig^65537 mod n` as `len` big-endian bytes; None if `sig` is not a signature
    /// representative for this key (wrong length, or not below the modulus).
    fn public_op(&self, sig: &[u8]) -> Option<Vec<u8>> {
        if sig.len() != self.len {
            return None;
        }
        let m = self.modulus.pow_65537(sig)?;
        // The result is whole limbs; the value is below n, so the extra bytes are zero.
        let (head, tail) = m.split_at_checked(m.len().checked_sub(self.len)?)?;
        head.iter().all(|b| *b == 0).then(|| tail.to_vec())
    }

    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.2): the encoding is rebuilt and compared whole.
    pub fn verify_pkcs1(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.public_op(sig) else {
            return false;
        };
        let prefix = hash.digest_info_prefix();
        let Some(ps_len) = self.len.checked_sub(prefix.len() + hash.len() + 3) else {
            return false;
        };
        let mut expected = Vec::with_capacity(self.len);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(2 + ps_len, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&hash.digest(&[msg]));
        em == expected
    }

    /// RSASSA-PSS (RFC 8017 §9.1.2) with MGF1 over the same hash and a salt as long as the
    /// hash, as RFC 7518 §3.5 fixes for PS256/384/512.
    pub fn verify_pss(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        self.pss_ok(hash, msg, sig).unwrap_or(false)
    }

    fn pss_ok(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> Option<bool> {
        let m = self.public_op(sig)?;
        let em_bits = self.modulus_bits.checked_sub(1)?;
        let em_len = em_bits.div_ceil(8);
        let (head, em) = m.split_at_checked(m.len().checked_sub(em_len)?)?;
        let (h_len, s_len) = (hash.len(), hash.len());
        if head.iter().any(|b| *b != 0) || em_len < h_len + s_len + 2 {
            return Some(false);
        }
        let (last, body) = em.split_last()?;
        if *last != 0xbc {
            return Some(false);
        }
        let (masked_db, h) = body.split_at_checked(em_len - h_len - 1)?;
        // The bits above emBits must be zero.
        let top_mask = 0xffu8 >> (8 * em_len - em_bits);
        if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
            return Some(false);
        }
        let mut db = mgf1(hash, h, masked_db.len());
        for (d, m) in db.iter_mut().zip(masked_db) {
            *d ^= m;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        let (ps, rest) = db.split_at_checked(em_len - h_len - s_len - 2)?;
        let (one, salt) = rest.split_first()?;
        if ps.iter().any(|b| *b != 0) || *one != 0x01 {
            return Some(false);
        }
        let m_hash = hash.digest(&[msg]);
        Some(hash.digest(&[&[0u8; 8], &m_hash, salt]) == h)
    }
}

fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.len());
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&hash.digest(&[seed, &counter.to_be_bytes()]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}
