//! Claim-based authorization with Istio `AuthorizationPolicy` semantics: DENY first, then
//! ALLOW when any ALLOW policy exists; AUDIT is evaluated and reported, never blocking.
//! Unlike Istio, boolean and number claims match their JSON text.

use serde_json::Value;

use crate::config::schema::{ConfigError, RawAuthorization, RawCondition, RawOperation, RawSource};
use crate::jwt::claims;
use crate::jwt::token::Jwt;
use crate::policy::path_index::{PathIndex, PathKey};
use crate::policy::path_template::{self, PathTemplate};
use crate::request::view::Request;

/// Istio's value syntax: exact, `prefix*`, `*suffix`, `*` (present and non-empty); in
/// `paths`, also a template with `{*}` and `{**}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Present,
    Template(Box<PathTemplate>),
}

impl Pattern {
    pub fn parse(s: &str) -> Self {
        if s == "*" {
            Self::Present
        } else if let Some(p) = s.strip_suffix('*') {
            Self::Prefix(p.to_string())
        } else if let Some(p) = s.strip_prefix('*') {
            Self::Suffix(p.to_string())
        } else {
            Self::Exact(s.to_string())
        }
    }

    /// A `paths` value: a template when it has `{` or `}` (refused unless a valid one, so
    /// that a mistyped template is never read as literal text), else as [`Pattern::parse`].
    fn parse_path(at: &str, s: &str) -> Result<Self, ConfigError> {
        if path_template::looks_like_template(s) {
            return PathTemplate::parse(s)
                .map(|t| Self::Template(Box::new(t)))
                .map_err(|e| ConfigError::at(at, e));
        }
        Ok(Self::parse(s))
    }

    pub fn matches(&self, v: &str) -> bool {
        match self {
            Self::Exact(e) => v == e,
            Self::Prefix(p) => v.starts_with(p.as_str()),
            Self::Suffix(s) => v.ends_with(s.as_str()),
            Self::Present => !v.is_empty(),
            Self::Template(t) => t.matches(v),
        }
    }

    fn matches_ignore_case(&self, v: &str) -> bool {
        self.lowered().matches(&v.to_ascii_lowercase())
    }

    fn lowered(&self) -> Self {
        match self {
            Self::Exact(e) => Self::Exact(e.to_ascii_lowercase()),
            Self::Prefix(p) => Self::Prefix(p.to_ascii_lowercase()),
            Self::Suffix(s) => Self::Suffix(s.to_ascii_lowercase()),
            Self::Present => Self::Present,
            // Only paths hold templates, and paths are compared as they are.
            Self::Template(t) => Self::Template(t.clone()),
        }
    }
}

/// `values` / `not_values`: matches when some value matches (or none are given) and no
/// `not_value` matches.
#[derive(Debug, Default)]
struct Values {
    any: Vec<Pattern>,
    none: Vec<Pattern>,
}

impl Values {
    fn new(any: &[String], none: &[String]) -> Self {
        Self {
            any: any.iter().map(|s| Pattern::parse(s)).collect(),
            none: none.iter().map(|s| Pattern::parse(s)).collect(),
        }
    }

    /// `paths` / `not_paths`; `at` is the operation's JSON path.
    fn paths(at: &str, any: &[String], none: &[String]) -> Result<Self, ConfigError> {
        let list = |field: &str, values: &[String]| -> Result<Vec<Pattern>, ConfigError> {
            values
                .iter()
                .enumerate()
                .map(|(i, s)| Pattern::parse_path(&format!("{at}.{field}[{i}]"), s))
                .collect()
        };
        Ok(Self {
            any: list("paths", any)?,
            none: list("not_paths", none)?,
        })
    }

    fn is_empty(&self) -> bool {
        self.any.is_empty() && self.none.is_empty()
    }

    /// Matches against a list of candidate texts (a list claim matches if any element does).
    fn matches_any_of(&self, candidates: &[String], f: impl Fn(&Pattern, &str) -> bool) -> bool {
        let hit = |ps: &[Pattern]| ps.iter().any(|p| candidates.iter().any(|c| f(p, c)));
        (self.any.is_empty() || hit(&self.any)) && !hit(&self.none)
    }
}

