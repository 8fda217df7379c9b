//! `jwt-authz from-istio`: Istio `RequestAuthentication`, `AuthorizationPolicy` and
//! `VirtualService` `corsPolicy` into one plugin configuration for one workload or gateway,
//! with the WasmPlugin that loads it and the clusters its `remote_jwks` fetch through.
//!
//! What cannot be translated is an error, never dropped. With `partial`, the output keeps what
//! translated and fails closed: an ALLOW rule with an untranslatable part is left out (it
//! allows less), a DENY rule loses only that part (it denies more), a CUSTOM or AUDIT policy
//! is left out (listed).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One manifest document and where it came from.
pub struct Doc {
    pub file: String,
    pub value: Value,
}

#[derive(Default)]
pub struct Options {
    /// `--selector k=v`: only resources whose selector these labels satisfy (and those
    /// without a selector, which apply to every workload of their namespace).
    pub selector: BTreeMap<String, String>,
    pub namespace: Option<String>,
    pub url: Option<String>,
    pub sha256: Option<String>,
}

/// A host the `remote_jwks` fetch from, as Istio names its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksHost {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl JwksHost {
    pub fn cluster(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host)
    }
}

#[derive(Default)]
pub struct Conversion {
    pub config: Map<String, Value>,
    pub hosts: Vec<JwksHost>,
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    /// Untranslatable parts: the command fails when there is any.
    pub errors: Vec<String>,
    /// Things to know that change nothing in the output.
    pub notes: Vec<String>,
    /// The Istio resources the output replaces (`Kind namespace/name`).
    pub replaced: Vec<String>,
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(s).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A Go/protobuf duration as Istio writes it (`1m`, `90s`, `1.5s`, `500ms`, `1h`) in
/// milliseconds.
fn go_duration_ms(d: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut rest = d.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest.get(..n)?.parse().ok()?;
        rest = rest.get(n..)?;
        let (unit, len) = [
            ("ms", 2, 1.0),
            ("h", 1, 3_600_000.0),
            ("m", 1, 60_000.0),
            ("s", 1, 1000.0),
        ]
        .iter()
        .find(|(u, _, _)| rest.starts_with(u))
        .map(|(_, l, f)| (*f, *l))?;
        total += value * unit;
        rest = rest.get(len..)?;
    }
    (0.0..1e15).contains(&total).then_some(total as u64)
}

fn proto_duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

struct Resource<'a> {
    file: &'a str,
    kind: &'a str,
    namespace: String,
    name: String,
    spec: &'a Value,
}

impl Resource<'_> {
    fn id(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Whether `spec.selector` (or its absence) picks the workload labelled `labels`.
fn selected(spec: &Value, labels: &BTreeMap<String, String>) -> bool {
    let Some(m) = spec
        .pointer("/selector/matchLabels")
        .and_then(Value::as_object)
    else {
        return true;
    };
    m.iter()
        .all(|(k, v)| labels.get(k).map(String::as_str) == s(v))
}

pub fn convert(docs: &[Doc], opts: &Options) -> Conversion {
    let mut c = Conversion::default();
    let mut resources = Vec::new();
    for d in docs {
        let kind = d.value.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = d
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let namespace = d
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        if d.value.is_null() {
            continue;
        }
        if !matches!(
            kind,
            "RequestAuthentication" | "AuthorizationPolicy" | "VirtualService"
        ) {
            c.notes.push(format!(
                "{}: {kind} {namespace}/{name} is not converted (not the filter's job); it stays \
                 in Istio as it is",
                d.file
            ));
            continue;
        }
        let spec = d.value.get("spec").unwrap_or(&Value::Null);
        let r = Resource {
            file: &d.file,
            kind,
            namespace,
            name,
            spec,
        };
        if kind != "VirtualService" {
            if spec.get("targetRef").is_some() || spec.get("targetRefs").is_some() {
                c.errors.push(format!(
                    "{}: {}: spec.targetRefs is not translatable: use spec.selector",
                    r.file,
                    r.id()
                ));
                continue;
            }
            if !opts.selector.is_empty() && !selected(spec, &opts.selector) {
                continue;
            }
        }
        resources.push(r);
    }
    let workload = resources.iter().find(|r| r.kind != "VirtualService");
    c.namespace = opts
        .namespace
        .clone()
        .or_else(|| workload.map(|r| r.namespace.clone()))
        .unwrap_or_else(|| "default".into());
    c.selector = if opts.selector.is_empty() {
        resources
            .iter()
            .filter_map(|r| r.spec.pointer("/selector/matchLabels"))
            .filter_map(Value::as_object)
            .next()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), s(v)?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.selector.clone()
    };
    let mut providers = Map::new();
    let mut policies = Vec::new();
    let mut cors: Option<(String, Value)> = None;
    for r in &resources {
        match r.kind {
            "RequestAuthentication" => request_authentication(r, &mut c, &mut providers),
            "AuthorizationPolicy" => {
                if let Some(p) = authorization_policy(r, &mut c) {
                    policies.push(p);
                }
            }
            _ => virtual_service(r, &mut c, &mut cors),
        }
    }
    if !providers.is_empty() {
        // RequestAuthentication: a token, when present, must be valid; none is fine (the
        // authorization policies decide). The audiences sit on the providers, which
        // `allow_missing` checks too (no seed 004 trap).
        let mut any: Vec<Value> = providers
            .keys()
            .map(|n| json!({"provider_name": n}))
            .collect();
        any.push(json!({"allow_missing": {}}));
        c.config
            .insert("providers".into(), Value::Object(providers));
        c.config.insert(
            "rules".into(),
            json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": any}}}]),
        );
    } else {
        // No RequestAuthentication: no request is checked for a token (without `rules`
        // the filter would require one everywhere).
        c.config
            .insert("rules".into(), json!([{"match": {"prefix": "/"}}]));
    }
    if let Some((_, policy)) = cors {
        c.config.insert("cors".into(), policy);
    }
    if !policies.is_empty() {
        c.config
            .insert("authorization".into(), json!({"policies": policies}));
    }
    c
}

