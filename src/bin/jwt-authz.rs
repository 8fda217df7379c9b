//! `jwt-authz`: checks a plugin configuration with exactly the code the filter runs, and
//! makes keys, JWK Sets and tokens for demos and tests.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use envoy_jwt_authz::cli::cookies;
use envoy_jwt_authz::cli::from_istio;
use envoy_jwt_authz::cli::mint::Signer;
use envoy_jwt_authz::cli::public_key;
use envoy_jwt_authz::cli::summary;
use envoy_jwt_authz::config;
use envoy_jwt_authz::crypto::signature::Alg;
use serde_json::{json, Map, Value};

const USAGE: &str = "usage:
  jwt-authz check [--json] FILE          validate a plugin configuration (JSON, YAML, or an
                                         Istio WasmPlugin manifest's pluginConfig) with the
                                         filter's own code; print ok, warnings and a summary
                                         (--json: print the JSON Envoy's `configuration`
                                         needs instead, warnings on stderr)
                                         exit 0 ok, 1 invalid configuration, 2 usage or I/O
  jwt-authz from-istio FILE... [--selector KEY=VALUE]... [--namespace NS] [--url OCI_URL]
                       [--sha256 HEX] [--json | --envoy] [--partial]
                                         convert RequestAuthentication, AuthorizationPolicy
                                         and VirtualService corsPolicy manifests into a
                                         WasmPlugin (+ ServiceEntry/DestinationRule for the
                                         JWKS hosts); --json: the plugin configuration only;
                                         --envoy: Envoy clusters and filter configuration.
                                         What cannot be translated is listed and exits 1;
                                         --partial still prints what translated (failing
                                         closed)
  jwt-authz keygen ALG                   print a new private key (PEM) for ALG
  jwt-authz jwks ALG:KID:KEYFILE ...     print the JWK Set of the given keys: private keys,
                                         PEM public keys (PUBLIC KEY, RSA PUBLIC KEY) or
                                         X.509 certificates (CERTIFICATE; adds x5c)
  jwt-authz mint ALG KEYFILE [--kid KID] [--expires-in SECONDS] [CLAIMS_JSON]
                                         print a signed token (exp = now + 3600 by default)
  jwt-authz session CONFIG ENTRY CLAIMS_JSON [--access TOKEN] [--expires-in SECONDS]
                    [--refresh TOKEN]    print a Cookie header with a session of oidc ENTRY
  jwt-authz flow CONFIG ENTRY STATE NONCE
                                         print a Cookie pair with a login flow of oidc ENTRY
ALG is one of RS256 RS384 RS512 PS256 ES256 ES384 EdDSA HS256 HS384 HS512";

fn alg(name: &str) -> Result<Alg, String> {
    Alg::from_name(name).ok_or_else(|| format!("unknown algorithm {name:?}"))
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// Every document of a (multi-document) YAML file; errors carry line and column.
fn yaml_docs(path: &str, text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| match e.location() {
            Some(l) => format!("{path}:{}:{}: {e}", l.line(), l.column()),
            None => format!("{path}: {e}"),
        })?;
        docs.push(v);
    }
    Ok(docs)
}

/// The plugin configuration(s) in a file, as the JSON bytes Envoy hands the filter: a JSON
/// file as is; YAML converted as Istio converts `pluginConfig`; in a (multi-document)
/// manifest, the `spec.pluginConfig` of each `WasmPlugin`.
fn configs(path: &str, text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    if text.trim_start().starts_with('{') {
        return Ok(vec![(path.to_string(), text.as_bytes().to_vec())]);
    }
    let docs = yaml_docs(path, text)?;
    let plugins: Vec<(String, &Value)> = docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("WasmPlugin"))
        .map(|d| {
            let name = d
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            (
                format!("{path}: WasmPlugin {name}"),
                d.pointer("/spec/pluginConfig").unwrap_or(&Value::Null),
            )
        })
        .collect();
    let chosen = match (plugins.is_empty(), docs.as_slice()) {
        (false, _) => plugins,
        (true, [one]) => vec![(path.to_string(), one)],
        (true, _) => return Err(format!("{path}: no WasmPlugin and not one document")),
    };
    chosen
        .into_iter()
        .map(|(name, v)| {
            serde_json::to_vec(v)
                .map(|b| (name, b))
                .map_err(|e| e.to_string())
        })
        .collect()
}