#[derive(Debug)]
enum Key {
    Principal,
    Audiences,
    Presenter,
    Claim(Vec<String>),
    Header(String),
}

#[derive(Debug)]
struct Condition {
    key: Key,
    values: Values,
}

#[derive(Debug, Default)]
struct Source {
    principals: Values,
}

#[derive(Debug, Default)]
struct Operation {
    methods: Values,
    paths: Values,
    hosts: Values,
}

#[derive(Debug, Default)]
struct AuthzRule {
    from: Vec<Source>,
    to: Vec<Operation>,
    when: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Audit,
}

#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub action: Action,
    rules: Vec<AuthzRule>,
}

impl Policy {
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

#[derive(Debug)]
pub struct Authorization {
    pub policies: Vec<Policy>,
    /// Policies by the paths their rules can match: a request evaluates only those.
    index: PathIndex,
    has_allow: bool,
}

/// The identity a request carries into authorization: the first verified token, if any.
pub struct Identity<'a> {
    pub jwt: &'a Jwt,
    pub space_delimited: &'a [String],
}

/// Outcome of authorization for one request.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthzResult {
    pub allowed: bool,
    /// The policy that decided a denial, or the AUDIT policies that matched.
    pub matched: Vec<String>,
}

fn parse_key(at: &str, key: &str) -> Result<Key, ConfigError> {
    let bad = || ConfigError::at(at, format!("unsupported key {key:?}"));
    match key {
        "request.auth.principal" => return Ok(Key::Principal),
        "request.auth.audiences" => return Ok(Key::Audiences),
        "request.auth.presenter" => return Ok(Key::Presenter),
        _ => {}
    }
    let brackets = |rest: &str| -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        let mut s = rest;
        while !s.is_empty() {
            let inner = s.strip_prefix('[').ok_or_else(bad)?;
            let end = inner.find(']').ok_or_else(bad)?;
            let name = inner.get(..end).ok_or_else(bad)?;
            if name.is_empty() {
                return Err(bad());
            }
            out.push(name.to_string());
            s = inner.get(end + 1..).ok_or_else(bad)?;
        }
        Ok(out)
    };
    if let Some(rest) = key.strip_prefix("request.auth.claims") {
        let path = brackets(rest)?;
        if path.is_empty() {
            return Err(bad());
        }
        return Ok(Key::Claim(path));
    }
    if let Some(rest) = key.strip_prefix("request.headers") {
        let path = brackets(rest)?;
        return match path.as_slice() {
            [name] => Ok(Key::Header(name.to_ascii_lowercase())),
            _ => Err(bad()),
        };
    }
    Err(bad())
}

fn compile_condition(at: &str, c: RawCondition) -> Result<Condition, ConfigError> {
    if c.values.is_empty() && c.not_values.is_empty() {
        return Err(ConfigError::at(at, "needs values or not_values"));
    }
    Ok(Condition {
        key: parse_key(&format!("{at}.key"), &c.key)?,
        values: Values::new(&c.values, &c.not_values),
    })
}

fn compile_source(s: RawSource) -> Source {
    Source {
        principals: Values::new(&s.request_principals, &s.not_request_principals),
    }
}

fn compile_operation(at: &str, o: RawOperation) -> Result<Operation, ConfigError> {
    Ok(Operation {
        methods: Values::new(&o.methods, &o.not_methods),
        paths: Values::paths(at, &o.paths, &o.not_paths)?,
        hosts: Values::new(&o.hosts, &o.not_hosts),
    })
}

