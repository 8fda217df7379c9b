//! What the browser-login tests share: the real OpenID provider (tests/idp/provider.js,
//! panva's oidc-provider) started on a chosen port, the plugin configuration of the contract's
//! `oidc` example for a given Envoy port, a cookie jar for Envoy's cookies fed from
//! `Set-Cookie`, the IdP's dev login and consent pages driven with curl, and the `oidc.<name>.*`
//! counters.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{root, Env, Proc, Resp};

pub const CLIENT_ID: &str = "gateway";
pub const CLIENT_SECRET: &str = "gateway-secret";
pub const COOKIE: &str = "web";
pub const KEY_A: &str = "session-key-A-0123456789abcdef-0123456789";
pub const KEY_B: &str = "session-key-B-0123456789abcdef-0123456789";
pub const CALLBACK: &str = "/oauth2/callback";
pub const LOGOUT: &str = "/oauth2/logout";

/// The real IdP, stopped by its PID when dropped.
pub struct Idp {
    pub port: u16,
    pub issuer: String,
    _proc: Proc,
}

pub struct IdpOpts<'a> {
    /// `127.0.0.1` or `localhost` (the issuer's host; it always listens on 127.0.0.1).
    pub host: &'a str,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
    pub access_token_ttl: Option<u64>,
}

impl Idp {
    pub fn start(port: u16, o: &IdpOpts) -> Idp {
        let script = root().join("tests/idp/provider.js");
        assert!(
            root().join("tests/idp/node_modules").exists(),
            "tests/idp/node_modules missing: run scripts/setup"
        );
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(port.to_string())
            .args(["--host", o.host])
            .args(["--redirect-uri", &o.redirect_uri])
            .args(["--post-logout-redirect-uri", &o.post_logout_redirect_uri])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]);
        if let Some(ttl) = o.access_token_ttl {
            cmd.args(["--access-token-ttl", &ttl.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node");
        let stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(iss) = line.strip_prefix("IDP READY ") {
                    let _ = tx.send(iss.to_string());
                }
            }
        });
        let issuer = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the IdP did not print IDP READY");
        Idp {
            port,
            issuer,
            _proc: proc,
        }
    }
}

/// The plugin configuration: the contract's example entry `web` (inline secrets, plain http),
/// every path requiring the session, for an Envoy listening on `envoy_port`.
pub fn web_config(issuer: &str, envoy_port: u16, keys: &[&str]) -> Value {
    json!({
        "oidc": {"web": web_entry(issuer, envoy_port, keys)},
        "rules": [{"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]
    })
}

pub fn web_entry(issuer: &str, envoy_port: u16, keys: &[&str]) -> Value {
    let keys: Vec<Value> = keys.iter().map(|k| json!({"inline": k})).collect();
    json!({
        "issuer": issuer,
        "cluster": "idp",
        "client_id": CLIENT_ID,
        "client_secret": {"inline": CLIENT_SECRET},
        "redirect_uri": format!("http://127.0.0.1:{envoy_port}{CALLBACK}"),
        "scopes": ["openid", "email", "offline_access"],
        "extra_auth_params": {"prompt": "consent"},
        "session": {"cookie_name": COOKIE, "keys": keys, "secure": false},
        "logout": {"path": LOGOUT, "post_logout_redirect_uri": format!("http://127.0.0.1:{envoy_port}/")},
        "claim_to_headers": [{"header_name": "x-email", "claim_name": "email"}]
    })
}

pub fn redirect_uri(envoy_port: u16) -> String {
    format!("http://127.0.0.1:{envoy_port}{CALLBACK}")
}

pub fn post_logout_uri(envoy_port: u16) -> String {
    format!("http://127.0.0.1:{envoy_port}/")
}

/// One `Set-Cookie` line.
#[derive(Clone, Debug)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes, lowercased names: `("max-age", "600")`, `("httponly", "")`.
    pub attrs: Vec<(String, String)>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn clears(&self) -> bool {
        self.attr("max-age") == Some("0")
            || self.attr("expires").is_some_and(|e| e.contains("1970"))
    }
}

pub fn set_cookies(r: &Resp) -> Vec<SetCookie> {
    r.headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| {
            let mut parts = v.split(';');
            let (name, value) = parts
                .next()
                .unwrap_or("")
                .split_once('=')
                .unwrap_or(("", ""));
            let attrs = parts
                .map(|a| {
                    let (n, v) = a.trim().split_once('=').unwrap_or((a.trim(), ""));
                    (n.to_ascii_lowercase(), v.to_string())
                })
                .collect();
            SetCookie {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                attrs,
            }
        })
        .collect()
}

/// Envoy's cookies as a browser would keep them. The contract names flow cookies only by
/// their prefix: a cookie set with `Max-Age=600` (a login start) counts as a flow.
#[derive(Clone, Debug, Default)]
pub struct Jar {
    pub cookies: BTreeMap<String, String>,
    pub flow_names: BTreeSet<String>,
}

