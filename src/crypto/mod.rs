//! Signature verification: the dispatch from a key and a JWS algorithm to one primitive
//! (`signature`), and the filter's own arithmetic under it.
//!
//! Why own arithmetic: in Envoy's V8 the crates as they are cost several times more per
//! uncached verification (measured with `node --no-liftoff` on the real module, whole uncached
//! pipeline): RS256 720 µs with `rsa` against 112 µs here (`montgomery`, 32-bit limbs), ES256
//! 925 µs with `p256` against 87 µs (`p256_field`, `weierstrass`, `wnaf`, `ecdsa_p256`), ES384
//! 3.3–4.4 ms with `p384` against 234 µs (`p384_field`, `ecdsa_p384`), EdDSA 115 µs with
//! `ed25519-dalek`'s `verify_strict` against 56 µs (`ed25519`, on curve25519-dalek's points).
//! The crates still do what is not on the hot path: `p256`/`p384` validate keys, parse and
//! range-check `r` and `s` and do the scalar arithmetic; `curve25519-dalek` decompresses
//! points; `sha2`, `hmac-sha256` and `hmac-sha512` hash.
//!
//! What checks it: the Wycheproof vectors (`tests/wycheproof.rs`), the differential fuzz
//! target `signatures` (against `p256`, `p384`, `ed25519-dalek` and `rsa`), crafted PKCS#1
//! and PSS encodings signed with committed test keys (`tests/crypto_rsa.rs`, against `rsa`),
//! and unit tests against the reference crates in dev-dependencies (`crypto-bigint`,
//! `ed25519-dalek`).
//!
//! May use: only the crypto crates. Must not know a token, a key set or a request: callers
//! hand it key material, an algorithm, the signed bytes and the signature.

pub mod ecdsa_p256;
pub mod ecdsa_p384;
pub mod ed25519;
pub mod montgomery;
pub mod p256_field;
pub mod p384_field;
pub mod rsa;
pub mod signature;
pub mod weierstrass;
pub mod wnaf;
