//! Issue 9: the Istio examples in `envoy/istio/` cannot rot. Each manifest passes the checker,
//! and each WasmPlugin's `pluginConfig` (converted to JSON as Istio does) runs in real Envoy
//! with its JWKS cluster named as the ServiceEntry names it. The checker's verdicts and exit
//! codes, and its error being the one the filter logs, are checked here too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Command, Output};

use common::jwks_server::{JwksServer, Mode};
use common::{claims, keys, root, Checks, Env, Opts};
use serde_json::{json, Value};

fn checker(args: &[&str]) -> Output {
    Command::new(root().join("target/debug/jwt-authz"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// The `pluginConfig` of the manifest's WasmPlugin, as JSON.
fn plugin_config(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let plugin = serde_norway::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|d| d["kind"] == "WasmPlugin");
    plugin.unwrap()["spec"]["pluginConfig"].clone()
}

fn start(cfg: &Value, provider: &str, server: &JwksServer) -> Env {
    let cluster = cfg["providers"][provider]["remote_jwks"]["http_uri"]["cluster"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(cluster.starts_with("outbound|443||"), "{cluster}");
    Env::start_with(
        cfg,
        Opts {
            jwks_port: Some(server.port),
            jwks_cluster: Some(cluster),
            ..Opts::default()
        },
    )
}

fn jwks() -> JwksServer {
    JwksServer::start(Mode::Serve(
        json!({"keys": [keys().rsa.jwk(Some("k1"), false)]}).to_string(),
    ))
}

#[test]
fn every_example_passes_the_checker() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("envoy/istio"))
        .unwrap()
        .map(|e| format!("envoy/istio/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let out = checker(&["check", &f]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{f}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(": WasmPlugin ") && stdout.contains(": ok"),
            "{f}: {stdout}"
        );
    }
}

/// Every document of every example.
fn documents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root().join("envoy/istio")).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for d in serde_norway::Deserializer::from_str(&text) {
            let v = <Value as serde::Deserialize>::deserialize(d).unwrap();
            out.push((path.display().to_string(), v));
        }
    }
    out
}

/// Issue 21: the examples are safe to apply in a real mesh.
#[test]
fn examples_are_scoped_pinned_and_fail_closed() {
    let docs = documents();
    let mut plugins = 0;
    for (file, d) in &docs {
        let spec = &d["spec"];
        match d["kind"].as_str().unwrap_or("") {
            "WasmPlugin" => {
                plugins += 1;
                // Inbound only: a sidecar's plugin must not filter the workload's own calls.
                assert_eq!(spec["match"], json!([{"mode": "SERVER"}]), "{file}");
                assert_eq!(spec["failStrategy"], "FAIL_CLOSE", "{file}");
                assert_eq!(spec["imagePullPolicy"], "IfNotPresent", "{file}");
                let sha = spec["sha256"].as_str().unwrap_or("");
                assert!(
                    sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{file}: sha256 {sha:?}"
                );
                assert_eq!(spec["phase"], "AUTHN", "{file}");
            }
            // The TLS-originating IdP cluster stays in the plugin's namespace.
            "ServiceEntry" | "DestinationRule" => {
                assert_eq!(spec["exportTo"], json!(["."]), "{file}: {}", d["kind"])
            }
            _ => {}
        }
    }
    assert!(plugins >= 2);
    for f in [
        "envoy/istio/gateway-jwt.yaml",
        "envoy/istio/sidecar-authz.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        for words in [
            "pathNormalization",
            "no longer see request.auth.*",
            "FAIL_OPEN",
        ] {
            assert!(text.contains(words), "{f}: no {words:?}");
        }
    }
}

