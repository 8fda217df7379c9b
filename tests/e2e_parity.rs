//! Issue 22 against real Envoy: path templates, the mTLS peer (client certificates with
//! SPIFFE URI SANs made here with the openssl CLI), addresses with `x-forwarded-for` and
//! `xff_num_trusted_hops`, destination ports (two listeners), SNI, and multi-tenant issuers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, keys, now, wasm_path, Checks, Env};
use serde_json::{json, Value};

const RBAC: &str = "RBAC: access denied";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and `peer.test`, and client certificates
/// `foo` and `bar` for the SPIFFE identities of namespaces foo and bar.
fn make_certs() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jwt-authz-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(key);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=test-ca",
        "-days",
        "1",
    ]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign"]);
    openssl(&dir, &ca);
    for (name, san, usage) in [
        ("server", "DNS:peer.test,IP:127.0.0.1", "serverAuth"),
        (
            "foo",
            "URI:spiffe://cluster.local/ns/foo/sa/app",
            "clientAuth",
        ),
        (
            "bar",
            "URI:spiffe://cluster.local/ns/bar/sa/app",
            "clientAuth",
        ),
    ] {
        let ext = format!("{name}.ext");
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName={san}\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        let (k, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let mut req = vec!["req"];
        req.extend(key);
        req.extend(["-keyout", &k, "-out", &csr, "-subj", "/CN=test"]);
        openssl(&dir, &req);
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
                "-extfile",
                &ext,
            ],
        );
    }
    dir
}

