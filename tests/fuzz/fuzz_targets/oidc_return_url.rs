//! Arbitrary return targets through the normalizer. What comes out is the input or `/`, and
//! is `/` or one `/` followed by neither `/` nor `\`, with no control byte, whitespace or
//! non-ASCII, and stays so after percent-decoding (another decoder on the way must not find
//! a second slash either). Normalizing twice changes nothing.
#![no_main]

use envoy_jwt_authz::oidc::return_url::normalize;
use libfuzzer_sys::fuzz_target;

fn one_leading_slash(s: &[u8]) -> bool {
    match s {
        [b'/'] => true,
        [b'/', second, ..] => *second != b'/' && *second != b'\\',
        _ => false,
    }
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |j: usize| s.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (s[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn check(input: &str) {
    let out = normalize(input);
    assert!(out == "/" || out == input, "{input:?} became {out:?}");
    assert!(one_leading_slash(out.as_bytes()), "{input:?} gave {out:?}");
    assert!(
        out.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\'),
        "{input:?} gave {out:?} with a control, space, backslash or non-ASCII byte"
    );
    // Two decoding layers (a proxy, then the app's redirect helper).
    let mut layer = out.as_bytes().to_vec();
    for _ in 0..2 {
        layer = percent_decode(&layer);
        assert!(one_leading_slash(&layer), "{input:?} decodes to {layer:?}");
        assert!(
            !layer.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\'),
            "{input:?} decodes to a control or backslash: {layer:?}"
        );
    }
    assert_eq!(normalize(out), out, "not idempotent on {input:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
        // The same behind a leading slash: the fuzzer's inputs mostly start elsewhere.
        check(&format!("/{s}"));
    }
});