enum Failure {
    Invalid(String),
    Usage(String),
}

fn check(args: &[String]) -> Result<String, Failure> {
    let (json_out, path) = match args {
        [flag, path] if flag == "--json" => (true, path),
        [path] => (false, path),
        _ => return Err(Failure::Usage(USAGE.into())),
    };
    let text = read(path).map_err(Failure::Usage)?;
    let mut out = Vec::new();
    // A file that does not parse is an invalid configuration (exit 1), as JSON errors are.
    for (name, bytes) in configs(path, &text).map_err(Failure::Invalid)? {
        let cfg = config::parse_for_check(&bytes)
            .map_err(|e| Failure::Invalid(format!("{name}: invalid plugin configuration: {e}")))?;
        if json_out {
            for w in &cfg.warnings {
                eprintln!("warning: {name}: {w}");
            }
            out.push(String::from_utf8_lossy(&bytes).into_owned());
            continue;
        }
        out.push(format!("{name}: ok"));
        out.extend(cfg.warnings.iter().map(|w| format!("warning: {w}")));
        out.extend(summary::describe(&cfg));
    }
    Ok(out.join("\n"))
}

fn from_istio(args: &[String]) -> Result<String, Failure> {
    let usage = || Failure::Usage(USAGE.into());
    let mut opts = from_istio::Options::default();
    let (mut files, mut mode, mut partial) = (Vec::new(), "istio", false);
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--selector" => {
                let kv = rest.next().ok_or_else(usage)?;
                let (k, v) = kv.split_once('=').ok_or_else(usage)?;
                opts.selector.insert(k.to_string(), v.to_string());
            }
            "--namespace" => opts.namespace = Some(rest.next().ok_or_else(usage)?.clone()),
            "--url" => opts.url = Some(rest.next().ok_or_else(usage)?.clone()),
            "--sha256" => opts.sha256 = Some(rest.next().ok_or_else(usage)?.clone()),
            "--json" => mode = "json",
            "--envoy" => mode = "envoy",
            "--partial" => partial = true,
            f if !f.starts_with("--") => files.push(f.to_string()),
            _ => return Err(usage()),
        }
    }
    if files.is_empty() {
        return Err(usage());
    }
    let mut docs = Vec::new();
    for f in &files {
        let text = read(f).map_err(Failure::Usage)?;
        for value in yaml_docs(f, &text).map_err(Failure::Invalid)? {
            docs.push(from_istio::Doc {
                file: f.clone(),
                value,
            });
        }
    }
    let c = from_istio::convert(&docs, &opts);
    for n in &c.notes {
        eprintln!("note: {n}");
    }
    let json = Value::Object(c.config.clone()).to_string();
    let mut errors: Vec<String> = c.errors.iter().map(|e| format!("error: {e}")).collect();
    match config::parse(json.as_bytes()) {
        Ok(cfg) => cfg.warnings.iter().for_each(|w| eprintln!("warning: {w}")),
        Err(e) => errors.push(format!(
            "error: the converted configuration is invalid: {e}"
        )),
    }
    let out = match mode {
        "json" => json,
        "envoy" => from_istio::envoy(&c).map_err(Failure::Usage)?,
        _ => from_istio::manifests(&c, &opts).map_err(Failure::Usage)?,
    };
    if errors.is_empty() {
        return Ok(out);
    }
    if partial {
        println!("{}", out.trim_end());
    }
    Err(Failure::Invalid(format!(
        "{}\n{} part(s) not translated{}",
        errors.join("\n"),
        errors.len(),
        if partial {
            "; the output above leaves them out, failing closed"
        } else {
            "; nothing printed (--partial prints what translated)"
        }
    )))
}

