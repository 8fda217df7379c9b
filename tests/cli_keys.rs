//! Issue 21: `jwt-authz jwks` on public keys (PEM SubjectPublicKeyInfo, PKCS#1, X.509
//! certificates) and `keygen` for HS384/HS512, end to end: the tool makes the key set and
//! the token, the filter's own pipeline verifies it.
//!
//! tests/fixtures/pki holds test-only keys and self-signed certificates made once with
//! OpenSSL 3 (`openssl genpkey` for RSA 2048, P-256, P-384 and Ed25519, then
//! `openssl req -new -x509 -key K.key -days 36500 -subj "/CN=jwt-authz test K"`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use envoy_jwt_authz::authn::keystore::KeyStore;
use envoy_jwt_authz::cli::mint::Signer;
use envoy_jwt_authz::config;
use envoy_jwt_authz::crypto::signature::Alg;
use envoy_jwt_authz::oidc::random::HostRandom;
use envoy_jwt_authz::pipeline::{self, Decision};
use envoy_jwt_authz::request::view::Request;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};

const ISS: &str = "https://issuer.test";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/pki/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A file of this test run holding `text`.
fn write(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("jwt-authz-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `jwt-authz ARGS`: stdout when it succeeds, stderr as the error otherwise.
fn tool(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_jwt-authz"))
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn jwks(alg: &str, file: &str) -> Value {
    let out = tool(&["jwks", &format!("{alg}:k:{file}")]).unwrap();
    serde_json::from_str(&out).unwrap()
}

fn mint(alg: &str, key_file: &str) -> String {
    let claims = json!({"iss": ISS, "sub": "alice"}).to_string();
    tool(&["mint", alg, key_file, "--kid", "k", &claims])
        .unwrap()
        .trim()
        .to_string()
}

/// The filter's answer to a request carrying `token`, with `set` as the provider's key set.
fn status(set: &Value, token: &str) -> u32 {
    let cfg = config::parse(
        json!({"providers": {"p": {"issuer": ISS,
            "local_jwks": {"inline_string": set.to_string()}}}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let req = Request::new(vec![
        (":method".into(), "GET".into()),
        (":path".into(), "/".into()),
        (":authority".into(), "svc".into()),
        ("authorization".into(), format!("Bearer {token}")),
    ]);
    let keys = KeyStore::new(&cfg);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    match pipeline::on_request_headers(&cfg, &keys, &req, now, &mut HostRandom, true).decision {
        Decision::Reply(r) => r.status,
        Decision::Continue(_) => 200,
        d => panic!("no login is configured here: {d:?}"),
    }
}

/// The SubjectPublicKeyInfo PEM of a fixture's private key, as jwt-simple writes it.
fn spki_pem(alg: Alg, key: &str) -> String {
    match Signer::from_pem(alg, key).unwrap() {
        Signer::RS256(k) => k.public_key().to_pem().unwrap(),
        Signer::ES256(k) => k.public_key().to_pem().unwrap(),
        Signer::ES384(k) => k.public_key().to_pem().unwrap(),
        Signer::EdDSA(k) => k.public_key().to_pem(),
        _ => unreachable!(),
    }
}

/// The base64 body of the PEM blocks in `text`, as `x5c` carries them (standard base64 DER).
fn pem_bodies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut body = None::<String>;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            body = Some(String::new());
        } else if line.starts_with("-----END") {
            out.push(body.take().unwrap());
        } else if let Some(b) = body.as_mut() {
            b.push_str(line.trim());
        }
    }
    out
}

const CASES: [(&str, Alg, &str); 4] = [
    ("RS256", Alg::RS256, "rsa"),
    ("ES256", Alg::ES256, "p256"),
    ("ES384", Alg::ES384, "p384"),
    ("EdDSA", Alg::EdDSA, "ed25519"),
];

#[test]
fn public_keys_and_certificates_give_the_private_keys_jwk_and_verify_its_tokens() {
    for (name, alg, file) in CASES {
        let key = fixture(&format!("{file}.key"));
        let from_private = jwks(name, &key);
        let token = mint(name, &key);
        // Another key of the same kind: its tokens must not verify with this one's set.
        let other = write(
            &format!("other-{file}.key"),
            &tool(&["keygen", name]).unwrap(),
        );
        let forged = mint(name, &other);

        let spki = spki_pem(alg, &std::fs::read_to_string(&key).unwrap());
        assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----"), "{spki}");
        let mut formats = vec![
            ("spki", jwks(name, &write(&format!("{file}.pub"), &spki))),
            ("cert", jwks(name, &fixture(&format!("{file}.crt")))),
        ];
        if alg == Alg::RS256 {
            let pem = std::fs::read_to_string(&key).unwrap();
            let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                .unwrap()
                .to_public_key()
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap();
            assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
            formats.push(("pkcs1", jwks(name, &write("rsa1.pub", &pkcs1))));
        }
        for (format, set) in formats {
            let mut jwk = set["keys"][0].clone();
            // A certificate's JWK carries the certificate itself; the rest is the key's.
            if format == "cert" {
                let cert = std::fs::read_to_string(fixture(&format!("{file}.crt"))).unwrap();
                assert_eq!(jwk["x5c"], json!(pem_bodies(&cert)), "{name} {format}");
                jwk.as_object_mut().unwrap().remove("x5c");
            }
            assert_eq!(jwk, from_private["keys"][0], "{name} {format}");
            assert_eq!(status(&set, &token), 200, "{name} {format}");
            assert_eq!(status(&set, &forged), 401, "{name} {format}");
        }
    }
}

#[test]
fn a_certificate_chain_takes_the_first_key_and_lists_every_certificate() {
    let rsa = std::fs::read_to_string(fixture("rsa.crt")).unwrap();
    let p256 = std::fs::read_to_string(fixture("p256.crt")).unwrap();
    let chain = write("chain.crt", &format!("{rsa}{p256}"));
    let set = jwks("RS256", &chain);
    let x5c = set["keys"][0]["x5c"].as_array().unwrap();
    assert_eq!(x5c.len(), 2);
    assert_eq!(x5c[0], json!(pem_bodies(&rsa)[0]));
    assert_eq!(x5c[1], json!(pem_bodies(&p256)[0]));
    // Standard base64 of DER, as RFC 7517 §4.7 has it.
    assert!(STANDARD
        .decode(x5c[1].as_str().unwrap())
        .unwrap()
        .starts_with(&[0x30]));
    assert_eq!(status(&set, &mint("RS256", &fixture("rsa.key"))), 200);
}

#[test]
fn a_key_of_another_kind_than_alg_is_an_error() {
    for (alg, file) in [
        ("ES256", "rsa.crt"),
        ("RS256", "p256.crt"),
        ("ES384", "p256.crt"),
        ("EdDSA", "p384.crt"),
        ("HS256", "rsa.crt"),
    ] {
        let err = tool(&["jwks", &format!("{alg}:k:{}", fixture(file))]).unwrap_err();
        assert!(err.contains(file), "{alg} {file}: {err}");
    }
    let spki = write(
        "p256-as-rsa.pub",
        &spki_pem(
            Alg::ES256,
            &std::fs::read_to_string(fixture("p256.key")).unwrap(),
        ),
    );
    assert!(tool(&["jwks", &format!("RS256:k:{spki}")])
        .unwrap_err()
        .contains("not an RSA public key"));
    let garbage = write(
        "garbage.crt",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    assert!(tool(&["jwks", &format!("RS256:k:{garbage}")]).is_err());
}

#[test]
fn hs384_and_hs512_keys_go_through_keygen_jwks_mint_and_the_filter() {
    for (alg, bytes) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
        let secret = tool(&["keygen", alg]).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret.trim()).unwrap().len(), bytes);
        let key = write(&format!("{alg}.key"), &secret);
        let set = jwks(alg, &key);
        assert_eq!(set["keys"][0]["kty"], "oct");
        let token = mint(alg, &key);
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], "k");
        assert_eq!(status(&set, &token), 200, "{alg}");
        // Another secret's token, and this one's with a flipped signature byte.
        let other = write(
            &format!("{alg}-other.key"),
            &tool(&["keygen", alg]).unwrap(),
        );
        assert_eq!(status(&set, &mint(alg, &other)), 401, "{alg}");
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[0] ^= 1;
        let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(status(&set, &flipped), 401, "{alg}");
    }
}