fn request_authentication(r: &Resource, c: &mut Conversion, providers: &mut Map<String, Value>) {
    c.replaced.push(r.id());
    let rules = r
        .spec
        .get("jwtRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (j, rule) in rules.iter().enumerate() {
        let at = format!("{}: {}: spec.jwtRules[{j}]", r.file, r.id());
        let name = if rules.len() == 1 {
            r.name.clone()
        } else {
            format!("{}-{j}", r.name)
        };
        let mut p = Map::new();
        let mut timeout = None;
        for (k, v) in obj(rule) {
            match k.as_str() {
                "issuer" => {
                    p.insert("issuer".into(), v);
                }
                "audiences" => {
                    p.insert("audiences".into(), v);
                }
                "jwks" => {
                    p.insert("local_jwks".into(), json!({"inline_string": v}));
                }
                "jwksUri" => match s(&v).and_then(jwks_host) {
                    Some(host) => {
                        let cluster = host.cluster();
                        if !c.hosts.contains(&host) {
                            c.hosts.push(host);
                        }
                        p.insert(
                            "remote_jwks".into(),
                            json!({"http_uri": {"uri": v, "cluster": cluster}}),
                        );
                    }
                    None => c
                        .errors
                        .push(format!("{at}.jwksUri: {v} is not an http(s) URL")),
                },
                "fromHeaders" => {
                    let hs: Vec<Value> = v
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|h| {
                            let mut out = Map::new();
                            out.insert("name".into(), h.get("name").cloned().unwrap_or_default());
                            if let Some(prefix) = h.get("prefix") {
                                out.insert("value_prefix".into(), prefix.clone());
                            }
                            Value::Object(out)
                        })
                        .collect();
                    p.insert("from_headers".into(), Value::Array(hs));
                }
                "fromParams" => {
                    p.insert("from_params".into(), v);
                }
                "fromCookies" => {
                    p.insert("from_cookies".into(), v);
                }
                "outputPayloadToHeader" => {
                    p.insert("forward_payload_header".into(), v);
                }
                "forwardOriginalToken" => {
                    p.insert("forward".into(), v);
                }
                "outputClaimToHeaders" => {
                    let hs: Vec<Value> = v
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|h| {
                            json!({"header_name": h.get("header").cloned().unwrap_or(Value::Null),
                                   "claim_name": h.get("claim").cloned().unwrap_or(Value::Null)})
                        })
                        .collect();
                    p.insert("claim_to_headers".into(), Value::Array(hs));
                }
                "timeout" => match s(&v).and_then(go_duration_ms) {
                    Some(ms) => timeout = Some(proto_duration(ms)),
                    None => c
                        .errors
                        .push(format!("{at}.timeout: {v} is not a duration")),
                },
                _ => c.errors.push(format!("{at}.{k}: not translatable (yet)")),
            }
        }
        let http_uri = p
            .get_mut("remote_jwks")
            .and_then(|r| r.get_mut("http_uri"))
            .and_then(Value::as_object_mut);
        if let (Some(t), Some(h)) = (timeout, http_uri) {
            h.insert("timeout".into(), json!(t));
        }
        if !p.contains_key("remote_jwks") && !p.contains_key("local_jwks") {
            c.errors.push(format!(
                "{at}: neither jwksUri nor jwks: Istio would discover the keys from the issuer; \
                 write its jwksUri out"
            ));
            continue;
        }
        providers.insert(name, Value::Object(p));
    }
}