pub fn compile(at: &str, raw: RawAuthorization) -> Result<Authorization, ConfigError> {
    let mut policies = Vec::with_capacity(raw.policies.len());
    for (i, p) in raw.policies.into_iter().enumerate() {
        let pat = format!("{at}.policies[{i}]");
        let action = match p.action.as_str() {
            "ALLOW" => Action::Allow,
            "DENY" => Action::Deny,
            "AUDIT" => Action::Audit,
            other => {
                return Err(ConfigError::at(
                    format!("{pat}.action"),
                    format!("{other:?} is not ALLOW, DENY or AUDIT"),
                ))
            }
        };
        let mut rules = Vec::with_capacity(p.rules.len());
        for (j, r) in p.rules.into_iter().enumerate() {
            let rat = format!("{pat}.rules[{j}]");
            let mut when = Vec::with_capacity(r.when.len());
            for (k, c) in r.when.into_iter().enumerate() {
                when.push(compile_condition(&format!("{rat}.when[{k}]"), c)?);
            }
            let mut to = Vec::with_capacity(r.to.len());
            for (k, t) in r.to.into_iter().enumerate() {
                to.push(compile_operation(
                    &format!("{rat}.to[{k}].operation"),
                    t.operation,
                )?);
            }
            rules.push(AuthzRule {
                from: r
                    .from
                    .into_iter()
                    .map(|f| compile_source(f.source))
                    .collect(),
                to,
                when,
            });
        }
        policies.push(Policy {
            name: p.name.unwrap_or_else(|| format!("policies[{i}]")),
            action,
            rules,
        });
    }
    let index = PathIndex::new(policies.len(), |i| {
        policies.get(i).map_or_else(Vec::new, path_keys)
    });
    let has_allow = policies.iter().any(|p| p.action == Action::Allow);
    Ok(Authorization {
        policies,
        index,
        has_allow,
    })
}

/// The paths a policy can match: every positive `paths` pattern of its operations, or any
/// path when a rule has no operation or an operation has no positive `paths`.
fn path_keys(p: &Policy) -> Vec<PathKey<'_>> {
    let mut keys = Vec::new();
    for r in &p.rules {
        if r.to.is_empty() {
            return vec![PathKey::Any];
        }
        for o in &r.to {
            if o.paths.any.is_empty() {
                return vec![PathKey::Any];
            }
            keys.extend(o.paths.any.iter().map(|pat| match pat {
                Pattern::Exact(e) => PathKey::Exact(e),
                Pattern::Prefix(p) => PathKey::Prefix(p),
                Pattern::Suffix(s) => PathKey::Suffix(s),
                Pattern::Present => PathKey::Any,
                Pattern::Template(t) => PathKey::Prefix(t.prefix()),
            }));
        }
    }
    keys
}

/// `<iss>/<sub>` when both are present and non-empty, as Istio builds a request principal.
fn principal(jwt: &Jwt) -> Option<(&str, &str)> {
    match (jwt.iss.as_deref(), jwt.sub.as_deref()) {
        (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => Some((i, s)),
        _ => None,
    }
}

/// A principal pattern: `*`, `prefix*`, `*suffix` over the whole `iss/sub`; an exact value is
/// split at its last `/` into issuer and subject, as Istio reads it.
fn principal_matches(p: &Pattern, iss: &str, sub: &str) -> bool {
    match p {
        Pattern::Exact(e) => match e.rsplit_once('/') {
            Some((i, s)) => i == iss && s == sub,
            None => false,
        },
        _ => p.matches(&format!("{iss}/{sub}")),
    }
}

fn claim_texts(v: &Value, split: bool) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(claims::scalar_text).collect(),
        Value::String(s) if split => s
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => claims::scalar_text(v).into_iter().collect(),
    }
}

impl Authorization {
    pub fn evaluate(&self, req: &Request, id: Option<&Identity>) -> AuthzResult {
        // A policy outside the candidates cannot match the path.
        let candidates = self.index.candidates(req.path());
        self.decide(
            candidates.into_iter().filter_map(|i| self.policies.get(i)),
            req,
            id,
        )
    }

