//! Issue 20: what the filter tells the rest of Envoy, against real Envoy: filter state and
//! response code details in a file access log, AUDIT and dry-run policies, per-policy
//! counters under `stat_prefix`, rules on route names, route metadata, headers and query
//! parameters, and a claim header choosing the upstream cluster.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{claims, free_port, keys, now, start_upstream, Checks, Env};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.example";

fn token(extra: Value) -> String {
    keys().rsa.sign(Some("k1"), &claims(ISS, extra)).unwrap()
}

fn plugin_config() -> Value {
    let jwks = json!({"keys": [keys().rsa.jwk(Some("k1"), false)]}).to_string();
    json!({
        "stat_prefix": "edge",
        "filter_state": true,
        "providers": {"idp": {"issuer": ISS, "local_jwks": {"inline_string": jwks},
            "claim_to_headers": [{"header_name": "x-tenant", "claim_name": "tenant"}]}},
        "rules": [
            // No auth on the Envoy route named public-route, whatever its path.
            {"match": {"prefix": "/", "route_names": ["public-route"]}},
            // Routes tagged tier=admin need the admin audience.
            {"match": {"prefix": "/", "route_metadata": {"tier": "admin"}},
             "requires": {"provider_and_audiences": {"provider_name": "idp", "audiences": ["admin"]}}},
            {"match": {"prefix": "/h", "headers": [{"name": "x-skip", "string_match": {"exact": "yes"}}]}},
            {"match": {"prefix": "/q", "query_parameters": [{"name": "debug", "present_match": true}]}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}
        ],
        "authorization": {"policies": [
            {"name": "deny-banned", "action": "DENY",
             "rules": [{"when": [{"key": "request.auth.claims[banned]", "values": ["true"]}]}]},
            {"name": "audit-all", "action": "AUDIT", "rules": [{}]},
            {"name": "would-deny-beta", "action": "DENY", "dry_run": true,
             "rules": [{"when": [{"key": "request.auth.claims[beta]", "values": ["true"]}]}]},
            {"name": "would-allow-gamma", "action": "ALLOW", "dry_run": true,
             "rules": [{"when": [{"key": "request.auth.claims[gamma]", "values": ["true"]}]}]},
            {"name": "tenants", "action": "ALLOW",
             "rules": [{"when": [{"key": "request.auth.claims[tenant]", "values": ["a", "b"]}]},
                       {"to": [{"operation": {"paths": ["/open*", "/h*", "/q*"]}}]}]}
        ]}
    })
}

/// One access log line per request: what an operator would log.
const FORMAT: &str = "%RESPONSE_CODE% %RESPONSE_CODE_DETAILS% route=%ROUTE_NAME% \
    cluster=%UPSTREAM_CLUSTER% principal=%FILTER_STATE(wasm.jwt_authz.principal:PLAIN)% \
    provider=%FILTER_STATE(wasm.jwt_authz.provider:PLAIN)% \
    result=%FILTER_STATE(wasm.jwt_authz.result:PLAIN)% \
    policies=%FILTER_STATE(wasm.jwt_authz.policies:PLAIN)% \
    dry_run=%FILTER_STATE(wasm.jwt_authz.dry_run_result:PLAIN)% \
    claims=%FILTER_STATE(wasm.jwt_authz.claims:PLAIN)%\n";

const YAML: &str = r#"admin:
  address: {socket_address: {address: 127.0.0.1, port_value: ADMIN}}
static_resources:
  listeners:
  - name: main
    address: {socket_address: {address: 127.0.0.1, port_value: PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: ACCESS_LOG
              log_format: {text_format_source: {inline_string: FORMAT}}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              # Routing on a claim: x-tenant is set by the filter (claim_to_headers), and
              # Envoy picks the route again after the filter edits the request headers.
              - name: tenant-a
                match: {prefix: "/t/", headers: [{name: x-tenant, string_match: {exact: a}}]}
                route: {cluster: upstream_a}
              - name: tenant-b
                match: {prefix: "/t/", headers: [{name: x-tenant, string_match: {exact: b}}]}
                route: {cluster: upstream_b}
              - name: public-route
                match: {prefix: "/open"}
                route: {cluster: upstream_a}
              - name: admin
                match: {prefix: "/admin"}
                metadata: {filter_metadata: {envoy-jwt-authz: {tier: admin}}}
                route: {cluster: upstream_a}
              - name: default
                match: {prefix: "/"}
                route: {cluster: upstream_a}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: jwt_authz
                root_id: jwt_authz
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: jwt_authz
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "WASM"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: PLUGIN
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream_a
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream_a
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: UPSTREAM_A}}}
  - name: upstream_b
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream_b
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: UPSTREAM_B}}}
"#;