fn jwks_host(uri: &str) -> Option<JwksHost> {
    let (tls, rest) = match uri.strip_prefix("https://") {
        Some(r) => (true, r),
        None => (false, uri.strip_prefix("http://")?),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    (!host.is_empty()).then(|| JwksHost {
        host: host.to_ascii_lowercase(),
        port,
        tls,
    })
}

/// The `source` fields the filter takes, with Istio's meaning (issue 22 added the peer ones).
const SOURCE_FIELDS: [&str; 10] = [
    "requestPrincipals",
    "notRequestPrincipals",
    "principals",
    "notPrincipals",
    "namespaces",
    "notNamespaces",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
];
const OPERATION_FIELDS: [&str; 8] = [
    "methods",
    "notMethods",
    "paths",
    "notPaths",
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
];

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for ch in camel.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn when_key_supported(key: &str) -> bool {
    matches!(
        key,
        "request.auth.principal"
            | "request.auth.audiences"
            | "request.auth.presenter"
            | "source.ip"
            | "remote.ip"
            | "source.principal"
            | "source.namespace"
            | "destination.ip"
            | "destination.port"
            | "connection.sni"
    ) || key.starts_with("request.auth.claims[")
        || key.starts_with("request.headers[")
}

/// One AuthorizationPolicy; `None` when it is left out entirely (CUSTOM, AUDIT).
fn authorization_policy(r: &Resource, c: &mut Conversion) -> Option<Value> {
    c.replaced.push(r.id());
    let at = format!("{}: {}", r.file, r.id());
    let action = r
        .spec
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("ALLOW");
    if !matches!(action, "ALLOW" | "DENY") {
        let provider = r
            .spec
            .pointer("/provider/name")
            .and_then(Value::as_str)
            .map(|p| format!(" (provider {p})"))
            .unwrap_or_default();
        c.errors.push(format!(
            "{at}: action {action}{provider} is not translatable: the policy is left out"
        ));
        return None;
    }
    for k in obj(r.spec).keys() {
        if !matches!(k.as_str(), "action" | "rules" | "selector") {
            c.errors
                .push(format!("{at}: spec.{k}: not translatable (yet)"));
        }
    }
    let deny = action == "DENY";
    let mut rules = Vec::new();
    let raw_rules = r
        .spec
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, rule) in raw_rules.iter().enumerate() {
        let rat = format!("{at}: spec.rules[{i}]");
        let before = c.errors.len();
        let mut out = Map::new();
        for (k, v) in obj(rule) {
            let items = v.as_array().cloned().unwrap_or_default();
            match k.as_str() {
                "from" => {
                    let mut froms = Vec::new();
                    for (j, f) in items.iter().enumerate() {
                        let mut src = Map::new();
                        for (fk, fv) in obj(f.get("source").unwrap_or(&Value::Null)) {
                            if SOURCE_FIELDS.contains(&fk.as_str()) {
                                src.insert(snake(&fk), fv);
                            } else {
                                c.errors.push(format!(
                                    "{rat}.from[{j}].source.{fk}: not translatable yet"
                                ));
                            }
                        }
                        froms.push(json!({"source": src}));
                    }
                    out.insert("from".into(), Value::Array(froms));
                }
                "to" => {
                    let mut tos = Vec::new();
                    for (j, t) in items.iter().enumerate() {
                        let mut op = Map::new();
                        for (ok, ov) in obj(t.get("operation").unwrap_or(&Value::Null)) {
                            if !OPERATION_FIELDS.contains(&ok.as_str()) {
                                c.errors.push(format!(
                                    "{rat}.to[{j}].operation.{ok}: not translatable yet"
                                ));
                                continue;
                            }
                            // Path templates (`{*}`, `{**}`) mean what they mean in Istio.
                            op.insert(snake(&ok), ov);
                        }
                        tos.push(json!({"operation": op}));
                    }
                    out.insert("to".into(), Value::Array(tos));
                }
                "when" => {
                    let mut whens = Vec::new();
                    for (j, w) in items.iter().enumerate() {
                        let key = w.get("key").and_then(Value::as_str).unwrap_or("");
                        if !when_key_supported(key) {
                            c.errors.push(format!(
                                "{rat}.when[{j}]: key {key:?} is not translatable yet"
                            ));
                            continue;
                        }
                        let mut cond = Map::new();
                        for (wk, wv) in obj(w) {
                            cond.insert(snake(&wk), wv);
                        }
                        whens.push(Value::Object(cond));
                    }
                    out.insert("when".into(), Value::Array(whens));
                }
                _ => c.errors.push(format!("{rat}.{k}: not translatable (yet)")),
            }
        }
        // Fail closed under --partial: an ALLOW rule missing a part would allow more.
        if deny || c.errors.len() == before {
            rules.push(Value::Object(out));
        }
    }
    Some(json!({"name": format!("{}/{}", r.namespace, r.name), "action": action, "rules": rules}))
}

