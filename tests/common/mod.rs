//! End-to-end harness: a real Envoy running the built `.wasm`, the echo upstream, curl as the
//! client; everything on free 127.0.0.1 ports and stopped by PID when the test ends.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod jwks_server;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use envoy_jwt_authz::cli::mint::Signer;
use envoy_jwt_authz::crypto::signature::Alg;
use serde_json::{json, Map, Value};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn envoy_bin() -> String {
    if let Ok(b) = std::env::var("ENVOY_BIN") {
        return b;
    }
    let venv = root().join(".venv/bin/envoy");
    if venv.exists() {
        return venv.display().to_string();
    }
    "envoy".into()
}

pub fn wasm_path() -> String {
    std::env::var("WASM_PATH").unwrap_or_else(|_| {
        root()
            .join("target/wasm32-wasip1/release/envoy_jwt_authz.wasm")
            .display()
            .to_string()
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A child process killed (by its PID) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Keys made once per test binary: generation is the slow part.
pub struct Keys {
    pub rsa: Signer,
    pub ps: Signer,
    pub ec: Signer,
    pub ec384: Signer,
    pub ed: Signer,
    pub hs: Signer,
    /// A second RSA key, published nowhere: signs "bad signature" tokens.
    pub rogue: Signer,
    pub rsa_pem: String,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = Signer::generate(Alg::RS256).unwrap();
        let rsa_pem = rsa.to_pem().unwrap();
        Keys {
            ps: Signer::from_pem(Alg::PS256, &rsa_pem).unwrap(),
            rsa,
            ec: Signer::generate(Alg::ES256).unwrap(),
            ec384: Signer::generate(Alg::ES384).unwrap(),
            ed: Signer::generate(Alg::EdDSA).unwrap(),
            hs: Signer::generate(Alg::HS256).unwrap(),
            rogue: Signer::generate(Alg::RS256).unwrap(),
            rsa_pem,
        }
    })
}

/// Claims with `iss`, `sub`, `aud`, one-hour validity, merged with `extra`.
pub fn claims(iss: &str, extra: Value) -> Map<String, Value> {
    let t = now();
    let mut m =
        json!({"iss": iss, "sub": "alice", "aud": "api://default", "iat": t, "exp": t + 3600})
            .as_object()
            .unwrap()
            .clone();
    if let Value::Object(e) = extra {
        for (k, v) in e {
            if v.is_null() {
                m.remove(&k);
            } else {
                m.insert(k, v);
            }
        }
    }
    m
}

pub struct Env {
    pub port: u16,
    pub admin: u16,
    pub plain_port: u16,
    pub log_path: PathBuf,
    envoy: Proc,
    _upstream: Proc,
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// What the echo upstream received (panics if the request did not reach it).
    pub fn upstream(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not an upstream echo: {} {}", self.status, self.body))
    }

    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream()["headers"][name].as_str().map(str::to_owned)
    }
}

pub fn start_upstream() -> (Proc, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo-upstream"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    (Proc(child), port)
}

/// Fills `${NAME}` placeholders in an Envoy config template from `envoy/`.
pub fn render(template: &str, vars: &HashMap<&str, String>) -> String {
    let mut out = std::fs::read_to_string(root().join("envoy").join(template)).unwrap();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    assert!(!out.contains("${"), "unfilled placeholder in {template}");
    out
}

/// How to start Envoy beyond the plugin configuration.
pub struct Opts {
    pub concurrency: u32,
    /// Port of the `jwks` cluster (a JWKS test server).
    pub jwks_port: Option<u16>,
    /// Another name for that cluster, as an Istio ServiceEntry would name it.
    pub jwks_cluster: Option<String>,
    /// The filtered listener's port, when the plugin configuration must name it before Envoy
    /// starts (an `oidc` `redirect_uri`); a free port otherwise.
    pub listen_port: Option<u16>,
    /// Adds a cluster `idp` (127.0.0.1 at this port) for `oidc` discovery and token calls.
    pub idp_port: Option<u16>,
    /// `vm_config.environment_variables.key_values`: `{"env": NAME}` secrets.
    pub vm_env: Vec<(String, String)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            concurrency: 2,
            jwks_port: None,
            jwks_cluster: None,
            listen_port: None,
            idp_port: None,
            vm_env: Vec::new(),
        }
    }
}

