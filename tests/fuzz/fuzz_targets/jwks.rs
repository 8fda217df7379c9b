//! Arbitrary JWKS documents as a fetch would return them, as local sets (oct allowed), and
//! arbitrary bytes as the shared fetch schedule another VM wrote.
#![no_main]

use envoy_jwt_authz::crypto::signature::KeyMaterial;
use envoy_jwt_authz::jwks::key_set;
use envoy_jwt_authz::jwks::refresh::{accept_body, Meta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = key_set::parse(data, true) {
        assert!(loaded.set.keys.len() <= key_set::MAX_KEYS);
    }
    if let Ok(loaded) = accept_body(Some("200"), data) {
        // A fetched set never yields an HMAC secret.
        assert!(loaded
            .set
            .keys
            .iter()
            .all(|k| !matches!(k.material, KeyMaterial::Oct(_))));
    }
    let mut meta = Meta::decode(Some(data));
    let _ = meta.fetch_due(1_000_000, 600_000);
    meta.fetch_failed(1_000_000, 600_000, "fuzz");
    let _ = Meta::decode(Some(&meta.encode()));
});
