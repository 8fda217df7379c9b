//! A scripted OpenID provider for the login cases a real IdP will not produce: discovery, a
//! JWK Set with the test key (`keys().rsa`, kid `k1`), and a token endpoint whose ID token is
//! chosen by the code. The test drives the browser part itself (it reads `state` and `nonce`
//! from the filter's redirect) and calls the callback with `code=<case>.<nonce>`; the token
//! endpoint then signs an ID token for that nonce, spoiled as the case says (a wrong nonce or
//! `aud`, expired, a bad signature, an `azp` mismatch, ...). Refresh tokens rotate (a reused
//! one gets `invalid_grant`), refreshes can be slowed down or refused, and every token request
//! is recorded. Runs on a 127.0.0.1 port in the test process and ends with it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::common::{keys, now};

pub const CLIENT_ID: &str = "gateway";
pub const KID: &str = "k1";
/// After `rotate_keys`: the set holds only this key (`keys().ec`), and ID tokens use it.
pub const KID_ROTATED: &str = "k2";

/// One request the token endpoint received.
#[derive(Clone, Debug)]
pub struct TokenCall {
    pub headers: Vec<(String, String)>,
    /// The form fields, decoded.
    pub form: Vec<(String, String)>,
}

impl TokenCall {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    /// Discovery answers this status instead of the document when set.
    discovery_status: Option<u16>,
    /// `expires_in` of access tokens.
    access_ttl: u64,
    refresh_delay_ms: u64,
    refuse_refresh: bool,
    rotated: bool,
    /// Access tokens of this many characters instead of `at-<n>` (sessions past 4 KB).
    access_token_len: Option<usize>,
    live_refresh_tokens: HashSet<String>,
    issued: usize,
    jwks_hits: usize,
    calls: Vec<TokenCall>,
}

pub struct ScriptedIdp {
    pub port: u16,
    state: Arc<Mutex<State>>,
    refreshes: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

pub fn issuer_of(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The ID token for `case` and `nonce` (see the module comment for the cases).
pub fn id_token(issuer: &str, case: &str, nonce: Option<&str>) -> String {
    id_token_with(issuer, case, nonce, false)
}

pub fn id_token_with(issuer: &str, case: &str, nonce: Option<&str>, rotated: bool) -> String {
    let t = now();
    let mut c: Map<String, Value> = json!({
        "iss": issuer, "sub": "scripted-user", "aud": CLIENT_ID,
        "iat": t, "exp": t + 300, "email": "scripted@example.com"
    })
    .as_object()
    .unwrap()
    .clone();
    if let Some(n) = nonce {
        c.insert("nonce".into(), json!(n));
    }
    match case {
        "nonce" => {
            c.insert("nonce".into(), json!("not-the-flows-nonce"));
        }
        "nononce" => {
            c.remove("nonce");
        }
        "aud" => {
            c.insert("aud".into(), json!("someone-else"));
        }
        "expired" => {
            c.insert("iat".into(), json!(t - 1200));
            c.insert("exp".into(), json!(t - 600));
        }
        "future" => {
            c.insert("iat".into(), json!(t + 600));
            c.insert("exp".into(), json!(t + 1200));
        }
        "azp" => {
            c.insert("aud".into(), json!([CLIENT_ID, "other-client"]));
            c.insert("azp".into(), json!("other-client"));
        }
        "azp_ok" => {
            c.insert("aud".into(), json!([CLIENT_ID, "other-client"]));
            c.insert("azp".into(), json!(CLIENT_ID));
        }
        "iss" => {
            c.insert("iss".into(), json!("https://evil.example"));
        }
        "othersub" => {
            c.insert("sub".into(), json!("mallory"));
        }
        _ => {}
    }
    if rotated {
        return keys().ec.sign(Some(KID_ROTATED), &c).unwrap();
    }
    let signer = if case == "badsig" {
        &keys().rogue
    } else {
        &keys().rsa
    };
    signer.sign(Some(KID), &c).unwrap()
}

fn respond(out: &mut TcpStream, status: u16, body: &str) -> bool {
    let resp = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    out.write_all(resp.as_bytes()).is_ok()
}

impl ScriptedIdp {
    /// Starts on `port` (or a free one), access tokens living `access_ttl` seconds.
    pub fn start(port: Option<u16>, access_ttl: u64) -> ScriptedIdp {
        let listener = TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).unwrap();
        let port = listener.local_addr().unwrap().port();
        let idp = ScriptedIdp {
            port,
            state: Arc::new(Mutex::new(State {
                access_ttl,
                ..State::default()
            })),
            refreshes: Arc::new(AtomicUsize::new(0)),
            discovery_hits: Arc::new(AtomicUsize::new(0)),
        };
        let (st, rf, dh) = (
            idp.state.clone(),
            idp.refreshes.clone(),
            idp.discovery_hits.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (st, rf, dh) = (st.clone(), rf.clone(), dh.clone());
                std::thread::spawn(move || handle(port, stream, st, rf, dh));
            }
        });
        idp
    }

    pub fn issuer(&self) -> String {
        issuer_of(self.port)
    }

    pub fn set_discovery_status(&self, status: Option<u16>) {
        self.state.lock().unwrap().discovery_status = status;
    }

    pub fn set_refresh_delay(&self, ms: u64) {
        self.state.lock().unwrap().refresh_delay_ms = ms;
    }

    /// The IdP rotates its signing key: the set now holds only `KID_ROTATED`.
    pub fn rotate_keys(&self) {
        self.state.lock().unwrap().rotated = true;
    }

    pub fn set_access_token_len(&self, len: Option<usize>) {
        self.state.lock().unwrap().access_token_len = len;
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.lock().unwrap().jwks_hits
    }

    pub fn set_refuse_refresh(&self, refuse: bool) {
        self.state.lock().unwrap().refuse_refresh = refuse;
    }

    /// Refresh grants answered (successful or not).
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    pub fn discovery_hits(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }

    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.state.lock().unwrap().calls.clone()
    }
}

