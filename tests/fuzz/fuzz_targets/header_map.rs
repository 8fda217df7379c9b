//! Arbitrary bytes as a serialized header map from the host: refused or read, never a panic;
//! a map that reads has every name and value inside the buffer it came from.
#![no_main]

use envoy_jwt_authz::request::header_map::HeaderMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = HeaderMap::from_serialized(data.to_vec()) {
        let total: usize = map.headers().map(|(n, v)| n.len() + v.len()).sum();
        // Lossy conversion can grow a byte into three; nothing else adds bytes.
        assert!(total <= 3 * data.len());
        for (n, _) in map.headers() {
            assert!(map.header(n).is_some());
        }
    }
});