fn jwks(specs: &[String]) -> Result<String, String> {
    let mut keys = Vec::new();
    for spec in specs {
        let mut parts = spec.splitn(3, ':');
        let (Some(a), Some(kid), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("{spec:?} is not ALG:KID:KEYFILE"));
        };
        let (alg, text) = (alg(a)?, read(file)?);
        let kid = Some(kid).filter(|k| !k.is_empty());
        if public_key::is_public(&text) {
            let mut jwk = public_key::jwk(alg, &text).map_err(|e| format!("{file}: {e}"))?;
            if let (Some(obj), Some(kid)) = (jwk.as_object_mut(), kid) {
                obj.insert("kid".into(), json!(kid));
            }
            keys.push(jwk);
        } else {
            keys.push(Signer::from_pem(alg, &text)?.jwk(kid, false));
        }
    }
    Ok(json!({ "keys": keys }).to_string())
}

fn mint(args: &[String]) -> Result<String, String> {
    let (Some(a), Some(file)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let signer = Signer::from_pem(alg(a)?, &read(file)?)?;
    let mut kid = None;
    let mut expires_in: u64 = 3600;
    let mut claims = Map::new();
    let mut rest = args.iter().skip(2);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--kid" => kid = rest.next().cloned(),
            "--expires-in" => {
                expires_in = rest
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--expires-in needs a number of seconds")?
            }
            json_text => match serde_json::from_str(json_text) {
                Ok(Value::Object(m)) => claims = m,
                _ => return Err(format!("{json_text:?} is not a JSON object")),
            },
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    claims.entry("iat").or_insert(json!(now));
    claims.entry("exp").or_insert(json!(now + expires_in));
    signer.sign(kid.as_deref(), &claims)
}

fn oidc_cookie(kind: &str, args: &[String]) -> Result<String, String> {
    let (Some(file), Some(entry), Some(third)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(USAGE.into());
    };
    let cfg = envoy_jwt_authz::config::parse(read(file)?.as_bytes()).map_err(|e| e.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    if kind == "flow" {
        let nonce = args.get(3).ok_or(USAGE)?;
        return cookies::flow(&cfg, entry, third, nonce, now);
    }
    let Ok(Value::Object(claims)) = serde_json::from_str(third) else {
        return Err(format!("{third:?} is not a JSON object"));
    };
    let mut spec = cookies::SessionSpec {
        access_token: None,
        access_expires_at: None,
        refresh_token: None,
    };
    let mut rest = args.iter().skip(3);
    while let Some(arg) = rest.next() {
        let value = rest.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--access" => spec.access_token = Some(value.clone()),
            "--refresh" => spec.refresh_token = Some(value.clone()),
            "--expires-in" => {
                let s: i64 = value.parse().map_err(|_| "--expires-in needs seconds")?;
                spec.access_expires_at = Some(now.saturating_add_signed(s));
            }
            _ => return Err(USAGE.into()),
        }
    }
    cookies::session(&cfg, entry, claims, spec, now)
}

fn run(args: &[String]) -> Result<String, Failure> {
    match args.first().map(String::as_str) {
        Some("check") => check(args.get(1..).unwrap_or_default()),
        Some("from-istio") => from_istio(args.get(1..).unwrap_or_default()),
        _ => tool(args).map_err(Failure::Usage),
    }
}

fn tool(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("keygen") => Signer::generate(alg(args.get(1).ok_or(USAGE)?)?)?.to_pem(),
        Some("jwks") if args.len() > 1 => jwks(args.get(1..).unwrap_or_default()),
        Some("mint") => mint(args.get(1..).unwrap_or_default()),
        Some(kind @ ("session" | "flow")) => oidc_cookie(kind, args.get(1..).unwrap_or_default()),
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            println!("{}", out.trim_end());
            ExitCode::SUCCESS
        }
        Err(Failure::Invalid(e)) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