#[test]
fn check_json_prints_what_envoy_needs_and_syntax_errors_say_where() {
    let out = checker(&["check", "--json", "envoy/istio/gateway-jwt.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, plugin_config("envoy/istio/gateway-jwt.yaml"));
    let dir = std::env::temp_dir().join(format!("jwt-authz-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_json = dir.join("bad.json");
    std::fs::write(&bad_json, "{\"providers\": {\n  \"p\": ,\n}}").unwrap();
    let out = checker(&["check", bad_json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at line 2 column 8"), "{err}");
    let bad_yaml = dir.join("bad.yaml");
    std::fs::write(&bad_yaml, "providers:\n  p: {\n  q: [\n").unwrap();
    let out = checker(&["check", "--json", bad_yaml.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.yaml:"), "{err}");
    assert!(err.contains("line "), "{err}");
    // Warnings go to stderr with --json, as `warning:` lines, and leave the exit code 0.
    let warned = dir.join("warned.json");
    std::fs::write(&warned, json!({"providers": {}, "rules": []}).to_string()).unwrap();
    let out = checker(&["check", "--json", warned.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: "));
    let out = checker(&["check", warned.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nwarning: rules is []"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gateway_example_runs_in_envoy() {
    let cfg = plugin_config("envoy/istio/gateway-jwt.yaml");
    let server = jwks();
    let env = start(&cfg, "auth", &server);
    let mut c = Checks::default();
    let token = keys()
        .rsa
        .sign(
            Some("k1"),
            &claims(
                "https://auth.example.com/",
                json!({"aud": "api://shop", "sub": "u-1", "org": {"tenant": {"id": "t-9"}}}),
            ),
        )
        .unwrap();
    let bearer = format!("Authorization: Bearer {token}");
    let r = env.curl(&["-H", &bearer, "-H", "x-tenant: spoofed", "/orders"]);
    c.eq("token → 200", r.status, 200);
    c.eq(
        "x-user-id",
        r.upstream_header("x-user-id"),
        Some("u-1".into()),
    );
    c.eq(
        "x-tenant",
        r.upstream_header("x-tenant"),
        Some("t-9".into()),
    );
    c.eq("token removed", r.upstream_header("authorization"), None);
    c.reply("no token", &env.curl(&["/orders"]), 401, "Jwt is missing");
    c.eq("health without token", env.curl(&["/healthz"]).status, 200);
    let r = env.curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://shop.example.com",
        "-H",
        "Access-Control-Request-Method: POST",
        "/orders",
    ]);
    c.eq(
        "preflight",
        (r.status, r.header("access-control-allow-origin")),
        (200, Some("https://shop.example.com")),
    );
    c.check(
        "keys fetched through the ServiceEntry cluster",
        server.count() >= 1,
        || format!("{} fetches", server.count()),
    );
    c.finish(&env);
}

#[test]
fn sidecar_example_runs_in_envoy() {
    let cfg = plugin_config("envoy/istio/sidecar-authz.yaml");
    let server = jwks();
    let env = start(&cfg, "auth0", &server);
    let mut c = Checks::default();
    let iss = "https://example.auth0.com/";
    let sign = |extra: Value| {
        let base = json!({"sub": "uoPlJVCJID9UxJS1jdOMPcr9Gmz2TGgP@clients", "aud": "istio-jwt-test",
                          "scope": "read:database write:database"});
        let mut m = claims(iss, base);
        for (k, v) in extra.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        format!(
            "Authorization: Bearer {}",
            keys().rsa.sign(Some("k1"), &m).unwrap()
        )
    };
    c.eq(
        "GET /headers",
        env.curl(&["-H", &sign(json!({})), "/headers"]).status,
        200,
    );
    c.reply(
        "GET /ip",
        &env.curl(&["-H", &sign(json!({})), "/ip"]),
        403,
        "RBAC: access denied",
    );
    c.reply(
        "no token",
        &env.curl(&["/headers"]),
        403,
        "RBAC: access denied",
    );
    c.reply(
        "scope read only",
        &env.curl(&["-H", &sign(json!({"scope": "read:database"})), "/headers"]),
        403,
        "RBAC: access denied",
    );
    c.finish(&env);
}

#[test]
fn checker_errors_are_the_filters_and_exit_codes_say_which() {
    let dir = std::env::temp_dir().join(format!("jwt-authz-checker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = json!({"providers": {"p": {"issuer": "https://i", "remote_jwks": {"http_uri": {"uri": "https://i/jwks", "timeout": "1s"}}}}});
    let bad_path = dir.join("bad.yaml");
    std::fs::write(&bad_path, serde_norway::to_string(&bad).unwrap()).unwrap();
    let out = checker(&["check", bad_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let (_, message) = err
        .trim()
        .split_once(": invalid plugin configuration: ")
        .unwrap();
    assert!(
        message.starts_with("providers.p.remote_jwks.http_uri"),
        "{err}"
    );
    // The same words in Envoy's log when the filter refuses the same config.
    let log = match Env::try_start(&bad) {
        Ok(env) => panic!("envoy served a bad config on {}", env.port),
        Err(log) => log,
    };
    assert!(
        log.contains(&format!("invalid plugin configuration: {message}")),
        "{message} not in\n{log}"
    );

    let good_path = dir.join("good.json");
    std::fs::write(
        &good_path,
        json!({"providers": {}, "rules": []}).to_string(),
    )
    .unwrap();
    let out = checker(&["check", good_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
    assert_eq!(
        checker(&["check", "/nonexistent.yaml"]).status.code(),
        Some(2)
    );
    assert_eq!(checker(&["frobnicate"]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