impl Env {
    /// Starts the upstream and Envoy with `plugin_config`; panics with Envoy's log if it does
    /// not become ready.
    pub fn start(plugin_config: &Value) -> Env {
        Self::start_with(plugin_config, Opts::default())
    }

    pub fn start_with(plugin_config: &Value, opts: Opts) -> Env {
        match Self::try_start_with(plugin_config, opts) {
            Ok(env) => env,
            Err(log) => panic!("envoy did not become ready:\n{log}"),
        }
    }

    pub fn try_start(plugin_config: &Value) -> Result<Env, String> {
        Self::try_start_with(plugin_config, Opts::default())
    }

    /// Starts Envoy; `Err(log)` when it exits or is not ready within 20 s.
    pub fn try_start_with(plugin_config: &Value, opts: Opts) -> Result<Env, String> {
        let (upstream, upstream_port) = start_upstream();
        let port = opts.listen_port.unwrap_or_else(free_port);
        let (admin, plain_port) = (free_port(), free_port());
        let mut vars = HashMap::new();
        vars.insert("ADMIN_PORT", admin.to_string());
        vars.insert("LISTEN_PORT", port.to_string());
        vars.insert("PLAIN_PORT", plain_port.to_string());
        vars.insert("UPSTREAM_PORT", upstream_port.to_string());
        vars.insert("WASM_PATH", wasm_path());
        vars.insert(
            "JWKS_PORT",
            opts.jwks_port.unwrap_or_else(free_port).to_string(),
        );
        vars.insert(
            "PLUGIN_CONFIG",
            serde_json::to_string(&plugin_config.to_string()).unwrap(),
        );
        let dir = std::env::temp_dir().join(format!("jwt-authz-e2e-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg_path = dir.join("envoy.yaml");
        let mut rendered = render("filter.yaml", &vars);
        if let Some(name) = &opts.jwks_cluster {
            let quoted = serde_json::to_string(name).unwrap();
            rendered = rendered
                .replace("- name: jwks\n", &format!("- name: {quoted}\n"))
                .replace("cluster_name: jwks\n", &format!("cluster_name: {quoted}\n"));
        }
        if !opts.vm_env.is_empty() {
            let kv: Vec<String> = opts
                .vm_env
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        serde_json::to_string(k).unwrap(),
                        serde_json::to_string(v).unwrap()
                    )
                })
                .collect();
            let vm = "                  vm_id: jwt_authz\n";
            assert!(rendered.contains(vm), "no vm_config in the template");
            rendered = rendered.replacen(
                vm,
                &format!(
                    "{vm}                  environment_variables: {{key_values: {{{}}}}}\n",
                    kv.join(", ")
                ),
                1,
            );
        }
        if let Some(idp) = opts.idp_port {
            // The template's last section is its cluster list: one more entry at its end.
            rendered.push_str(&format!(
                "  - name: idp\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: idp\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {idp}}}}}}}\n"
            ));
        }
        std::fs::write(&cfg_path, rendered).unwrap();
        Self::launch(&dir, (port, admin, plain_port), upstream, opts.concurrency)
    }

    /// Starts Envoy on a config the test writes itself: `build(upstream_port, admin_port)`
    /// gives the YAML (listeners on free ports the test chose; `port` becomes `Env::port`).
    pub fn start_yaml(port: u16, build: impl FnOnce(u16, u16) -> String) -> Env {
        let (upstream, upstream_port) = start_upstream();
        let admin = free_port();
        let dir = std::env::temp_dir().join(format!("jwt-authz-e2e-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("envoy.yaml"), build(upstream_port, admin)).unwrap();
        match Self::launch(&dir, (port, admin, 0), upstream, 2) {
            Ok(env) => env,
            Err(log) => panic!("envoy did not become ready:\n{log}"),
        }
    }

    /// Runs Envoy on `dir/envoy.yaml` until its admin says ready.
    fn launch(
        dir: &std::path::Path,
        (port, admin, plain_port): (u16, u16, u16),
        upstream: Proc,
        concurrency: u32,
    ) -> Result<Env, String> {
        let cfg_path = dir.join("envoy.yaml");
        let log_path = dir.join("envoy.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(envoy_bin())
            .args(["-c", cfg_path.to_str().unwrap()])
            .args(["--concurrency", &concurrency.to_string()])
            .args([
                "--disable-hot-restart",
                "-l",
                "info",
                "--component-log-level",
                "wasm:debug",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", envoy_bin()))?;
        let mut envoy = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = envoy.0.try_wait() {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            let ready = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://127.0.0.1:{admin}/ready"))
                .output()
                .map(|o| o.stdout == b"200")
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Env {
            port,
            admin,
            plain_port,
            log_path,
            envoy,
            _upstream: upstream,
        })
    }

    pub fn pid(&self) -> u32 {
        self.envoy.0.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Log lines of a wasm VM that trapped: the SDK's panic hook logs `panicked at` at
    /// critical level and Envoy logs the failed call. Envoy keeps no counter of these.
    pub fn vm_crashes(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("panicked at") || l.contains("failed: Uncaught"))
            .map(String::from)
            .collect()
    }

    /// Runs curl against the filtered listener: `args` are curl arguments, the last being
    /// the path (with query) to request.
    pub fn curl(&self, args: &[&str]) -> Resp {
        let (path, rest) = args.split_last().unwrap();
        let url = format!("http://127.0.0.1:{}{}", self.port, path);
        let out = Command::new("curl")
            .args(["-s", "-i", "--path-as-is", "--max-time", "10"])
            .args(rest)
            .arg(url)
            .output()
            .unwrap();
        parse_curl(&String::from_utf8_lossy(&out.stdout))
    }

    /// Requests `paths` over `connections` parallel keep-alive connections (spread over
    /// Envoy's workers); returns each response status.
    pub fn curl_many(&self, header: &str, paths: &[String], connections: usize) -> Vec<u16> {
        let list: String = paths
            .iter()
            .map(|p| {
                format!(
                    "url = \"http://127.0.0.1:{}{p}\"\noutput = \"/dev/null\"\n",
                    self.port
                )
            })
            .collect();
        let cfg =
            std::env::temp_dir().join(format!("curl-{}-{}.cfg", std::process::id(), self.port));
        std::fs::write(&cfg, list).unwrap();
        let out = Command::new("curl")
            .args(["-s", "-Z", "--parallel-max", &connections.to_string()])
            .args(["-H", header, "-w", "%{http_code}\n", "-K"])
            .arg(&cfg)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    pub fn admin_get(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}{path}", self.admin)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn parse_curl(raw: &str) -> Resp {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Collects failed expectations so one run reports them all, with Envoy's log.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, case: &str, ok: bool, detail: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(format!("{case}: {}", detail()));
        }
    }

    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, case: &str, got: T, want: T) {
        if got != want {
            self.failures
                .push(format!("{case}: got {got:?}, want {want:?}"));
        }
    }

    /// Status and body of a local reply.
    pub fn reply(&mut self, case: &str, r: &Resp, status: u16, body: &str) {
        self.eq(&format!("{case} status"), r.status, status);
        self.eq(&format!("{case} body"), r.body.as_str(), body);
    }

    /// Fails with every failed expectation, and whenever a VM crashed during the test.
    pub fn finish(mut self, env: &Env) {
        for line in env.vm_crashes() {
            self.failures.push(format!("wasm VM crashed: {line}"));
        }
        if !self.failures.is_empty() {
            panic!(
                "{} failed expectations:\n  {}\n--- envoy log ---\n{}",
                self.failures.len(),
                self.failures.join("\n  "),
                env.log()
            );
        }
    }
}
