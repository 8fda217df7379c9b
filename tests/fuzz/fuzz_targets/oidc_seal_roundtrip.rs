//! Sealing and opening with the key ring. The first byte picks the purpose, the provider and
//! the cookie name; the rest (its first 512 bytes) is the plaintext. Sealing then opening gives the plaintext back,
//! under the ring that sealed it and under a rotated ring that still holds the key; no other
//! purpose, provider, cookie or ring without that key opens it; every bit flipped (in the
//! sealed bytes or in the cookie text) and every truncation fails.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use envoy_jwt_authz::oidc::seal::{KeyRing, Purpose};
use envoy_jwt_authz_fuzz::oidc::{Xorshift, KEY_NEW, KEY_OLD};
use libfuzzer_sys::fuzz_target;

const KEY_OTHER: &str = "fuzz-key-other-0123456789abcdef-01234567";

struct Rings {
    sealing: KeyRing,
    rotated: KeyRing,
    other: KeyRing,
}
unsafe impl Sync for Rings {}
unsafe impl Send for Rings {}

fn rings() -> &'static Rings {
    static R: OnceLock<Rings> = OnceLock::new();
    R.get_or_init(|| {
        let ring = |keys: &[&str]| KeyRing::new(keys).unwrap_or_else(|| panic!("ring"));
        Rings {
            sealing: ring(&[KEY_OLD]),
            // KEY_NEW now seals, KEY_OLD still opens.
            rotated: ring(&[KEY_NEW, KEY_OLD]),
            other: ring(&[KEY_NEW, KEY_OTHER]),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, plain)) = data.split_first() else {
        return;
    };
    // Each input tries a thousand forgeries: short plaintexts keep the run fast.
    let plain = &plain[..plain.len().min(512)];
    let r = rings();
    let purpose = if sel & 1 == 0 {
        Purpose::Session
    } else {
        Purpose::Flow
    };
    let other_purpose = if sel & 1 == 0 {
        Purpose::Flow
    } else {
        Purpose::Session
    };
    let provider = if sel & 2 == 0 { "web" } else { "web2" };
    let cookie = match (sel >> 2) % 3 {
        0 => "web",
        1 => "web.0-2",
        _ => "web.f-AAAAAAAAAAAAAAAAAAAAAA",
    };
    let seed = u64::from(sel) << 32 | plain.len() as u64 | 1;
    let Some(sealed) = r
        .sealing
        .seal(purpose, provider, cookie, plain, &mut Xorshift(seed))
    else {
        panic!("sealing failed with a working random source");
    };
    assert!(sealed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    assert_eq!(
        r.sealing
            .open(purpose, provider, cookie, &sealed)
            .as_deref(),
        Some(plain)
    );
    assert_eq!(
        r.rotated
            .open(purpose, provider, cookie, &sealed)
            .as_deref(),
        Some(plain)
    );
    assert_eq!(r.other.open(purpose, provider, cookie, &sealed), None);
    assert_eq!(
        r.sealing.open(other_purpose, provider, cookie, &sealed),
        None
    );
    assert_eq!(r.sealing.open(purpose, "web3", cookie, &sealed), None);
    assert_eq!(r.sealing.open(purpose, provider, "web.1-2", &sealed), None);

    // A sealed value is `v1.` + base64url of key id ‖ nonce ‖ ciphertext ‖ tag. Every open
    // costs a decryption (slow under the sanitizer), so each input flips 40 bits spread over
    // the bytes by a generator seeded from the input, always including the key id's first
    // byte and the tag's last: over a run every byte and bit gets its turn.
    let raw = URL_SAFE_NO_PAD
        .decode(
            sealed
                .strip_prefix("v1.")
                .unwrap_or_else(|| panic!("no v1. prefix")),
        )
        .unwrap_or_else(|e| panic!("not base64url: {e}"));
    let n = raw.len();
    let mut rng =
        seed ^ 0x9e37_79b9_7f4a_7c15 ^ (plain.iter().map(|&b| u64::from(b)).sum::<u64>() << 17);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut flips: Vec<(usize, u32)> = vec![(0, 0), (n - 1, 7)];
    for _ in 0..38 {
        let x = next();
        flips.push(((x as usize) % n, ((x >> 32) % 8) as u32));
    }
    for (i, bit) in flips {
        let mut flipped = raw.clone();
        flipped[i] ^= 1 << bit;
        let text = format!("v1.{}", URL_SAFE_NO_PAD.encode(&flipped));
        assert_eq!(
            r.rotated.open(purpose, provider, cookie, &text),
            None,
            "byte {i} bit {bit} flipped still opens"
        );
    }
    // Bit flips in the cookie text itself (some give invalid base64, all must fail).
    let text = sealed.as_bytes();
    for _ in 0..12 {
        let x = next();
        let (i, bit) = ((x as usize) % text.len(), ((x >> 32) % 7) as u32);
        let mut t = text.to_vec();
        t[i] ^= 1 << bit;
        if let Ok(s) = std::str::from_utf8(&t) {
            assert_eq!(
                r.rotated.open(purpose, provider, cookie, s),
                None,
                "char {i} bit {bit} flipped still opens"
            );
        }
    }
    // Truncations: every shorter prefix of the sealed bytes and of the text.
    for len in (0..n)
        .rev()
        .take(4)
        .chain([0, n / 2, 4 + 24, 4 + 24 + 16])
        .filter(|&l| l < n)
    {
        let text = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw[..len]));
        assert_eq!(
            r.rotated.open(purpose, provider, cookie, &text),
            None,
            "cut at {len}"
        );
    }
    for len in (0..sealed.len()).rev().take(3) {
        assert_eq!(
            r.rotated.open(purpose, provider, cookie, &sealed[..len]),
            None
        );
    }
});