/// One listener with the filter: `tls` requires a client certificate signed by the CA;
/// `xff` trusts one hop of `x-forwarded-for`.
fn listener(name: &str, port: u16, certs: Option<&Path>, xff: bool, plugin: &str) -> String {
    let tls = certs.map_or_else(String::new, |d| {
        let d = d.display();
        format!(
            r#"
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {{filename: "{d}/server.crt"}}
              private_key: {{filename: "{d}/server.key"}}
            validation_context:
              trusted_ca: {{filename: "{d}/ca.crt"}}"#
        )
    });
    // The address the connection's peer has, unless one hop of x-forwarded-for is trusted
    // (without use_remote_address, Envoy would take the last x-forwarded-for entry).
    let xff = format!(
        "\n          use_remote_address: true\n          xff_num_trusted_hops: {}",
        u8::from(xff)
    );
    // Envoy knows the SNI only through the TLS inspector (Istio's listeners have it).
    let inspector = if certs.is_some() {
        "\n    listener_filters:\n    - name: envoy.filters.listener.tls_inspector\n      typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}"
    } else {
        ""
    };
    let wasm = wasm_path();
    format!(
        r#"
  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}{inspector}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT{xff}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: upstream}}
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
                  code: {{local: {{filename: "{wasm}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {plugin}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router{tls}"#
    )
}

struct Ports {
    plain: u16,
    second: u16,
    mtls: u16,
    xff: u16,
}

fn peer_config(second: u16) -> Value {
    json!({"providers": {}, "rules": [],
    "authorization": {"policies": [
      {"name": "deny-bar", "action": "DENY",
       "rules": [{"from": [{"source": {"namespaces": ["bar"]}}], "to": [{"operation": {"paths": ["/ns/*"]}}]}]},
      {"name": "deny-admin", "action": "DENY",
       "rules": [{"to": [{"operation": {"paths": ["/api/{*}/admin"]}}]}]},
      {"name": "allow", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/foo/sa/app"]}}], "to": [{"operation": {"paths": ["/principal"]}}]},
        {"to": [{"operation": {"paths": ["/ns/*", "/api/{**}"]}}]},
        {"from": [{"source": {"ip_blocks": ["127.0.0.1"]}}], "to": [{"operation": {"paths": ["/ip-local"]}}]},
        {"from": [{"source": {"ip_blocks": ["10.0.0.0/8"]}}], "to": [{"operation": {"paths": ["/ip-ten"]}}]},
        {"from": [{"source": {"remote_ip_blocks": ["203.0.113.0/24"]}}], "to": [{"operation": {"paths": ["/remote"]}}]},
        {"to": [{"operation": {"paths": ["/port"], "ports": [second.to_string()]}}]},
        {"when": [{"key": "connection.sni", "values": ["peer.test"]}], "to": [{"operation": {"paths": ["/sni"]}}]}
      ]}]}})
}

/// curl over `scheme` to `port`: status and body. `cert`: a client certificate in `certs`.
fn get(
    port: u16,
    path: &str,
    certs: Option<(&Path, Option<&str>)>,
    host: &str,
    extra: &[&str],
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "10", "-w", "\n%{http_code}"]);
    let scheme = match certs {
        None => "http",
        Some((dir, cert)) => {
            cmd.arg("--cacert").arg(dir.join("ca.crt"));
            if let Some(c) = cert {
                cmd.arg("--cert").arg(dir.join(format!("{c}.crt")));
                cmd.arg("--key").arg(dir.join(format!("{c}.key")));
            }
            cmd.args(["--resolve", &format!("peer.test:{port}:127.0.0.1")]);
            "https"
        }
    };
    cmd.args(extra);
    let out = cmd
        .arg(format!("{scheme}://{host}:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn peer_addresses_ports_sni_and_path_templates() {
    let certs = make_certs();
    let p = Ports {
        plain: free_port(),
        second: free_port(),
        mtls: free_port(),
        xff: free_port(),
    };
    let plugin = serde_json::to_string(&peer_config(p.second).to_string()).unwrap();
    let env = Env::start_yaml(p.plain, |upstream, admin| {
        format!(
            "admin:\n  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}\n\
             static_resources:\n  listeners:{}{}{}{}\n  clusters:\n  - name: upstream\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: upstream\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}\n",
            listener("plain", p.plain, None, false, &plugin),
            listener("second", p.second, None, false, &plugin),
            listener("mtls", p.mtls, Some(&certs), false, &plugin),
            listener("xff", p.xff, None, true, &plugin),
        )
    });
    let mut c = Checks::default();
    let ip = "127.0.0.1";
    let tls = |cert| Some((certs.as_path(), cert));
    let denied = |c: &mut Checks, case: &str, (status, body): (u16, String)| {
        c.eq(case, (status, body.as_str()), (403, RBAC));
    };
    let ok = |c: &mut Checks, case: &str, (status, body): (u16, String)| {
        c.check(case, status == 200 && body.contains("\"path\""), || {
            format!("{status} {body}")
        });
    };

    // mTLS peers: principals and namespaces.
    ok(
        &mut c,
        "foo: principal",
        get(p.mtls, "/principal", tls(Some("foo")), ip, &[]),
    );
    denied(
        &mut c,
        "bar: principal",
        get(p.mtls, "/principal", tls(Some("bar")), ip, &[]),
    );
    ok(
        &mut c,
        "foo: namespace not denied",
        get(p.mtls, "/ns/x", tls(Some("foo")), ip, &[]),
    );
    denied(
        &mut c,
        "bar: namespace denied",
        get(p.mtls, "/ns/x", tls(Some("bar")), ip, &[]),
    );
    denied(
        &mut c,
        "plaintext: no peer principal",
        get(p.plain, "/principal", None, ip, &[]),
    );
    // SNI.
    ok(
        &mut c,
        "sni peer.test",
        get(p.mtls, "/sni", tls(Some("foo")), "peer.test", &[]),
    );
    denied(
        &mut c,
        "no sni (IP host)",
        get(p.mtls, "/sni", tls(Some("foo")), ip, &[]),
    );
    // Addresses: the direct peer is 127.0.0.1.
    ok(
        &mut c,
        "ip_blocks 127.0.0.1",
        get(p.plain, "/ip-local", None, ip, &[]),
    );
    denied(
        &mut c,
        "ip_blocks 10/8",
        get(p.plain, "/ip-ten", None, ip, &[]),
    );
    // An untrusted x-forwarded-for changes nothing.
    denied(
        &mut c,
        "remote_ip_blocks, xff not trusted",
        get(
            p.plain,
            "/remote",
            None,
            ip,
            &["-H", "x-forwarded-for: 203.0.113.7"],
        ),
    );
    // With xff_num_trusted_hops 1 the remote address is the client's.
    ok(
        &mut c,
        "remote_ip_blocks, trusted xff in block",
        get(
            p.xff,
            "/remote",
            None,
            ip,
            &["-H", "x-forwarded-for: 203.0.113.7"],
        ),
    );
    denied(
        &mut c,
        "remote_ip_blocks, trusted xff outside",
        get(
            p.xff,
            "/remote",
            None,
            ip,
            &["-H", "x-forwarded-for: 198.51.100.1"],
        ),
    );
    denied(
        &mut c,
        "remote_ip_blocks, no xff",
        get(p.xff, "/remote", None, ip, &[]),
    );
    // Envoy shows a wasm filter only that computed address: ip_blocks sees it too (README).
    denied(
        &mut c,
        "ip_blocks sees the computed address",
        get(
            p.xff,
            "/ip-local",
            None,
            ip,
            &["-H", "x-forwarded-for: 203.0.113.7"],
        ),
    );
    // Destination ports: the same policy on two listeners.
    ok(
        &mut c,
        "port: second listener",
        get(p.second, "/port", None, ip, &[]),
    );
    denied(
        &mut c,
        "port: first listener",
        get(p.plain, "/port", None, ip, &[]),
    );
    // Path templates: the DENY with {*} blocks one segment, the ALLOW with {**} the rest.
    denied(
        &mut c,
        "DENY /api/{*}/admin",
        get(p.plain, "/api/v1/admin", None, ip, &[]),
    );
    ok(
        &mut c,
        "two segments",
        get(p.plain, "/api/v1/x/admin", None, ip, &[]),
    );
    ok(
        &mut c,
        "ALLOW /api/{**}",
        get(p.plain, "/api/v1/users", None, ip, &[]),
    );
    c.finish(&env);
}

const MS: &str = "https://login.example.com/{tenant}/v2.0";

#[test]
fn multi_tenant_issuers() {
    let iss = |t: &str| MS.replace("{tenant}", t);
    let env = Env::start(&json!({
        "providers": {"ms": {"issuer": MS, "tenants": ["t1", "t2"], "tenant_claim": "tid",
            "local_jwks": {"inline_string": json!({"keys": [keys().rsa.jwk(Some("k"), false)]}).to_string()},
            "claim_to_headers": [{"header_name": "x-iss", "claim_name": "iss"}]}},
        "authorization": {"policies": [{"action": "ALLOW", "rules": [{"from": [{"source":
            {"request_principals": [format!("{}/alice", iss("t1")), format!("{}/alice", iss("t2"))]}}]}]}]}
    }));
    let token = |tenant: &str, tid: &str| {
        let t = now();
        let claims =
            json!({"iss": iss(tenant), "sub": "alice", "tid": tid, "iat": t, "exp": t + 600});
        keys()
            .rsa
            .sign(Some("k"), claims.as_object().unwrap())
            .unwrap()
    };
    let mut c = Checks::default();
    for t in ["t1", "t2"] {
        let r = env.curl(&[
            "-H",
            &format!("Authorization: Bearer {}", token(t, t)),
            "/x",
        ]);
        c.eq(&format!("tenant {t}"), r.status, 200);
        if r.status == 200 {
            c.eq(
                &format!("tenant {t}: iss"),
                r.upstream_header("x-iss"),
                Some(iss(t)),
            );
        }
    }
    c.reply(
        "tenant t3 not in tenants",
        &env.curl(&[
            "-H",
            &format!("Authorization: Bearer {}", token("t3", "t3")),
            "/x",
        ]),
        401,
        "Jwt issuer is not configured",
    );
    c.reply(
        "tid of another tenant",
        &env.curl(&[
            "-H",
            &format!("Authorization: Bearer {}", token("t1", "t2")),
            "/x",
        ]),
        401,
        "Jwt verification fails",
    );
    c.finish(&env);
}