    /// DENY before ALLOW over `policies` (in order); ALLOW policies outside them still count
    /// as existing.
    fn decide<'p>(
        &self,
        policies: impl Iterator<Item = &'p Policy>,
        req: &Request,
        id: Option<&Identity>,
    ) -> AuthzResult {
        let mut audit = Vec::new();
        let mut allowed_by = None;
        for p in policies {
            let hit = p.rules.iter().any(|r| rule_matches(r, req, id));
            match p.action {
                Action::Deny if hit => {
                    return AuthzResult {
                        allowed: false,
                        matched: vec![p.name.clone()],
                    }
                }
                Action::Allow if hit && allowed_by.is_none() => allowed_by = Some(p.name.clone()),
                Action::Audit if hit => audit.push(p.name.clone()),
                Action::Deny | Action::Allow | Action::Audit => {}
            }
        }
        AuthzResult {
            allowed: !self.has_allow || allowed_by.is_some(),
            matched: audit,
        }
    }
}

fn rule_matches(r: &AuthzRule, req: &Request, id: Option<&Identity>) -> bool {
    let from_ok = r.from.is_empty()
        || r.from.iter().any(|s| {
            s.principals.is_empty()
                || match id.and_then(|i| principal(i.jwt)) {
                    Some((iss, sub)) => s
                        .principals
                        .matches_any_of(&[String::new()], |p, _| principal_matches(p, iss, sub)),
                    // No principal: only a pure `not_request_principals` source can match.
                    None => s.principals.any.is_empty(),
                }
        });
    let to_ok = r.to.is_empty()
        || r.to.iter().any(|o| {
            let one = |v: &Values, text: &str, ic: bool| {
                v.matches_any_of(&[text.to_string()], |p, c| {
                    if ic {
                        p.matches_ignore_case(c)
                    } else {
                        p.matches(c)
                    }
                })
            };
            one(&o.methods, req.method(), false)
                && one(&o.paths, req.path(), false)
                && one(&o.hosts, req.host_without_port(), true)
        });
    from_ok && to_ok && r.when.iter().all(|c| condition_matches(c, req, id))
}

