//! `jwt-authz`: checks a plugin configuration with exactly the code the filter runs, and
//! makes keys, JWK Sets and tokens for demos and tests.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use envoy_jwt_authz::config::{self, Routing};
use envoy_jwt_authz::jwt::Alg;
use envoy_jwt_authz::mint::Signer;
use serde_json::{json, Map, Value};

const USAGE: &str = "usage:
  jwt-authz check CONFIG.json            validate a plugin configuration, print a summary
  jwt-authz keygen ALG                   print a new private key (PEM) for ALG
  jwt-authz jwks ALG:KID:KEYFILE ...     print the JWK Set of the given private keys
  jwt-authz mint ALG KEYFILE [--kid KID] [--expires-in SECONDS] [CLAIMS_JSON]
                                         print a signed token (exp = now + 3600 by default)
ALG is one of RS256 RS384 RS512 PS256 ES256 ES384 EdDSA HS256";

fn alg(name: &str) -> Result<Alg, String> {
    Alg::from_name(name).ok_or_else(|| format!("unknown algorithm {name:?}"))
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn check(path: &str) -> Result<String, String> {
    let text = read(path)?;
    let cfg = config::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = vec!["ok".to_string()];
    for w in &cfg.warnings {
        out.push(format!("warning: {w}"));
    }
    for p in &cfg.providers {
        out.push(format!(
            "provider {}: issuer {}, {} local keys{}",
            p.name,
            p.issuer.as_deref().unwrap_or("(any)"),
            p.local_keys.keys.len(),
            p.remote
                .as_ref()
                .map(|r| format!(
                    ", remote {}{} via cluster {}",
                    r.authority, r.path, r.cluster
                ))
                .unwrap_or_default()
        ));
    }
    match &cfg.routing {
        Routing::Everything(_) => out.push("rules: none, every request needs a valid token".into()),
        Routing::Rules(rules) => {
            for (i, r) in rules.iter().enumerate() {
                out.push(format!(
                    "rules[{i}]: {:?} -> {:?}",
                    r.route.path, r.requires
                ));
            }
        }
    }
    if let Some(a) = &cfg.authorization {
        for p in &a.policies {
            out.push(format!("policy {} ({:?})", p.name, p.action));
        }
    }
    Ok(out.join("\n"))
}

fn jwks(specs: &[String]) -> Result<String, String> {
    let mut keys = Vec::new();
    for spec in specs {
        let mut parts = spec.splitn(3, ':');
        let (Some(a), Some(kid), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("{spec:?} is not ALG:KID:KEYFILE"));
        };
        let signer = Signer::from_pem(alg(a)?, &read(file)?)?;
        keys.push(signer.jwk(Some(kid).filter(|k| !k.is_empty()), false));
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

fn run(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("check") => check(args.get(1).ok_or(USAGE)?),
        Some("keygen") => Signer::generate(alg(args.get(1).ok_or(USAGE)?)?)?.to_pem(),
        Some("jwks") if args.len() > 1 => jwks(args.get(1..).unwrap_or_default()),
        Some("mint") => mint(args.get(1..).unwrap_or_default()),
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
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
