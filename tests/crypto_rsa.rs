//! RSA verification (src/crypto/rsa.rs) against crafted encodings signed with real private keys
//! (tests/fixtures/rsa, made once with OpenSSL primes): only the honest RSASSA-PKCS1-v1_5
//! encoding and RSASSA-PSS with a salt as long as the hash may verify. Key sizes 2041, 2049 and
//! 3073 bits (modBits = 1 mod 8: the PSS encoding is one octet shorter than the modulus, whose
//! top byte is 01) and 4096 bits (one top bit of PSS's maskedDB must be clear). The `rsa` crate
//! answers every case too and must agree, except where it is known to be lenient (review F8: it
//! ignores a non-zero leading octet when modBits = 1 mod 8); there the filter must refuse.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd, Resize};
use envoy_jwt_authz::crypto::rsa::{Hash, RsaKey};
use envoy_jwt_authz::jwks::key_set;
use rsa::signature::{DigestVerifier, SignatureEncoding, Signer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

const HASHES: [Hash; 3] = [Hash::Sha256, Hash::Sha384, Hash::Sha512];

fn digest(hash: Hash, parts: &[&[u8]]) -> Vec<u8> {
    let data = parts.concat();
    match hash {
        Hash::Sha256 => Sha256::digest(&data).to_vec(),
        Hash::Sha384 => Sha384::digest(&data).to_vec(),
        Hash::Sha512 => Sha512::digest(&data).to_vec(),
    }
}

/// The DER DigestInfo header, from the `rsa` crate (an independent copy of the constants).
fn digest_info(hash: Hash) -> Vec<u8> {
    match hash {
        Hash::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>().prefix.to_vec(),
        Hash::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>().prefix.to_vec(),
        Hash::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>().prefix.to_vec(),
    }
}

fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    (0u32..)
        .flat_map(|i| digest(hash, &[seed, &i.to_be_bytes()]))
        .take(len)
        .collect()
}

/// One prime factor of a key with its share of the private exponent, to sign by the Chinese
/// remainder theorem (four times faster than `m^d mod n`).
struct Prime {
    p: NonZero<BoxedUint>,
    params: BoxedMontyParams,
    d: BoxedUint,
}

impl Prime {
    fn new(p: &[u8], d: &[u8], precision: u32) -> Self {
        let p = BoxedUint::from_be_slice(p, precision).unwrap();
        let d = BoxedUint::from_be_slice(d, 2 * precision).unwrap();
        let p_minus_1 = p.wrapping_sub(BoxedUint::one_with_precision(precision));
        Self {
            d: d.rem_vartime(&NonZero::new(p_minus_1).unwrap()),
            params: BoxedMontyParams::new_vartime(Odd::new(p.clone()).unwrap()),
            p: NonZero::new(p).unwrap(),
        }
    }

    /// `x^e mod p`.
    fn pow(&self, x: &BoxedUint, e: &BoxedUint) -> BoxedUint {
        BoxedMontyForm::new(x.rem_vartime(&self.p), &self.params)
            .pow(e)
            .retrieve()
    }
}

struct Key {
    bits: usize,
    /// The modulus length in bytes.
    k: usize,
    n: Vec<u8>,
    p: Prime,
    q: Prime,
    /// `q^-1 mod p`.
    q_inv: BoxedUint,
    ours: RsaKey,
    private: rsa::RsaPrivateKey,
}