impl Jar {
    pub fn apply(&mut self, r: &Resp) {
        for c in set_cookies(r) {
            if c.clears() {
                self.cookies.remove(&c.name);
            } else {
                if c.attr("max-age") == Some("600") {
                    self.flow_names.insert(c.name.clone());
                }
                self.cookies.insert(c.name, c.value);
            }
        }
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_string(), value.to_string());
    }

    pub fn header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        format!("Cookie: {}", pairs.join("; "))
    }

    /// The filter's cookies that are not flows: the session (maybe in chunks).
    pub fn session(&self) -> Vec<(String, String)> {
        self.cookies
            .iter()
            .filter(|(n, _)| n.starts_with(COOKIE) && !self.flow_names.contains(*n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    pub fn flows(&self) -> Vec<String> {
        self.cookies
            .keys()
            .filter(|n| self.flow_names.contains(*n))
            .cloned()
            .collect()
    }

    pub fn without_flows(&self) -> Jar {
        let mut j = self.clone();
        j.cookies.retain(|n, _| !self.flow_names.contains(n));
        j
    }
}

/// `application/x-www-form-urlencoded` decoding of one component.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if s.get(i + 1..i + 3).is_some() => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters of a URL, decoded, in order.
pub fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    let q = q.split('#').next().unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub fn param_count(url: &str, name: &str) -> usize {
    query(url).iter().filter(|(k, _)| k == name).count()
}

/// `Accept: text/html` and `Sec-Fetch-Mode: navigate`: what a browser sends for a page.
pub const NAV: [&str; 4] = [
    "-H",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "-H",
    "Sec-Fetch-Mode: navigate",
];

pub fn navigate(env: &Env, jar: &Jar, path: &str) -> Resp {
    let cookie = jar.header();
    let mut args: Vec<&str> = NAV.to_vec();
    if !jar.cookies.is_empty() {
        args.extend(["-H", cookie.as_str()]);
    }
    args.push(path);
    env.curl(&args)
}

/// A `fetch()`-like request: curl's default `Accept: */*`, no `Sec-Fetch-Mode: navigate`.
pub fn api(env: &Env, jar: &Jar, extra: &[&str], path: &str) -> Resp {
    let cookie = jar.header();
    let mut args: Vec<&str> = extra.to_vec();
    if !jar.cookies.is_empty() {
        args.extend(["-H", cookie.as_str()]);
    }
    args.push(path);
    env.curl(&args)
}

/// The path and query of an absolute URL on Envoy (the callback the IdP redirects to).
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".into(),
    }
}

/// curl against any URL, with a cookie jar file for the IdP's own cookies.
pub fn curl_url(url: &str, jar: &Path, extra: &[&str]) -> Resp {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    crate::common::parse_curl(&String::from_utf8_lossy(&out.stdout))
}

pub fn idp_jar(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "idp-jar-{}-{tag}-{}",
        std::process::id(),
        crate::common::free_port()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn absolute(issuer: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        let origin = issuer
            .split_once("://")
            .map(|(s, r)| format!("{s}://{}", r.split('/').next().unwrap_or("")))
            .unwrap_or_default();
        format!("{origin}{location}")
    }
}

/// Drives oidc-provider's dev interactions from `auth_url` (the filter's redirect): the login
/// form (any login and password), then the consent form, following the IdP's redirects until
/// one leaves the IdP for `redirect_prefix`; returns that URL (the callback with `code`).
pub fn idp_login(
    issuer: &str,
    auth_url: &str,
    user: &str,
    jar: &Path,
    redirect_prefix: &str,
) -> String {
    let mut url = auth_url.to_string();
    for _ in 0..12 {
        let r = curl_url(&url, jar, &[]);
        if (300..400).contains(&r.status) {
            let loc = r.header("location").unwrap_or("").to_string();
            if loc.starts_with(redirect_prefix) {
                return loc;
            }
            url = absolute(issuer, &loc);
            continue;
        }
        assert_eq!(r.status, 200, "IdP at {url}: {} {}", r.status, r.body);
        let action = r
            .body
            .split("action=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no form at {url}: {}", r.body))
            .replace("&amp;", "&");
        let form = if r.body.contains("value=\"login\"") {
            format!("prompt=login&login={user}&password=any")
        } else if r.body.contains("value=\"consent\"") {
            "prompt=consent".to_string()
        } else {
            panic!("unknown IdP page at {url}: {}", r.body)
        };
        let post = curl_url(&absolute(issuer, &action), jar, &["--data", &form]);
        assert!(
            (300..400).contains(&post.status),
            "IdP POST {action}: {} {}",
            post.status,
            post.body
        );
        let loc = post.header("location").unwrap_or("").to_string();
        if loc.starts_with(redirect_prefix) {
            return loc;
        }
        url = absolute(issuer, &loc);
    }
    panic!("the IdP never redirected to {redirect_prefix}")
}

/// The `oidc.<name>.<counter>` counters of `/stats`, keyed by `<counter>`, whatever prefix
/// Envoy and the filter put before `oidc.` (`wasmcustom.jwt_authz.` today).
pub fn oidc_stats(env: &Env, name: &str) -> HashMap<String, u64> {
    let marker = format!("oidc.{name}.");
    env.admin_get("/stats?filter=oidc")
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(n, v)| {
            let (_, counter) = n.split_once(&marker)?;
            Some((counter.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Waits (up to 1 s: the filter flushes counters every 100 ms) until `counter` reaches
/// `at_least`; returns its value.
pub fn stat_at_least(env: &Env, counter: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let v = oidc_stats(env, "web").get(counter).copied().unwrap_or(0);
        if v >= at_least || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn stat(env: &Env, counter: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(250));
    oidc_stats(env, "web").get(counter).copied().unwrap_or(0)
}