fn virtual_service(r: &Resource, c: &mut Conversion, cors: &mut Option<(String, Value)>) {
    let hosts = strings(r.spec.get("hosts").unwrap_or(&Value::Null));
    let routes = r
        .spec
        .get("http")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, route) in routes.iter().enumerate() {
        let Some(policy) = route.get("corsPolicy") else {
            continue;
        };
        let at = format!("{}: {}: spec.http[{i}].corsPolicy", r.file, r.id());
        let converted = cors_policy(&at, policy, c);
        c.notes.push(format!(
            "{at}: the filter has one CORS policy for every request it sees, not only for \
             hosts {hosts:?} and this route"
        ));
        match cors {
            Some((first, p)) if *p != converted => c.errors.push(format!(
                "{at}: differs from {first}: the filter has one CORS policy"
            )),
            Some(_) => {}
            None => *cors = Some((at, converted)),
        }
    }
    if routes.iter().any(|r| r.get("corsPolicy").is_some()) {
        c.notes.push(format!(
            "{}: {}: only its corsPolicy moves into the filter; remove that from it",
            r.file,
            r.id()
        ));
    }
}

fn cors_policy(at: &str, p: &Value, c: &mut Conversion) -> Value {
    let mut out = Map::new();
    let mut origins: Vec<Value> = Vec::new();
    let mut add = |m: Value| {
        if !origins.contains(&m) {
            origins.push(m);
        }
    };
    for (k, v) in obj(p) {
        match k.as_str() {
            "allowOrigin" => strings(&v)
                .into_iter()
                .for_each(|o| add(json!({"exact": o}))),
            "allowOrigins" => {
                for (i, m) in v.as_array().cloned().unwrap_or_default().iter().enumerate() {
                    match m.as_object().and_then(|o| o.iter().next()) {
                        Some((kind, val)) if kind == "exact" || kind == "prefix" => {
                            add(json!({kind.as_str(): val}))
                        }
                        Some((kind, val)) if kind == "regex" => {
                            add(json!({"safe_regex": {"regex": val}}))
                        }
                        _ => c
                            .errors
                            .push(format!("{at}.allowOrigins[{i}]: not translatable")),
                    }
                }
            }
            "allowMethods" | "allowHeaders" | "exposeHeaders" => {
                out.insert(snake(&k), json!(strings(&v).join(",")));
            }
            "maxAge" => match s(&v).and_then(go_duration_ms) {
                Some(ms) => {
                    out.insert("max_age".into(), json!((ms / 1000).to_string()));
                }
                None => c.errors.push(format!("{at}.maxAge: {v} is not a duration")),
            },
            "allowCredentials" => {
                out.insert("allow_credentials".into(), v);
            }
            "unmatchedPreflights" => {
                out.insert(
                    "forward_not_matching_preflights".into(),
                    json!(s(&v) != Some("IGNORE")),
                );
            }
            _ => c.errors.push(format!("{at}.{k}: not translatable (yet)")),
        }
    }
    out.insert("allow_origin_string_match".into(), Value::Array(origins));
    Value::Object(out)
}