fn access_log_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let read = || -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };
    // Envoy writes access log files out every 10 s (or when 64 KB are buffered).
    for _ in 0..150 {
        if read().len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut lines = read();
    lines.resize(n.max(lines.len()), String::new());
    lines
}

fn counter(env: &Env, name: &str) -> Option<u64> {
    env.admin_get("/stats?filter=^wasmcustom")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wasmcustom.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn access_log_counters_routes_and_claim_routing() {
    let port = free_port();
    let (_upstream_b, upstream_b) = start_upstream();
    let dir =
        std::env::temp_dir().join(format!("jwt-authz-telemetry-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let access_log = dir.join("access.log");
    let _ = std::fs::remove_file(&access_log);
    let plugin = serde_json::to_string(&plugin_config().to_string()).unwrap();
    let env = Env::start_yaml(port, |upstream_a, admin| {
        YAML.replace("ADMIN", &admin.to_string())
            .replace("PORT", &port.to_string())
            .replace("ACCESS_LOG", access_log.to_str().unwrap())
            .replace("FORMAT", &serde_json::to_string(FORMAT).unwrap())
            .replace("WASM", &common::wasm_path())
            .replace("PLUGIN", &plugin)
            .replace("UPSTREAM_A", &upstream_a.to_string())
            .replace("UPSTREAM_B", &upstream_b.to_string())
    });
    let mut c = Checks::default();
    let bearer = |t: &str| format!("authorization: Bearer {t}");
    let principal = format!("{ISS}/alice");

    // 1. The three lines of the issue: a 200, a 401 expired and an RBAC 403.
    let ok = token(json!({"tenant": "a"}));
    let r = env.curl(&["-H", &bearer(&ok), "/t/orders"]);
    c.eq("200 status", r.status, 200);
    let t = now();
    let expired = token(json!({"tenant": "a", "iat": t - 7200, "exp": t - 3600}));
    let r = env.curl(&["-H", &bearer(&expired), "/t/orders"]);
    c.reply("401 expired", &r, 401, "Jwt is expired");
    let banned = token(json!({"tenant": "a", "banned": true}));
    let r = env.curl(&["-H", &bearer(&banned), "/t/orders"]);
    c.reply("403 banned", &r, 403, "RBAC: access denied");
    let lines = access_log_lines(&access_log, 3);
    let (l200, l401, l403) = (&lines[0], &lines[1], &lines[2]);
    c.check(
        "200 line",
        l200.starts_with(&format!(
        "200 via_upstream route=tenant-a cluster=upstream_a principal={principal} provider=idp \
         result=allowed policies=audit-all,tenants dry_run=allowed claims={{")),
        || l200.clone(),
    );
    c.check("200 line claims", l200.contains("\"tenant\":\"a\""), || {
        l200.clone()
    });
    c.check(
        "401 line",
        l401.starts_with(
            "401 jwt_authz_denied{Jwt_is_expired} route=default cluster=upstream_a principal=- provider=- \
         result=denied_expired policies=- dry_run=- claims=-",
        ),
        || l401.clone(),
    );
    c.check(
        "403 line",
        l403.starts_with(&format!(
        "403 jwt_authz_denied{{rbac:deny-banned}} route=default cluster=upstream_a principal={principal} \
         provider=idp result=denied_authorization policies=deny-banned,audit-all,tenants \
         dry_run=denied_authorization")),
        || l403.clone(),
    );

    // 2. Routing on a claim: tenants a and b reach two clusters, whatever x-tenant they send.
    let b = token(json!({"tenant": "b"}));
    let r = env.curl(&["-H", &bearer(&b), "-H", "x-tenant: a", "/t/orders"]);
    c.eq("tenant b status", r.status, 200);
    c.eq(
        "tenant b header",
        r.upstream_header("x-tenant"),
        Some("b".into()),
    );
    let r = env.curl(&["-H", &bearer(&ok), "-H", "x-tenant: b", "/t/orders"]);
    c.eq(
        "tenant a header",
        r.upstream_header("x-tenant"),
        Some("a".into()),
    );
    // No x-tenant claim: no tenant route matches; the default route answers.
    let none = token(json!({"tenant": "c"}));
    let r = env.curl(&["-H", &bearer(&none), "/t/orders"]);
    c.reply("tenant c: no ALLOW", &r, 403, "RBAC: access denied");

    // 3. Route names, route metadata, header and query parameter matchers select rules.
    let r = env.curl(&["/open/anything"]);
    c.eq("public-route: no token needed", r.status, 200);
    let r = env.curl(&["/other"]);
    c.reply("default route: token needed", &r, 401, "Jwt is missing");
    let r = env.curl(&["-H", &bearer(&ok), "/admin/x"]);
    c.reply(
        "admin route: wrong audience",
        &r,
        403,
        "Audiences in Jwt are not allowed",
    );
    let admin = token(json!({"tenant": "a", "aud": "admin"}));
    let r = env.curl(&["-H", &bearer(&admin), "/admin/x"]);
    c.eq("admin route: admin audience", r.status, 200);
    let r = env.curl(&["-H", "x-skip: yes", "/h/x"]);
    c.eq("header matcher: no auth", r.status, 200);
    let r = env.curl(&["-H", "x-skip: no", "/h/x"]);
    c.eq("header matcher: other value", r.status, 401);
    let r = env.curl(&["/q/x?a=1&debug"]);
    c.eq("query matcher: present", r.status, 200);
    let r = env.curl(&["/q/x?a=1&debugging=1"]);
    c.eq("query matcher: absent", r.status, 401);

    // 4. AUDIT and dry run: reported, never enforced. (Their info lines are limited to 10
    // per second per VM: start a fresh second.)
    std::thread::sleep(Duration::from_millis(1100));
    let beta = token(json!({"tenant": "a", "beta": true}));
    let r = env.curl(&["-H", &bearer(&beta), "/t/orders"]);
    c.eq("dry-run DENY is not enforced", r.status, 200);
    let gamma = token(json!({"tenant": "a", "gamma": true}));
    let r = env.curl(&["-H", &bearer(&gamma), "/t/orders"]);
    c.eq("dry-run ALLOW matched", r.status, 200);
    std::thread::sleep(Duration::from_millis(400));
    for (name, want) in [
        ("edge.policy.would-deny-beta.dry_run_denied", 1),
        ("edge.policy.would-allow-gamma.dry_run_allowed", 1),
        ("edge.policy.deny-banned.denied", 1),
        ("edge.dry_run_denied", 1),
    ] {
        c.eq(name, counter(&env, name), Some(want));
    }
    // tenants allowed: 200 a, tenant b, tenant a, /open, /admin (admin token), /h, /q, beta, gamma.
    c.eq(
        "tenants allowed",
        counter(&env, "edge.policy.tenants.allowed"),
        Some(9),
    );
    c.check(
        "audit counted",
        counter(&env, "edge.policy.audit-all.audit").unwrap_or(0) >= 10,
        || env.admin_get("/stats?filter=^wasmcustom"),
    );
    c.eq(
        "stat_prefix replaces jwt_authz",
        counter(&env, "jwt_authz.allowed"),
        None,
    );
    c.check(
        "edge.allowed counts",
        counter(&env, "edge.allowed").unwrap_or(0) >= 9,
        || env.admin_get("/stats?filter=^wasmcustom"),
    );
    let log = env.log();
    c.check("dry-run line", log.contains(
        "GET /t/orders: policies [audit-all,would-deny-beta,tenants] matched; principal \
         https://issuer.example/alice; result allowed; dry run: denied_authorization by would-deny-beta"),
        || "no dry-run line".into());
    // The debug line names no AUDIT policy when the request was refused for want of an ALLOW.
    c.check(
        "no-ALLOW debug line",
        log.contains("GET /t/orders: authorization denied: no ALLOW policy matched"),
        || "no debug line".into(),
    );
    c.check(
        "no AUDIT policy blamed",
        !log.contains("authorization denied by audit-all"),
        || "blamed".into(),
    );
    // Every request made above has its line.
    let lines = access_log_lines(&access_log, 16);
    c.check(
        "routed to cluster b",
        lines
            .iter()
            .any(|l| l.starts_with("200 via_upstream route=tenant-b cluster=upstream_b")),
        || lines.join("\n"),
    );
    c.finish(&env);
}
