//! Browser login in the request path: what the pipeline does with the `oidc` core for one
//! request. `answer` decides the replies that need no IdP call (a login's start, `Login
//! required`, logout, the cross-site guard); `callback` checks a login callback and, once the
//! host has exchanged its code, verifies the ID token and sets the session; `refresh` renews a
//! session's tokens; `identity` makes a session the request's identity.
//!
//! May use: `authn` (the ID token goes through the project's verifier and key sets), `oidc`,
//! `config`, `policy`, `reply`, `request`, `stats`. Must not use `pipeline` or `host`.

pub mod answer;
pub mod callback;
pub mod identity;
pub mod refresh;

/// A configuration with one `oidc` entry whose keys and discovery are loaded, a signer for
/// its ID tokens, and requests: shared by this folder's tests and the pipeline's.
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub mod testing {
    use serde_json::{json, Map, Value};

    use crate::authn::keystore::KeyStore;
    use crate::cli::mint::Signer;
    use crate::config::{self, FilterConfig};
    use crate::crypto::signature::Alg;
    use crate::jwks::key_set;
    use crate::oidc::discovery;
    use crate::request::view::Request;

    pub const ISS: &str = "https://idp.example";
    pub const CLIENT: &str = "gateway";
    pub const NOW: u64 = 1_800_000_000;

    pub struct Fixture {
        pub cfg: FilterConfig,
        pub keys: KeyStore,
        pub signer: Signer,
    }

    /// `rules`: the configuration's rules (the entry is `web`, a JWT provider `api` reads
    /// bearer tokens signed by the same key).
    pub fn fixture(rules: Value) -> Fixture {
        let signer = Signer::generate(Alg::RS256).unwrap();
        let jwks = json!({"keys": [signer.jwk(Some("k1"), true)]}).to_string();
        let raw = json!({
            "providers": {"api": {"issuer": "https://api.example",
                                  "local_jwks": {"inline_string": jwks}}},
            "oidc": {"web": {
                "issuer": ISS, "cluster": "idp", "client_id": CLIENT,
                "client_secret": {"inline": "secret"},
                "redirect_uri": "https://app.example/oauth2/callback",
                "scopes": ["openid", "email"],
                "session": {"cookie_name": "web", "keys": [{"inline": "k".repeat(32)}]},
                "logout": {"path": "/oauth2/logout"},
                "claim_to_headers": [{"header_name": "x-email", "claim_name": "email"}]}},
            "cors": {"allow_origin_string_match": [{"exact": "https://spa.example"}]},
            "rules": rules
        });
        let cfg = config::parse(raw.to_string().as_bytes()).unwrap();
        let mut keys = KeyStore::new(&cfg);
        let doc = json!({"issuer": ISS, "authorization_endpoint": format!("{ISS}/auth"),
            "token_endpoint": format!("{ISS}/token"), "jwks_uri": format!("{ISS}/jwks"),
            "end_session_endpoint": format!("{ISS}/logout")});
        let d = discovery::parse(ISS, doc.to_string().as_bytes()).unwrap();
        let set = key_set::parse(jwks_of(&signer).as_bytes(), false)
            .unwrap()
            .set;
        keys.set_remote(cfg.oidc[0].keys, 1, set, Some(d));
        Fixture { cfg, keys, signer }
    }

    fn jwks_of(s: &Signer) -> String {
        json!({"keys": [s.jwk(Some("k1"), true)]}).to_string()
    }

    /// ID token claims that pass every check; tests change one.
    pub fn id_claims(nonce: &str) -> Map<String, Value> {
        json!({"iss": ISS, "aud": CLIENT, "sub": "alice", "email": "alice@example.com",
               "nonce": nonce, "iat": NOW - 5, "exp": NOW + 3600})
        .as_object()
        .unwrap()
        .clone()
    }

    pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut h = vec![
            (":method".to_string(), method.to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "app.example".to_string()),
            (":scheme".to_string(), "https".to_string()),
        ];
        h.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        Request::new(h)
    }
}