fn load(bits: usize) -> Key {
    let path = format!(
        "{}/tests/fixtures/rsa/rsa{bits}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let jwk: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let field = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let n = field("n");
    let k = n.len();
    let half = u32::try_from(k * 4 + 8).unwrap();
    let (p, q) = (
        Prime::new(&field("p"), &field("d"), half),
        Prime::new(&field("q"), &field("d"), half),
    );
    // Fermat: q^(p-2) mod p.
    let two = BoxedUint::from_be_slice(&[2], half).unwrap();
    let q_inv = p.pow(q.p.as_ref(), &p.p.as_ref().wrapping_sub(&two));
    let big = rsa::BigUint::from_bytes_be;
    let private = rsa::RsaPrivateKey::from_components(
        big(&n),
        big(&field("e")),
        big(&field("d")),
        vec![big(&field("p")), big(&field("q"))],
    )
    .unwrap();
    Key {
        bits,
        k,
        p,
        q,
        q_inv,
        ours: RsaKey::new(&n).unwrap(),
        n,
        private,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scheme {
    Pkcs1,
    Pss,
}

impl Key {
    /// `em^d mod n` as k bytes; None when `em` is not below n (it cannot be signed).
    fn sign_raw(&self, em: &[u8]) -> Option<Vec<u8>> {
        assert_eq!(em.len(), self.k);
        if em >= self.n.as_slice() {
            return None;
        }
        let precision = u32::try_from(self.k * 8 + 64).unwrap();
        let m = BoxedUint::from_be_slice(em, precision).unwrap();
        let (sp, sq) = (self.p.pow(&m, &self.p.d), self.q.pow(&m, &self.q.d));
        // Garner: s = sq + q * ((sp - sq) / q mod p).
        let p = &self.p.p;
        let h = sp.sub_mod(&sq.rem_vartime(p), p).mul_mod(&self.q_inv, p);
        let q = self.q.p.as_ref().resize(precision);
        let s = q
            .wrapping_mul(h.resize(precision))
            .wrapping_add(sq.resize(precision));
        let s = s.to_be_bytes();
        Some(s[s.len() - self.k..].to_vec())
    }

    fn ours(&self, scheme: Scheme, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        match scheme {
            Scheme::Pkcs1 => self.ours.verify_pkcs1(hash, msg, sig),
            Scheme::Pss => self.ours.verify_pss(hash, msg, sig),
        }
    }

    /// The `rsa` crate's answer by its `verify_digest` path (which checks s < n).
    fn reference(&self, scheme: Scheme, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        fn run<D>(key: &rsa::RsaPublicKey, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool
        where
            D: Digest + sha2::digest::FixedOutputReset + rsa::pkcs8::AssociatedOid,
        {
            let digest = D::new_with_prefix(msg);
            match scheme {
                Scheme::Pkcs1 => rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| {
                    rsa::pkcs1v15::VerifyingKey::<D>::new(key.clone())
                        .verify_digest(digest, &s)
                        .is_ok()
                }),
                Scheme::Pss => rsa::pss::Signature::try_from(sig).is_ok_and(|s| {
                    rsa::pss::VerifyingKey::<D>::new(key.clone())
                        .verify_digest(digest, &s)
                        .is_ok()
                }),
            }
        }
        let public = self.private.to_public_key();
        match hash {
            Hash::Sha256 => run::<Sha256>(&public, scheme, msg, sig),
            Hash::Sha384 => run::<Sha384>(&public, scheme, msg, sig),
            Hash::Sha512 => run::<Sha512>(&public, scheme, msg, sig),
        }
    }

    /// `00 01 FF.. 00 DigestInfo H`, k bytes.
    fn pkcs1(&self, hash: Hash, msg: &[u8]) -> Vec<u8> {
        let t = [digest_info(hash), digest(hash, &[msg])].concat();
        self.pkcs1_with(&t, self.k - t.len() - 3)
    }

    /// `00 01`, `ps` bytes of FF, `00`, then `t`, cut or padded with zeros to k bytes.
    fn pkcs1_with(&self, t: &[u8], ps: usize) -> Vec<u8> {
        let mut em = vec![0x00, 0x01];
        em.resize(2 + ps, 0xff);
        em.push(0x00);
        em.extend_from_slice(t);
        em.resize(self.k, 0);
        em
    }

    /// RFC 8017 §9.1.1 EMSA-PSS-ENCODE, as k bytes (a leading zero octet when emLen < k).
    fn pss(&self, hash: Hash, msg: &[u8], salt: &[u8], tweak: Tweak) -> Vec<u8> {
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        let h_len = digest(hash, &[]).len();
        let m_hash = digest(hash, &[msg]);
        let mut h = digest(hash, &[&[0u8; 8], &m_hash, salt]);
        let mut db = vec![0u8; em_len - salt.len() - h_len - 2];
        db.push(match tweak {
            Tweak::Separator(byte) => byte,
            _ => 0x01,
        });
        if tweak == Tweak::PsNonZero {
            db[1] = 0x01;
        }
        db.extend_from_slice(salt);
        let mgf_hash = match tweak {
            Tweak::MgfHash(other) => other,
            _ => hash,
        };
        let mask = mgf1(mgf_hash, &h, db.len());
        let mut em: Vec<u8> = db.iter().zip(mask).map(|(d, m)| d ^ m).collect();
        em[0] &= 0xff >> (8 * em_len - em_bits);
        if tweak == Tweak::TopBit {
            em[0] |= 0x80;
        }
        if tweak == Tweak::HashFlipped {
            h[0] ^= 0x01;
        }
        em.extend_from_slice(&h);
        em.push(match tweak {
            Tweak::Trailer(byte) => byte,
            _ => 0xbc,
        });
        let mut block = vec![0u8; self.k - em_len];
        if tweak == Tweak::LeadingOctet {
            block[0] = 0x01;
        }
        block.extend_from_slice(&em);
        block
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tweak {
    None,
    Trailer(u8),
    /// The bit above emBits set in maskedDB (4096-bit key: emBits = 4095).
    TopBit,
    PsNonZero,
    Separator(u8),
    HashFlipped,
    MgfHash(Hash),
    /// The octet above EM set when modBits = 1 mod 8 (EM is then k - 1 octets).
    LeadingOctet,
}

/// What a signature must get: `Valid` and `Refused` from both verifiers; `Lenient` refused by
/// the filter while the `rsa` crate accepts it (F8).
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Valid,
    Refused,
    Lenient,
}

/// Outcomes over a key: signatures accepted, refused, refused by the filter while the `rsa`
/// crate accepted them (F8), and encodings that could not be signed (not below n).
#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    refused: usize,
    lenient_reference: usize,
    unsignable: usize,
}

impl Tally {
    fn check(
        &mut self,
        key: &Key,
        alg: (Scheme, Hash),
        msg: &[u8],
        sig: &[u8],
        expect: Expect,
        what: &str,
    ) {
        let (scheme, hash) = alg;
        let (ours, reference) = (
            key.ours(scheme, hash, msg, sig),
            key.reference(scheme, hash, msg, sig),
        );
        let case = format!("{} bits, {scheme:?} {hash:?}: {what}", key.bits);
        assert_eq!(ours, expect == Expect::Valid, "{case}");
        if expect == Expect::Lenient {
            assert!(reference, "the rsa crate was expected to accept: {case}");
            self.lenient_reference += 1;
        } else {
            assert_eq!(reference, ours, "the rsa crate disagrees: {case}");
        }
        if ours {
            self.accepted += 1;
        } else {
            self.refused += 1;
        }
    }

    /// An honest signature must fail under the other hashes and under the other scheme.
    fn elsewhere(&mut self, key: &Key, alg: (Scheme, Hash), msg: &[u8], sig: &[u8]) {
        let (scheme, hash) = alg;
        for other in HASHES.into_iter().filter(|h| *h != hash) {
            self.check(
                key,
                (scheme, other),
                msg,
                sig,
                Expect::Refused,
                "other hash",
            );
        }
        let other = match scheme {
            Scheme::Pkcs1 => Scheme::Pss,
            Scheme::Pss => Scheme::Pkcs1,
        };
        self.check(
            key,
            (other, hash),
            msg,
            sig,
            Expect::Refused,
            "other scheme",
        );
    }

    /// Signs `em` and checks it; an encoding not below n only counts as unsignable.
    fn sign_and_check(
        &mut self,
        key: &Key,
        alg: (Scheme, Hash),
        msg: &[u8],
        em: &[u8],
        expect: Expect,
        what: &str,
    ) -> Option<Vec<u8>> {
        let Some(sig) = key.sign_raw(em) else {
            self.unsignable += 1;
            return None;
        };
        self.check(key, alg, msg, &sig, expect, what);
        Some(sig)
    }
}

/// RSASSA-PKCS1-v1_5: the honest encoding verifies (and equals the `rsa` crate's signature);
/// every altered encoding, Bleichenbacher'06 forms included, is refused.
fn pkcs1_matrix(bits: usize) -> Tally {
    let key = load(bits);
    let mut tally = Tally::default();
    let msg = b"PKCS#1 v1.5 crafted encodings";
    for hash in HASHES {
        let em = key.pkcs1(hash, msg);
        let sig = tally
            .sign_and_check(
                &key,
                (Scheme::Pkcs1, hash),
                msg,
                &em,
                Expect::Valid,
                "honest",
            )
            .unwrap();
        let theirs = match hash {
            Hash::Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.private.clone())
                .sign(msg)
                .to_vec(),
            Hash::Sha384 => rsa::pkcs1v15::SigningKey::<Sha384>::new(key.private.clone())
                .sign(msg)
                .to_vec(),
            Hash::Sha512 => rsa::pkcs1v15::SigningKey::<Sha512>::new(key.private.clone())
                .sign(msg)
                .to_vec(),
        };
        assert_eq!(
            sig, theirs,
            "{bits} bits {hash:?}: the encoder differs from the rsa crate's"
        );
        tally.elsewhere(&key, (Scheme::Pkcs1, hash), msg, &sig);
        let another = b"another message";
        tally.check(
            &key,
            (Scheme::Pkcs1, hash),
            another,
            &sig,
            Expect::Refused,
            "other msg",
        );

        let info = digest_info(hash);
        let h = digest(hash, &[msg]);
        let t = [info.clone(), h.clone()].concat();
        let ps = key.k - t.len() - 3;
        let mut crafted: Vec<(String, Vec<u8>)> = Vec::new();
        let mut edit = |what: &str, at: usize, byte: u8| {
            let mut e = em.clone();
            e[at] = byte;
            crafted.push((what.into(), e));
        };
        edit("em[0] = 01", 0, 0x01);
        edit("em[1] = 00", 1, 0x00);
        edit("block type 2", 1, 0x02);
        edit("PS byte fe", 2 + ps / 2, 0xfe);
        edit("PS byte 00", 2 + ps / 2, 0x00);
        edit("last PS byte 00", 1 + ps, 0x00);
        edit("separator 01", 2 + ps, 0x01);
        edit("separator ff", 2 + ps, 0xff);
        edit("hash bit flipped", key.k - 1, em[key.k - 1] ^ 0x01);
        edit(
            "first hash bit flipped",
            key.k - h.len(),
            em[key.k - h.len()] ^ 0x80,
        );
        edit("DigestInfo length + 1", 3 + ps + 1, info[1] + 1);
        edit("DigestInfo tag 31", 3 + ps, 0x31);
        edit("OID of another hash", 3 + ps + 14, info[14] ^ 0x03);
        edit("NULL 05 01", 3 + ps + 16, 0x01);
        let with = |t: &[u8], ps: usize| key.pkcs1_with(t, ps);
        crafted.push((
            "separator one byte early, 00 after".into(),
            with(&t, ps - 1),
        ));
        crafted.push(("PS all zero".into(), {
            let mut e = em.clone();
            e[2..2 + ps].fill(0);
            e
        }));
        // DigestInfo without the NULL parameters: `30 2f 30 0b 06 09 OID 04 len H`.
        let no_null = [
            &[info[0], info[1] - 2, info[2], info[3] - 2][..],
            &info[4..15],
            &info[17..],
            &h,
        ]
        .concat();
        crafted.push((
            "DigestInfo without NULL".into(),
            with(&no_null, key.k - no_null.len() - 3),
        ));
        // The outer length in long form: `30 81 len`.
        let long = [&[info[0], 0x81][..], &info[1..], &h].concat();
        crafted.push((
            "DigestInfo long-form length".into(),
            with(&long, key.k - long.len() - 3),
        ));
        // Bleichenbacher'06: a short PS, the right DigestInfo and hash, then garbage.
        for short in [8, 16, 100] {
            let mut e = with(&t, short);
            for (i, b) in e.iter_mut().enumerate().skip(3 + short + t.len()) {
                *b = (i * 7 + 1) as u8;
            }
            crafted.push((format!("Bleichenbacher'06, PS of {short}"), e));
        }
        for other in HASHES.into_iter().filter(|h| *h != hash) {
            crafted.push((format!("encoding for {other:?}"), key.pkcs1(other, msg)));
        }
        for (what, e) in crafted {
            assert_ne!(e, em, "{what} must change the encoding");
            tally.sign_and_check(&key, (Scheme::Pkcs1, hash), msg, &e, Expect::Refused, &what);
        }
    }
    tally
}

/// RSASSA-PSS: only salt = hLen without a tweak verifies; other salt lengths and every tweak
/// are refused. Encodings that land above n are retried with another salt.
fn pss_matrix(bits: usize) -> Tally {
    let key = load(bits);
    let mut tally = Tally::default();
    let msg = b"PSS crafted encodings";
    let em_len = (bits - 1).div_ceil(8);
    for hash in HASHES {
        let h_len = digest(hash, &[]).len();
        let max = em_len - h_len - 2;
        let mut cases: Vec<(usize, Tweak)> = [0, 1, h_len - 1, h_len, h_len + 1, 2 * h_len, max]
            .into_iter()
            .map(|s| (s, Tweak::None))
            .collect();
        let mut tweaks = vec![
            Tweak::Trailer(0xbd),
            Tweak::Trailer(0x00),
            Tweak::Trailer(0xcc),
            Tweak::PsNonZero,
            Tweak::Separator(0x00),
            Tweak::Separator(0x02),
            Tweak::HashFlipped,
        ];
        tweaks.extend(
            HASHES
                .into_iter()
                .filter(|h| *h != hash)
                .map(Tweak::MgfHash),
        );
        if bits % 8 == 1 {
            tweaks.push(Tweak::LeadingOctet);
        } else {
            tweaks.push(Tweak::TopBit);
        }
        cases.extend(tweaks.into_iter().map(|t| (h_len, t)));
        for (salt_len, tweak) in cases {
            let expect = if salt_len == h_len && tweak == Tweak::None {
                Expect::Valid
            } else if tweak == Tweak::LeadingOctet {
                Expect::Lenient
            } else {
                Expect::Refused
            };
            let what = format!("salt {salt_len}, {tweak:?}");
            // A few salts, for the encodings whose top bits may land above n.
            let signed = (0u8..16).find_map(|try_| {
                let salt: Vec<u8> = (0..salt_len)
                    .map(|i| (i as u8) ^ try_.wrapping_mul(37))
                    .collect();
                let em = key.pss(hash, msg, &salt, tweak);
                key.sign_raw(&em)
            });
            let Some(sig) = signed else {
                tally.unsignable += 1;
                continue;
            };
            tally.check(&key, (Scheme::Pss, hash), msg, &sig, expect, &what);
            if expect == Expect::Valid {
                tally.elsewhere(&key, (Scheme::Pss, hash), msg, &sig);
                range_and_length(&key, hash, msg, &sig, &mut tally);
            }
        }
    }
    tally
}

/// The honest PSS signature moved out of range or resized: s + n, n, n - 1, 0, 1, all ff, a
/// leading 00, the last byte cut, empty. None may verify, under either scheme.
fn range_and_length(key: &Key, hash: Hash, msg: &[u8], sig: &[u8], tally: &mut Tally) {
    let n = rsa::BigUint::from_bytes_be(&key.n);
    let s = rsa::BigUint::from_bytes_be(sig);
    let one = rsa::BigUint::from(1u8);
    let padded = |v: rsa::BigUint| {
        let b = v.to_bytes_be();
        [vec![0u8; key.k.saturating_sub(b.len())], b].concat()
    };
    let cases = [
        ("s + n", padded(&s + &n)),
        ("n", key.n.clone()),
        ("n - 1", padded(&n - &one)),
        ("0", vec![0u8; key.k]),
        ("1", padded(one.clone())),
        ("all ff", vec![0xff; key.k]),
        ("leading 00", [&[0u8][..], sig].concat()),
        ("truncated", sig[..key.k - 1].to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, candidate) in cases {
        for scheme in [Scheme::Pss, Scheme::Pkcs1] {
            tally.check(key, (scheme, hash), msg, &candidate, Expect::Refused, what);
        }
    }
}

fn report(what: &str, bits: usize, tally: &Tally) {
    eprintln!("{what} {bits} bits: {tally:?}");
    assert!(tally.accepted > 0 && tally.refused > tally.accepted);
}

#[test]
fn pkcs1_crafted_encodings_2041_and_2049_bits() {
    for bits in [2041, 2049] {
        report("PKCS#1", bits, &pkcs1_matrix(bits));
    }
}

#[test]
fn pkcs1_crafted_encodings_3073_and_4096_bits() {
    for bits in [3073, 4096] {
        report("PKCS#1", bits, &pkcs1_matrix(bits));
    }
}

#[test]
fn pss_crafted_encodings_2041_and_2049_bits() {
    for bits in [2041, 2049] {
        let tally = pss_matrix(bits);
        report("PSS", bits, &tally);
        // Each hash had its leading-octet case, where the rsa crate is lenient (F8).
        assert_eq!(tally.lenient_reference, 3);
    }
}

#[test]
fn pss_crafted_encodings_3073_and_4096_bits() {
    for bits in [3073, 4096] {
        let tally = pss_matrix(bits);
        report("PSS", bits, &tally);
        assert_eq!(tally.lenient_reference, if bits == 3073 { 3 } else { 0 });
    }
}

/// Leading zero bytes before the modulus change neither its length in bits nor the answers
/// (review F4): PSS depends on the exact bit length.
#[test]
fn leading_zero_bytes_in_the_modulus_are_ignored() {
    let key = load(2041);
    let padded = RsaKey::new(&[&[0u8, 0][..], &key.n].concat()).unwrap();
    let msg = b"leading zeros";
    for hash in HASHES {
        let h_len = digest(hash, &[]).len();
        let pss = key
            .sign_raw(&key.pss(hash, msg, &vec![7; h_len], Tweak::None))
            .unwrap();
        let pkcs1 = key.sign_raw(&key.pkcs1(hash, msg)).unwrap();
        assert!(padded.verify_pss(hash, msg, &pss));
        assert!(padded.verify_pkcs1(hash, msg, &pkcs1));
        assert!(!padded.verify_pss(hash, msg, &pkcs1));
        assert!(!padded.verify_pkcs1(hash, msg, &[&[0u8][..], &pkcs1].concat()));
    }
    assert!(RsaKey::new(&[0, 0, 0]).is_err());
    assert!(RsaKey::new(&[]).is_err());
}

/// A JWK Set accepts moduli of 2048 to 4096 bits, counted in bits with leading zero bytes
/// ignored (review F6), and refuses the rest with a reason; never a panic.
#[test]
fn jwks_bounds_the_modulus_in_bits() {
    let modulus = |bits: usize, zeros: usize| {
        let mut n = vec![0xa5u8; bits.div_ceil(8)];
        n[0] = 0xff >> (8 * n.len() - bits);
        [vec![0u8; zeros], n].concat()
    };
    let fixture_n = |bits: usize| load(bits).n;
    let cases = [
        (modulus(2041, 0), 2041, false),
        (fixture_n(2041), 2041, false),
        (modulus(2047, 0), 2047, false),
        (modulus(2047, 1), 2047, false),
        (modulus(2048, 0), 2048, true),
        (modulus(2048, 3), 2048, true),
        (fixture_n(2049), 2049, true),
        (fixture_n(3073), 3073, true),
        (modulus(4096, 0), 4096, true),
        (modulus(4096, 1), 4096, true),
        (modulus(4097, 0), 4097, false),
        (vec![0u8; 300], 0, false),
    ];
    for (n, bits, ok) in cases {
        let doc = json!({"keys": [{"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"}]});
        let loaded = key_set::parse(doc.to_string().as_bytes(), false).unwrap();
        assert_eq!(loaded.set.keys.len(), usize::from(ok), "{bits} bits");
        if !ok {
            let why = format!("RSA modulus of {bits} bits is outside 2048..=4096");
            assert!(loaded.skipped[0].contains(&why), "{:?}", loaded.skipped);
        }
    }
}