fn handle(
    port: u16,
    stream: TcpStream,
    state: Arc<Mutex<State>>,
    refreshes: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
) {
    let issuer = issuer_of(port);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let path = target.split('?').next().unwrap_or("");
        let ok = match (method.as_str(), path) {
            ("GET", "/.well-known/openid-configuration") => {
                discovery_hits.fetch_add(1, Ordering::SeqCst);
                let status = state.lock().unwrap().discovery_status;
                match status {
                    Some(s) => respond(&mut out, s, "{\"error\":\"down\"}"),
                    None => {
                        let doc = json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/auth"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/jwks"),
                            "end_session_endpoint": format!("{issuer}/session/end"),
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                            "code_challenge_methods_supported": ["S256"]
                        });
                        respond(&mut out, 200, &doc.to_string())
                    }
                }
            }
            ("GET", "/jwks") => {
                let rotated = {
                    let mut s = state.lock().unwrap();
                    s.jwks_hits += 1;
                    s.rotated
                };
                let set = if rotated {
                    json!({"keys": [keys().ec.jwk(Some(KID_ROTATED), true)]})
                } else {
                    json!({"keys": [keys().rsa.jwk(Some(KID), true)]})
                };
                respond(&mut out, 200, &set.to_string())
            }
            ("POST", "/token") => {
                let form = parse_form(&body);
                let call = TokenCall {
                    headers: headers.clone(),
                    form: form.clone(),
                };
                let (status, answer) = token(&issuer, &call, &state, &refreshes);
                respond(&mut out, status, &answer)
            }
            _ => respond(&mut out, 404, "{\"error\":\"not_found\"}"),
        };
        if !ok {
            return;
        }
    }
}

fn token(
    issuer: &str,
    call: &TokenCall,
    state: &Mutex<State>,
    refreshes: &AtomicUsize,
) -> (u16, String) {
    state.lock().unwrap().calls.push(call.clone());
    let grant = call.field("grant_type").unwrap_or("");
    let invalid_grant = || (400, json!({"error": "invalid_grant"}).to_string());
    let issue = |id_token: Option<String>| -> (u16, String) {
        let mut s = state.lock().unwrap();
        s.issued += 1;
        let rt = format!("rt-{}", s.issued);
        s.live_refresh_tokens.insert(rt.clone());
        let at = match s.access_token_len {
            Some(n) => format!("at-{}-{}", s.issued, "x".repeat(n)),
            None => format!("at-{}", s.issued),
        };
        let mut answer = json!({
            "access_token": at,
            "token_type": "Bearer",
            "expires_in": s.access_ttl,
            "refresh_token": rt,
            "scope": "openid email offline_access"
        });
        if let Some(t) = id_token {
            answer["id_token"] = json!(t);
        }
        (200, answer.to_string())
    };
    match grant {
        "authorization_code" => {
            let code = call.field("code").unwrap_or("");
            let (case, nonce) = code.split_once('.').unwrap_or((code, ""));
            match case {
                "http500" => (500, "{\"error\":\"server_error\"}".into()),
                "invalid" => invalid_grant(),
                _ => {
                    let rotated = state.lock().unwrap().rotated;
                    issue(Some(id_token_with(issuer, case, Some(nonce), rotated)))
                }
            }
        }
        "refresh_token" => {
            refreshes.fetch_add(1, Ordering::SeqCst);
            let (delay, refuse) = {
                let s = state.lock().unwrap();
                (s.refresh_delay_ms, s.refuse_refresh)
            };
            std::thread::sleep(Duration::from_millis(delay));
            let rt = call.field("refresh_token").unwrap_or("").to_string();
            // Rotation: a refresh token works once.
            let live = state.lock().unwrap().live_refresh_tokens.remove(&rt);
            if refuse || !live {
                return invalid_grant();
            }
            let rotated = state.lock().unwrap().rotated;
            issue(Some(id_token_with(issuer, "good", None, rotated)))
        }
        _ => (400, json!({"error": "unsupported_grant_type"}).to_string()),
    }
}