fn condition_matches(c: &Condition, req: &Request, id: Option<&Identity>) -> bool {
    let texts: Vec<String> = match (&c.key, id) {
        (Key::Header(name), _) => req.header_values(name).map(str::to_owned).collect(),
        (_, None) => Vec::new(),
        (Key::Principal, Some(i)) => {
            return match principal(i.jwt) {
                Some((iss, sub)) => c
                    .values
                    .matches_any_of(&[String::new()], |p, _| principal_matches(p, iss, sub)),
                None => c.values.any.is_empty(),
            };
        }
        (Key::Audiences, Some(i)) => i.jwt.audiences.clone(),
        (Key::Presenter, Some(i)) => i
            .jwt
            .payload
            .get("azp")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        (Key::Claim(path), Some(i)) => match claims::lookup(&i.jwt.payload, path) {
            Some(v) => {
                let split = path.last().is_some_and(|n| i.space_delimited.contains(n));
                claim_texts(v, split)
            }
            None => Vec::new(),
        },
    };
    if texts.is_empty() {
        // Absent: only a condition made purely of not_values can hold.
        return c.values.any.is_empty();
    }
    c.values.matches_any_of(&texts, Pattern::matches)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn authz(json: &str) -> Authorization {
        compile("authorization", serde_json::from_str(json).unwrap()).unwrap()
    }

    fn jwt(payload: serde_json::Value) -> Jwt {
        let payload = payload.as_object().unwrap().clone();
        Jwt {
            alg: crate::crypto::signature::Alg::RS256,
            kid: None,
            iss: payload
                .get("iss")
                .and_then(Value::as_str)
                .map(str::to_owned),
            sub: payload
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_owned),
            audiences: vec![],
            exp: None,
            nbf: None,
            payload,
            payload_b64: String::new(),
        }
    }

    fn req(method: &str, path: &str) -> Request {
        Request::new(vec![
            (":method".into(), method.into()),
            (":path".into(), path.into()),
            (":authority".into(), "svc1.example.com".into()),
        ])
    }

    const SPLIT: &[String] = &[];

    #[test]
    fn the_index_decides_as_a_linear_walk() {
        use crate::policy::path_index::testing::{random_path, Rng};
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut denied, mut allowed) = (0, 0);
        for _ in 0..300 {
            let mut policies = Vec::new();
            for _ in 0..1 + rng.below(8) {
                let mut rules = Vec::new();
                for _ in 0..rng.below(3) {
                    let mut rule = serde_json::json!({});
                    let ops: Vec<_> = (0..rng.below(3))
                        .map(|_| {
                            let pattern = |rng: &mut Rng| {
                                let p = random_path(rng);
                                match rng.below(7) {
                                    0 => format!("{p}*"),
                                    1 => format!("*{}", &p[rng.below(p.len())..]),
                                    2 => "*".to_string(),
                                    // Templates (indexed by their literal prefix); a path
                                    // with an empty segment would be refused.
                                    3 if !p.contains("//") => {
                                        format!("{}/{{**}}", p.trim_end_matches('/'))
                                    }
                                    4 if !p.contains("//") => match p[1..].find('/') {
                                        Some(i) => format!("{}/{{*}}", &p[..=i]),
                                        None => "/{*}".to_string(),
                                    },
                                    _ => p,
                                }
                            };
                            let mut op = serde_json::json!({});
                            if rng.below(4) != 0 {
                                op["paths"] =
                                    serde_json::json!([pattern(&mut rng), pattern(&mut rng)]);
                            }
                            if rng.below(4) == 0 {
                                op["not_paths"] = serde_json::json!([pattern(&mut rng)]);
                            }
                            if rng.below(3) == 0 {
                                op["methods"] = serde_json::json!([rng.pick(&["GET", "POST"])]);
                            }
                            serde_json::json!({"operation": op})
                        })
                        .collect();
                    if !ops.is_empty() {
                        rule["to"] = serde_json::json!(ops);
                    }
                    if rng.below(3) == 0 {
                        rule["when"] = serde_json::json!([{"key": "request.auth.claims[role]",
                            "values": [rng.pick(&["admin", "user"])]}]);
                    }
                    rules.push(rule);
                }
                let action = rng.pick(&["ALLOW", "DENY", "AUDIT"]);
                policies.push(serde_json::json!({"action": action, "rules": rules}));
            }
            let a = authz(&serde_json::json!({ "policies": policies }).to_string());
            for _ in 0..20 {
                let r = req(rng.pick(&["GET", "POST"]), &random_path(&mut rng));
                let token = jwt(serde_json::json!({"iss": "i", "sub": "s",
                    "role": rng.pick(&["admin", "user"])}));
                let id = Identity {
                    jwt: &token,
                    space_delimited: SPLIT,
                };
                let id = (rng.below(4) != 0).then_some(&id);
                // Every policy walked in order, as before the index.
                let want = a.decide(a.policies.iter(), &r, id);
                assert_eq!(a.evaluate(&r, id), want, "{} {:?}", r.path(), a.policies);
                if want.allowed {
                    allowed += 1;
                } else {
                    denied += 1;
                }
            }
        }
        assert!(
            denied > 500 && allowed > 500,
            "{denied} denied, {allowed} allowed"
        );
    }

    #[test]
    fn principals_and_operations() {
        let a = authz(
            r#"{"policies":[{"action":"ALLOW","rules":[{"from":[{"source":{"request_principals":["https://i.example//*"]}}],
                "to":[{"operation":{"methods":["GET"],"paths":["/headers"]}}]}]}]}"#,
        );
        let t = jwt(serde_json::json!({"iss":"https://i.example/","sub":"abc"}));
        let id = Identity {
            jwt: &t,
            space_delimited: SPLIT,
        };
        assert!(a.evaluate(&req("GET", "/headers?x"), Some(&id)).allowed);
        assert!(!a.evaluate(&req("POST", "/headers"), Some(&id)).allowed);
        assert!(!a.evaluate(&req("GET", "/ip"), Some(&id)).allowed);
        assert!(!a.evaluate(&req("GET", "/headers"), None).allowed);
        let exact = authz(
            r#"{"policies":[{"action":"ALLOW","rules":[{"from":[{"source":{"request_principals":["https://i.example//abc"]}}]}]}]}"#,
        );
        assert!(exact.evaluate(&req("GET", "/"), Some(&id)).allowed);
        let other = jwt(serde_json::json!({"iss":"https://i.example/","sub":"zzz"}));
        let oid = Identity {
            jwt: &other,
            space_delimited: SPLIT,
        };
        assert!(!exact.evaluate(&req("GET", "/"), Some(&oid)).allowed);
    }

    #[test]
    fn claims_typed_and_split() {
        let a = authz(
            r#"{"policies":[{"action":"DENY","rules":[{"when":[{"key":"request.auth.claims[banned]","values":["true"]}]}]},
               {"action":"ALLOW","rules":[{"when":[{"key":"request.auth.claims[scope]","values":["write:database"]},
                                                   {"key":"request.auth.claims[org][tier]","not_values":["free"]},
                                                   {"key":"request.auth.claims[level]","values":["4*"]}]}]}]}"#,
        );
        let split = vec!["scope".to_string()];
        let ok = jwt(
            serde_json::json!({"scope":"read:database write:database","org":{"tier":"pro"},"level":42}),
        );
        let id = Identity {
            jwt: &ok,
            space_delimited: &split,
        };
        assert!(a.evaluate(&req("GET", "/"), Some(&id)).allowed);
        let banned = jwt(serde_json::json!({"scope":"write:database","banned":true,"level":42}));
        let id = Identity {
            jwt: &banned,
            space_delimited: &split,
        };
        let r = a.evaluate(&req("GET", "/"), Some(&id));
        assert!(!r.allowed);
        let free =
            jwt(serde_json::json!({"scope":"write:database","org":{"tier":"free"},"level":42}));
        let id = Identity {
            jwt: &free,
            space_delimited: &split,
        };
        assert!(!a.evaluate(&req("GET", "/"), Some(&id)).allowed);
        let unsplit = jwt(serde_json::json!({"scope":"read:database write:database","level":42}));
        let id = Identity {
            jwt: &unsplit,
            space_delimited: SPLIT,
        };
        assert!(!a.evaluate(&req("GET", "/"), Some(&id)).allowed);
    }

    #[test]
    fn path_templates_in_policies() {
        let a = authz(
            r#"{"policies":[{"action":"DENY","rules":[{"to":[{"operation":{"paths":["/api/{*}/admin"]}}]}]},
               {"action":"ALLOW","rules":[{"to":[{"operation":{"paths":["/files/{**}"],"not_paths":["/files/{*}/secret"]}}]}]}]}"#,
        );
        let allowed = |p: &str| a.evaluate(&req("GET", p), None).allowed;
        assert!(!allowed("/api/v1/admin"));
        assert!(!allowed("/files/a/secret"));
        assert!(allowed("/files/a/b/secret"));
        assert!(allowed("/files/a/public?x=1"));
        // The DENY does not match, and no ALLOW does either.
        assert!(!allowed("/api/v1/v2/admin"));
        for bad in ["/api/{id}", "/a/{*}.txt", "/{**}/x/{*}"] {
            let raw = serde_json::from_value(serde_json::json!({"policies":[{"action":"DENY",
                "rules":[{"to":[{"operation":{"paths":["/ok"],"not_paths":["/x", bad]}}]}]}]}))
            .unwrap();
            let e = compile("authorization", raw).unwrap_err();
            assert_eq!(
                e.path, "authorization.policies[0].rules[0].to[0].operation.not_paths[1]",
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_keys_are_refused_with_path() {
        let raw = serde_json::from_str(
            r#"{"policies":[{"action":"ALLOW","rules":[{"when":[{"key":"source.ip","values":["1"]}]}]}]}"#,
        )
        .unwrap();
        let e = compile("authorization", raw).unwrap_err();
        assert_eq!(e.path, "authorization.policies[0].rules[0].when[0].key");
        let raw = serde_json::from_str(r#"{"policies":[{"action":"CUSTOM"}]}"#).unwrap();
        assert_eq!(
            compile("authorization", raw).unwrap_err().path,
            "authorization.policies[0].action"
        );
    }
}