/// The Istio manifests: the WasmPlugin, then a ServiceEntry and DestinationRule per JWKS
/// host, scoped to the plugin's namespace.
pub fn manifests(c: &Conversion, opts: &Options) -> Result<String, String> {
    let name = match c.selector.values().next() {
        Some(v) => format!("jwt-authz-{v}"),
        None => "jwt-authz".to_string(),
    };
    let mut spec = Map::new();
    if !c.selector.is_empty() {
        spec.insert("selector".into(), json!({"matchLabels": c.selector}));
    }
    // Inbound only: without it a sidecar's plugin also filters the workload's own calls out.
    spec.insert("match".into(), json!([{"mode": "SERVER"}]));
    spec.insert("phase".into(), json!("AUTHN"));
    spec.insert(
        "url".into(),
        json!(opts
            .url
            .as_deref()
            .unwrap_or("oci://registry.example.com/envoy-jwt-authz:0.1.0")),
    );
    if let Some(sha) = &opts.sha256 {
        spec.insert("sha256".into(), json!(sha));
    }
    spec.insert("imagePullPolicy".into(), json!("IfNotPresent"));
    spec.insert("failStrategy".into(), json!("FAIL_CLOSE"));
    spec.insert("pluginConfig".into(), Value::Object(c.config.clone()));
    let mut docs = vec![json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": name, "namespace": c.namespace},
        "spec": spec,
    })];
    for h in &c.hosts {
        let res = format!("jwks-{}", h.host.replace('.', "-"));
        let protocol = if h.tls { "HTTPS" } else { "HTTP" };
        docs.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": res, "namespace": c.namespace},
            "spec": {"hosts": [h.host], "exportTo": ["."], "location": "MESH_EXTERNAL",
                     "resolution": "DNS",
                     "ports": [{"number": h.port, "name": protocol.to_ascii_lowercase(), "protocol": protocol}]},
        }));
        if h.tls {
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": res, "namespace": c.namespace},
                "spec": {"host": h.host, "exportTo": ["."],
                         "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": h.host}}},
            }));
        }
    }
    let mut out = String::from(
        "# Generated by jwt-authz from-istio. Once the WasmPlugin is in place, delete the\n\
         # resources it replaces: Istio's own AuthorizationPolicies that use JWT attributes\n\
         # (request.auth.*) stop seeing the identity once authentication moves into the filter.\n",
    );
    for r in &c.replaced {
        out.push_str(&format!("#   {r}\n"));
    }
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// For Envoy without Istio: the clusters `remote_jwks` name and the filter's `configuration`.
pub fn envoy(c: &Conversion) -> Result<String, String> {
    let clusters: Vec<Value> = c
        .hosts
        .iter()
        .map(|h| {
            let mut cl = json!({
                "name": h.cluster(), "type": "STRICT_DNS", "connect_timeout": "5s",
                "load_assignment": {"cluster_name": h.cluster(), "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": h.host, "port_value": h.port}}}}]}]},
            });
            if let (true, Some(o)) = (h.tls, cl.as_object_mut()) {
                o.insert("transport_socket".into(), json!({"name": "envoy.transport_sockets.tls", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": h.host}}));
            }
            cl
        })
        .collect();
    let doc = json!({
        "clusters": clusters,
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": Value::Object(c.config.clone()).to_string()},
    });
    let mut out = String::from(
        "# Generated by jwt-authz from-istio: add the clusters to static_resources.clusters and\n\
         # put the configuration in the Wasm filter's config.\n",
    );
    out.push_str(&serde_norway::to_string(&doc).map_err(|e| e.to_string())?);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_hosts() {
        assert_eq!(go_duration_ms("1m"), Some(60_000));
        assert_eq!(go_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(go_duration_ms("1.5s"), Some(1500));
        assert_eq!(go_duration_ms("500ms"), Some(500));
        for bad in ["", "5", "x", "1d", "-1s"] {
            assert_eq!(go_duration_ms(bad), None, "{bad}");
        }
        assert_eq!(proto_duration(1500), "1.500s");
        let h = jwks_host("https://Example.com/.well-known/jwks.json").unwrap();
        assert_eq!(h.cluster(), "outbound|443||example.com");
        assert_eq!(
            jwks_host("http://idp:8080/certs").unwrap().cluster(),
            "outbound|8080||idp"
        );
        assert_eq!(jwks_host("ftp://x/"), None);
    }

    fn doc(v: Value) -> Doc {
        Doc {
            file: "f.yaml".into(),
            value: v,
        }
    }

    #[test]
    fn untranslatable_parts_fail_closed() {
        let allow = json!({"kind": "AuthorizationPolicy", "metadata": {"name": "a", "namespace": "n"},
            "spec": {"rules": [
                {"from": [{"source": {"serviceAccounts": ["default/x"]}}],
                 "when": [{"key": "request.auth.claims[sub]", "values": ["bob"]}]},
                {"to": [{"operation": {"methods": ["GET"]}}]}]}});
        let deny = json!({"kind": "AuthorizationPolicy", "metadata": {"name": "d", "namespace": "n"},
            "spec": {"action": "DENY", "rules": [
                {"to": [{"operation": {"paths": ["/admin*"]}}],
                 "when": [{"key": "source.serviceAccount", "values": ["default/x"]}]}]}});
        let custom = json!({"kind": "AuthorizationPolicy", "metadata": {"name": "c", "namespace": "n"},
            "spec": {"action": "CUSTOM", "provider": {"name": "oauth2-proxy"}, "rules": [{}]}});
        let c = convert(&[doc(allow), doc(deny), doc(custom)], &Options::default());
        assert_eq!(c.errors.len(), 3, "{:?}", c.errors);
        assert!(c.errors[0].contains("spec.rules[0].from[0].source.serviceAccounts"));
        assert!(c.errors[1].contains("source.serviceAccount"));
        assert!(c.errors[2].contains("action CUSTOM (provider oauth2-proxy)"));
        let policies = &c.config["authorization"]["policies"];
        // The ALLOW rule with an untranslatable source is gone (it would allow more); the
        // other stays.
        assert_eq!(
            policies[0]["rules"],
            json!([{"to": [{"operation": {"methods": ["GET"]}}]}])
        );
        // The DENY rule keeps its path and loses the condition: it denies more.
        assert_eq!(
            policies[1]["rules"],
            json!([{"to": [{"operation": {"paths": ["/admin*"]}}], "when": []}])
        );
        assert_eq!(policies.as_array().unwrap().len(), 2);
    }

    #[test]
    fn peer_address_port_and_template_conditions_translate() {
        let p = json!({"kind": "AuthorizationPolicy", "metadata": {"name": "p", "namespace": "n"},
            "spec": {"rules": [{
                "from": [{"source": {"principals": ["cluster.local/ns/foo/sa/*"],
                                     "notNamespaces": ["bar"],
                                     "ipBlocks": ["10.0.0.0/8"],
                                     "notRemoteIpBlocks": ["203.0.113.0/24"]}}],
                "to": [{"operation": {"paths": ["/api/{*}/items"], "ports": ["8080"],
                                      "notPorts": ["9090"]}}],
                "when": [{"key": "connection.sni", "values": ["*.example.com"]},
                         {"key": "destination.port", "values": ["8080"]},
                         {"key": "source.namespace", "notValues": ["bar"]}]}]}});
        let c = convert(&[doc(p)], &Options::default());
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let rule = &c.config["authorization"]["policies"][0]["rules"][0];
        assert_eq!(
            rule["from"][0]["source"],
            json!({"principals": ["cluster.local/ns/foo/sa/*"], "not_namespaces": ["bar"],
                   "ip_blocks": ["10.0.0.0/8"], "not_remote_ip_blocks": ["203.0.113.0/24"]})
        );
        assert_eq!(
            rule["to"][0]["operation"]["paths"],
            json!(["/api/{*}/items"])
        );
        assert_eq!(rule["when"][2]["not_values"], json!(["bar"]));
        // What the converter prints, the filter loads.
        crate::config::parse(Value::Object(c.config).to_string().as_bytes()).unwrap();
    }

    #[test]
    fn selector_picks_one_workload() {
        let ra = |name: &str, app: &str, aud: &str| {
            doc(
                json!({"kind": "RequestAuthentication", "metadata": {"name": name},
                "spec": {"selector": {"matchLabels": {"app": app}}, "jwtRules": [
                    {"issuer": "https://i", "jwksUri": "https://i/certs", "audiences": [aud]}]}}),
            )
        };
        let docs = [ra("svc1", "svc1", "a1"), ra("svc2", "svc2", "a2")];
        let opts = Options {
            selector: [("app".to_string(), "svc2".to_string())].into(),
            ..Options::default()
        };
        let c = convert(&docs, &opts);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.config["providers"],
            json!({"svc2": {"issuer": "https://i", "audiences": ["a2"],
                "remote_jwks": {"http_uri": {"uri": "https://i/certs", "cluster": "outbound|443||i"}}}})
        );
        assert_eq!(c.replaced, vec!["RequestAuthentication default/svc2"]);
        let parsed = crate::config::parse(Value::Object(c.config).to_string().as_bytes()).unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }
}
