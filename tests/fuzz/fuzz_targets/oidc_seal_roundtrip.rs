//! Sealing and opening with the key ring. The first byte picks the purpose, the provider and
//! the cookie name; the rest is the plaintext. Sealing then opening gives the plaintext back,
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
    let r = rings();
    let purpose = if sel & 1 == 0 { Purpose::Session } else { Purpose::Flow };
    let other_purpose = if sel & 1 == 0 { Purpose::Flow } else { Purpose::Session };
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
    assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    assert_eq!(r.sealing.open(purpose, provider, cookie, &sealed).as_deref(), Some(plain));
    assert_eq!(r.rotated.open(purpose, provider, cookie, &sealed).as_deref(), Some(plain));
    assert_eq!(r.other.open(purpose, provider, cookie, &sealed), None);
    assert_eq!(r.sealing.open(other_purpose, provider, cookie, &sealed), None);
    assert_eq!(r.sealing.open(purpose, "web3", cookie, &sealed), None);
    assert_eq!(r.sealing.open(purpose, provider, "web.1-2", &sealed), None);

    // A sealed value is `v1.` + base64url: flip each bit of the first 64 and last 64 bytes of
    // the sealed bytes (key id, nonce, start of the ciphertext, tag), and some in the middle.
    let raw = URL_SAFE_NO_PAD
        .decode(sealed.strip_prefix("v1.").unwrap_or_else(|| panic!("no v1. prefix")))
        .unwrap_or_else(|e| panic!("not base64url: {e}"));
    let n = raw.len();
    let positions: Vec<usize> = (0..n.min(64))
        .chain(n.saturating_sub(64)..n)
        .chain((0..n).step_by(97))
        .collect();
    for &i in &positions {
        for bit in 0..8 {
            let mut flipped = raw.clone();
            flipped[i] ^= 1 << bit;
            let text = format!("v1.{}", URL_SAFE_NO_PAD.encode(&flipped));
            assert_eq!(
                r.rotated.open(purpose, provider, cookie, &text),
                None,
                "byte {i} bit {bit} flipped still opens"
            );
        }
    }
    // Bit flips in the cookie text itself (some give invalid base64, all must fail).
    let text = sealed.as_bytes();
    for i in (0..text.len()).step_by(1 + text.len() / 64) {
        for bit in 0..7 {
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
    }
    // Truncations: every shorter prefix of the sealed bytes and of the text.
    for len in (0..n).rev().take(40).chain((0..n).step_by(13)) {
        let text = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw[..len]));
        assert_eq!(r.rotated.open(purpose, provider, cookie, &text), None, "cut at {len}");
    }
    for len in (0..sealed.len()).rev().take(8) {
        assert_eq!(r.rotated.open(purpose, provider, cookie, &sealed[..len]), None);
    }
});
