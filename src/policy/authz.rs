//! Claim-based authorization with Istio `AuthorizationPolicy` semantics: DENY first, then
//! ALLOW when any ALLOW policy exists; AUDIT is evaluated and reported, never blocking.
//! Dry-run policies (Istio's `istio.io/dry-run`, RBAC's shadow rules) are evaluated like their
//! action and reported, never enforced. Unlike Istio, boolean and number claims match their
//! JSON text.

use serde_json::Value;
use std::borrow::Cow;

use crate::config::schema::{ConfigError, RawAuthorization, RawCondition, RawOperation, RawSource};
use crate::jwt::claims;
use crate::jwt::token::Jwt;
use crate::policy::path_index::{PathIndex, PathKey};
use crate::policy::path_template::{self, PathTemplate};
use crate::policy::peer::{self, Blocks, Ports};
use crate::request::connection::Attr;
use crate::request::view::Request;
use crate::stats::PolicyCounter;

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

    /// Against one value that may be unknown (a connection attribute).
    fn matches_one(&self, value: Option<&str>) -> bool {
        match value {
            None => self.any.is_empty(),
            Some(v) => {
                (self.any.is_empty() || self.any.iter().any(|p| p.matches(v)))
                    && !self.none.iter().any(|p| p.matches(v))
            }
        }
    }

    /// Matches against a list of candidate texts (a list claim matches if any element does).
    fn matches_any_of<S: AsRef<str>>(
        &self,
        candidates: &[S],
        f: impl Fn(&Pattern, &str) -> bool,
    ) -> bool {
        let hit = |ps: &[Pattern]| {
            ps.iter()
                .any(|p| candidates.iter().any(|c| f(p, c.as_ref())))
        };
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
    /// `source.principal`, `source.namespace`, `connection.sni`: text of the connection.
    PeerPrincipal,
    PeerNamespace,
    Sni,
    /// `source.ip`, `remote.ip`, `destination.ip`, with their blocks (the condition's
    /// `values` stay empty).
    Ip(Attr, Blocks),
    /// `destination.port`, with its ports.
    Port(Ports),
}

impl Key {
    fn uses_connection(&self) -> bool {
        match self {
            Self::PeerPrincipal
            | Self::PeerNamespace
            | Self::Sni
            | Self::Ip(..)
            | Self::Port(_) => true,
            Self::Principal
            | Self::Audiences
            | Self::Presenter
            | Self::Claim(_)
            | Self::Header(_) => false,
        }
    }
}

#[derive(Debug)]
struct Condition {
    key: Key,
    values: Values,
}

#[derive(Debug, Default)]
struct Source {
    principals: Values,
    /// The mTLS peer's principal and namespace (`principals`, `namespaces`).
    peers: Values,
    namespaces: Values,
    ip_blocks: Blocks,
    remote_ip_blocks: Blocks,
}

impl Source {
    fn uses_connection(&self) -> bool {
        !(self.peers.is_empty()
            && self.namespaces.is_empty()
            && self.ip_blocks.is_empty()
            && self.remote_ip_blocks.is_empty())
    }
}

#[derive(Debug, Default)]
struct Operation {
    methods: Values,
    paths: Values,
    hosts: Values,
    ports: Ports,
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
    /// Evaluated and reported, never enforced.
    pub dry_run: bool,
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
    /// Whether some policy looks at the connection (peer identity, addresses, ports, SNI):
    /// only then does the host offer its attributes.
    pub uses_connection: bool,
    /// Policies by the paths their rules can match: a request evaluates only those.
    index: PathIndex,
    /// Some enforced ALLOW policy exists.
    has_allow: bool,
    /// Some dry-run policy exists; `dry_run_allow`: some dry-run ALLOW policy.
    has_dry_run: bool,
    dry_run_allow: bool,
}

/// The identity a request carries into authorization: the first verified token, if any.
pub struct Identity<'a> {
    pub jwt: &'a Jwt,
    pub space_delimited: &'a [String],
}

/// Outcome of authorization for one request; policies are positions in
/// [`Authorization::policies`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzResult {
    pub allowed: bool,
    /// The enforced policy that decided: the DENY that refused, or the first ALLOW that let
    /// the request through. `None` when no ALLOW matched, or no policy decided.
    pub decided_by: Option<usize>,
    /// Every matching policy, of any action, dry-run ones included, in configured order.
    pub matched: Vec<usize>,
    /// With dry-run policies configured: the decision had they been enforced too.
    pub dry_run: Option<Verdict>,
}

impl AuthzResult {
    /// The per-policy counters this result moves: the enforced policy that decided
    /// (`allowed` / `denied`), every matching AUDIT policy (`audit`), every matching dry-run
    /// ALLOW or DENY policy (`dry_run_allowed` / `dry_run_denied`).
    pub fn events<'a>(
        &'a self,
        authz: &'a Authorization,
    ) -> impl Iterator<Item = (usize, PolicyCounter)> + 'a {
        let decider = self.decided_by.map(|i| {
            let c = if self.allowed {
                PolicyCounter::Allowed
            } else {
                PolicyCounter::Denied
            };
            (i, c)
        });
        let others = self.matched.iter().filter_map(move |&i| {
            let p = authz.policies.get(i)?;
            let c = match (p.action, p.dry_run) {
                (Action::Audit, _) => PolicyCounter::Audit,
                (Action::Allow, true) => PolicyCounter::DryRunAllowed,
                (Action::Deny, true) => PolicyCounter::DryRunDenied,
                (Action::Allow | Action::Deny, false) => return None,
            };
            Some((i, c))
        });
        decider.into_iter().chain(others)
    }
}

/// A decision and the policy that made it (see [`AuthzResult::decided_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub decided_by: Option<usize>,
}

fn parse_key(at: &str, key: &str) -> Result<Key, ConfigError> {
    let bad = || ConfigError::at(at, format!("unsupported key {key:?}"));
    match key {
        "request.auth.principal" => return Ok(Key::Principal),
        "request.auth.audiences" => return Ok(Key::Audiences),
        "request.auth.presenter" => return Ok(Key::Presenter),
        "source.principal" => return Ok(Key::PeerPrincipal),
        "source.namespace" => return Ok(Key::PeerNamespace),
        "connection.sni" => return Ok(Key::Sni),
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
    let (values, not_values) = (format!("{at}.values"), format!("{at}.not_values"));
    let blocks = |attr| {
        Blocks::parse(&values, &c.values, &not_values, &c.not_values).map(|b| Key::Ip(attr, b))
    };
    let key = match c.key.as_str() {
        // Istio reads source.ip as the direct peer; Envoy shows a wasm filter only the
        // address its connection manager computed (see README), so both are that one.
        "source.ip" | "remote.ip" => blocks(Attr::Source),
        "destination.ip" => blocks(Attr::Destination),
        "destination.port" => {
            Ports::parse(&values, &c.values, &not_values, &c.not_values).map(Key::Port)
        }
        _ => {
            return Ok(Condition {
                key: parse_key(&format!("{at}.key"), &c.key)?,
                values: Values::new(&c.values, &c.not_values),
            })
        }
    }
    .map_err(|(path, why)| ConfigError::at(path, why))?;
    Ok(Condition {
        key,
        values: Values::default(),
    })
}

fn compile_source(at: &str, s: RawSource) -> Result<Source, ConfigError> {
    let blocks = |field: &str, any: &[String], none: &[String]| {
        Blocks::parse(
            &format!("{at}.{field}"),
            any,
            &format!("{at}.not_{field}"),
            none,
        )
        .map_err(|(path, why)| ConfigError::at(path, why))
    };
    Ok(Source {
        principals: Values::new(&s.request_principals, &s.not_request_principals),
        peers: Values::new(&s.principals, &s.not_principals),
        namespaces: Values::new(&s.namespaces, &s.not_namespaces),
        ip_blocks: blocks("ip_blocks", &s.ip_blocks, &s.not_ip_blocks)?,
        remote_ip_blocks: blocks(
            "remote_ip_blocks",
            &s.remote_ip_blocks,
            &s.not_remote_ip_blocks,
        )?,
    })
}

fn compile_operation(at: &str, o: RawOperation) -> Result<Operation, ConfigError> {
    Ok(Operation {
        methods: Values::new(&o.methods, &o.not_methods),
        paths: Values::paths(at, &o.paths, &o.not_paths)?,
        hosts: Values::new(&o.hosts, &o.not_hosts),
        ports: Ports::parse(
            &format!("{at}.ports"),
            &o.ports,
            &format!("{at}.not_ports"),
            &o.not_ports,
        )
        .map_err(|(path, why)| ConfigError::at(path, why))?,
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
            let mut from = Vec::with_capacity(r.from.len());
            for (k, f) in r.from.into_iter().enumerate() {
                from.push(compile_source(
                    &format!("{rat}.from[{k}].source"),
                    f.source,
                )?);
            }
            rules.push(AuthzRule { from, to, when });
        }
        policies.push(Policy {
            name: p.name.unwrap_or_else(|| format!("policies[{i}]")),
            action,
            dry_run: p.dry_run,
            rules,
        });
    }
    let index = PathIndex::new(policies.len(), |i| {
        policies.get(i).map_or_else(Vec::new, path_keys)
    });
    let has_allow = policies
        .iter()
        .any(|p| p.action == Action::Allow && !p.dry_run);
    let has_dry_run = policies.iter().any(|p| p.dry_run);
    let dry_run_allow = policies
        .iter()
        .any(|p| p.action == Action::Allow && p.dry_run);
    let uses_connection = policies.iter().flat_map(|p| &p.rules).any(|r| {
        r.from.iter().any(Source::uses_connection)
            || r.to.iter().any(|o| !o.ports.is_empty())
            || r.when.iter().any(|c| c.key.uses_connection())
    });
    Ok(Authorization {
        policies,
        uses_connection,
        index,
        has_allow,
        has_dry_run,
        dry_run_allow,
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

fn claim_texts(v: &Value, split: bool) -> Vec<Cow<'_, str>> {
    match v {
        Value::Array(items) => items.iter().filter_map(claims::scalar_text).collect(),
        Value::String(s) if split => s
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(Cow::Borrowed)
            .collect(),
        _ => claims::scalar_text(v).into_iter().collect(),
    }
}

impl Authorization {
    pub fn evaluate(&self, req: &Request, id: Option<&Identity>) -> AuthzResult {
        // A policy outside the candidates cannot match the path.
        let candidates = self.index.candidates(req.path());
        self.decide(
            candidates
                .iter()
                .filter_map(|&i| self.policies.get(i).map(|p| (i, p))),
            req,
            id,
        )
    }

    /// DENY before ALLOW over `policies` (in order); ALLOW policies outside them still count
    /// as existing. Every policy given is evaluated: a DENY match does not hide the AUDIT and
    /// dry-run policies that match too.
    fn decide<'p>(
        &self,
        policies: impl Iterator<Item = (usize, &'p Policy)>,
        req: &Request,
        id: Option<&Identity>,
    ) -> AuthzResult {
        let mut matched = Vec::new();
        let (mut denied_by, mut allowed_by) = (None, None);
        let (mut dry_denied_by, mut dry_allowed_by) = (None, None);
        for (i, p) in policies {
            if !p.rules.iter().any(|r| rule_matches(r, req, id)) {
                continue;
            }
            matched.push(i);
            let (deny, allow) = if p.dry_run {
                (&mut dry_denied_by, &mut dry_allowed_by)
            } else {
                (&mut denied_by, &mut allowed_by)
            };
            match p.action {
                Action::Deny => {
                    deny.get_or_insert(i);
                }
                Action::Allow => {
                    allow.get_or_insert(i);
                }
                Action::Audit => {}
            }
        }
        let verdict = |deny: Option<usize>, allow: Option<usize>, allow_needed: bool| match deny {
            Some(d) => Verdict {
                allowed: false,
                decided_by: Some(d),
            },
            None => Verdict {
                allowed: !allow_needed || allow.is_some(),
                decided_by: allow,
            },
        };
        let enforced = verdict(denied_by, allowed_by, self.has_allow);
        let dry_run = self.has_dry_run.then(|| {
            verdict(
                denied_by.or(dry_denied_by),
                allowed_by.or(dry_allowed_by),
                self.has_allow || self.dry_run_allow,
            )
        });
        AuthzResult {
            allowed: enforced.allowed,
            decided_by: enforced.decided_by,
            matched,
            dry_run,
        }
    }

    /// The names of the policies at `positions`, comma-separated.
    pub fn names(&self, positions: &[usize]) -> String {
        let mut out = String::new();
        for p in positions.iter().filter_map(|&i| self.policies.get(i)) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&p.name);
        }
        out
    }
}

/// The mTLS peer's principal: its certificate's SPIFFE URI SAN without `spiffe://`.
fn peer_principal(req: &Request) -> Option<&str> {
    req.connection
        .get(Attr::PeerUriSan)
        .and_then(peer::spiffe_principal)
}

fn address(req: &Request, attr: Attr) -> Option<(std::net::IpAddr, &str)> {
    req.connection.get(attr).and_then(peer::split_address)
}

/// The connection side of a source; each attribute is read only if a field asks for it.
fn peer_matches(s: &Source, req: &Request) -> bool {
    let source_ip = || address(req, Attr::Source).map(|(ip, _)| ip);
    (s.peers.is_empty() || s.peers.matches_one(peer_principal(req)))
        && (s.namespaces.is_empty()
            || s.namespaces
                .matches_one(peer_principal(req).and_then(peer::namespace)))
        && (s.ip_blocks.is_empty() || s.ip_blocks.matches(source_ip()))
        && (s.remote_ip_blocks.is_empty() || s.remote_ip_blocks.matches(source_ip()))
}

fn rule_matches(r: &AuthzRule, req: &Request, id: Option<&Identity>) -> bool {
    let from_ok = r.from.is_empty()
        || r.from.iter().any(|s| {
            (s.principals.is_empty()
                || match id.and_then(|i| principal(i.jwt)) {
                    Some((iss, sub)) => s
                        .principals
                        .matches_any_of(&[""], |p, _| principal_matches(p, iss, sub)),
                    // No principal: only a pure `not_request_principals` source can match.
                    None => s.principals.any.is_empty(),
                })
                && peer_matches(s, req)
        });
    let to_ok = r.to.is_empty()
        || r.to.iter().any(|o| {
            let one = |v: &Values, text: &str, ic: bool| {
                v.matches_any_of(&[text], |p, c| {
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
                && (o.ports.is_empty()
                    || o.ports
                        .matches(address(req, Attr::Destination).map(|(_, port)| port)))
        });
    from_ok && to_ok && r.when.iter().all(|c| condition_matches(c, req, id))
}

fn condition_matches(c: &Condition, req: &Request, id: Option<&Identity>) -> bool {
    let texts: Vec<Cow<str>> = match (&c.key, id) {
        (Key::Header(name), _) => req.header_values(name).map(Cow::Borrowed).collect(),
        (Key::PeerPrincipal, _) => return c.values.matches_one(peer_principal(req)),
        (Key::PeerNamespace, _) => {
            return c
                .values
                .matches_one(peer_principal(req).and_then(peer::namespace))
        }
        (Key::Sni, _) => return c.values.matches_one(req.connection.get(Attr::Sni)),
        (Key::Ip(attr, blocks), _) => return blocks.matches(address(req, *attr).map(|(ip, _)| ip)),
        (Key::Port(ports), _) => {
            return ports.matches(address(req, Attr::Destination).map(|(_, port)| port))
        }
        (_, None) => Vec::new(),
        (Key::Principal, Some(i)) => {
            return match principal(i.jwt) {
                Some((iss, sub)) => c
                    .values
                    .matches_any_of(&[""], |p, _| principal_matches(p, iss, sub)),
                None => c.values.any.is_empty(),
            };
        }
        (Key::Audiences, Some(i)) => i
            .jwt
            .audiences
            .iter()
            .map(|a| Cow::Borrowed(a.as_str()))
            .collect(),
        (Key::Presenter, Some(i)) => i
            .jwt
            .payload
            .get("azp")
            .and_then(Value::as_str)
            .map(Cow::Borrowed)
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
    use crate::request::connection::Connection;

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
                let dry_run = rng.below(5) == 0;
                policies.push(
                    serde_json::json!({"action": action, "rules": rules, "dry_run": dry_run}),
                );
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
                let want = a.decide(a.policies.iter().enumerate(), &r, id);
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
    fn dry_run_and_audit_are_reported_never_enforced() {
        let a = authz(
            r#"{"policies":[
              {"name":"audit","action":"AUDIT","rules":[{}]},
              {"name":"shadow-deny","action":"DENY","dry_run":true,"rules":[{"to":[{"operation":{"paths":["/x"]}}]}]},
              {"name":"shadow-allow","action":"ALLOW","dry_run":true,"rules":[{"to":[{"operation":{"paths":["/y"]}}]}]}
            ]}"#,
        );
        // No enforced ALLOW policy: a dry-run ALLOW that does not match denies nothing.
        let r = a.evaluate(&req("GET", "/z"), None);
        assert!(r.allowed);
        assert_eq!(r.decided_by, None);
        assert_eq!(r.matched, vec![0]);
        assert_eq!(
            r.dry_run,
            Some(Verdict {
                allowed: false,
                decided_by: None
            })
        );
        let r = a.evaluate(&req("GET", "/x"), None);
        assert!(r.allowed, "a dry-run DENY is not enforced");
        assert_eq!(
            r.dry_run,
            Some(Verdict {
                allowed: false,
                decided_by: Some(1)
            })
        );
        assert_eq!(
            r.events(&a).collect::<Vec<_>>(),
            vec![(0, PolicyCounter::Audit), (1, PolicyCounter::DryRunDenied)]
        );
        let r = a.evaluate(&req("GET", "/y"), None);
        assert_eq!(
            r.events(&a).collect::<Vec<_>>(),
            vec![(0, PolicyCounter::Audit), (2, PolicyCounter::DryRunAllowed)]
        );
        assert!(r.dry_run.unwrap().allowed);
        assert_eq!(a.names(&[2, 0]), "shadow-allow,audit");
    }

    #[test]
    fn the_denier_is_never_an_audit_policy() {
        let a = authz(
            r#"{"policies":[
              {"name":"audit","action":"AUDIT","rules":[{}]},
              {"name":"deny","action":"DENY","rules":[{"to":[{"operation":{"paths":["/d"]}}]}]},
              {"name":"allow","action":"ALLOW","rules":[{"to":[{"operation":{"paths":["/a","/d"]}}]}]}
            ]}"#,
        );
        let r = a.evaluate(&req("GET", "/none"), None);
        assert!(!r.allowed);
        assert_eq!((r.decided_by, r.dry_run), (None, None));
        assert_eq!(r.matched, vec![0]);
        let r = a.evaluate(&req("GET", "/d"), None);
        assert_eq!((r.allowed, r.decided_by), (false, Some(1)));
        assert_eq!(
            r.matched,
            vec![0, 1, 2],
            "every matching policy is reported"
        );
        assert_eq!(
            r.events(&a).collect::<Vec<_>>(),
            vec![(1, PolicyCounter::Denied), (0, PolicyCounter::Audit)]
        );
        let r = a.evaluate(&req("GET", "/a"), None);
        assert_eq!(
            r.events(&a).collect::<Vec<_>>(),
            vec![(2, PolicyCounter::Allowed), (0, PolicyCounter::Audit)]
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

    /// A request on a connection with these attributes (`None`: unknown).
    fn on(
        path: &str,
        san: Option<&str>,
        source: &str,
        destination: &str,
        sni: Option<&str>,
    ) -> Request {
        let mut r = req("GET", path);
        let (san, source, destination, sni) = (
            san.map(str::to_owned),
            source.to_string(),
            destination.to_string(),
            sni.map(str::to_owned),
        );
        r.connection = Connection::new(
            move |a| match a {
                Attr::PeerUriSan => san.clone(),
                Attr::Source => Some(source.clone()),
                Attr::Destination => Some(destination.clone()),
                Attr::Sni => sni.clone(),
                Attr::RouteName | Attr::RouteMetadata(_) => None,
            },
            0,
        );
        r
    }

    const FOO: &str = "spiffe://cluster.local/ns/foo/sa/app";
    const BAR: &str = "spiffe://cluster.local/ns/bar/sa/app";

    #[test]
    fn peer_principals_and_namespaces() {
        let a = authz(
            r#"{"policies":[
              {"action":"DENY","rules":[{"from":[{"source":{"namespaces":["bar"]}}],"to":[{"operation":{"paths":["/deny-bar"]}}]}]},
              {"action":"ALLOW","rules":[
                {"from":[{"source":{"principals":["cluster.local/ns/foo/sa/app"]}}],"to":[{"operation":{"paths":["/exact"]}}]},
                {"from":[{"source":{"principals":["cluster.local/ns/foo/*"]}}],"to":[{"operation":{"paths":["/prefix"]}}]},
                {"from":[{"source":{"principals":["*/sa/app"],"not_namespaces":["foo"]}}],"to":[{"operation":{"paths":["/suffix-not-foo"]}}]},
                {"from":[{"source":{"principals":["*"]}}],"to":[{"operation":{"paths":["/any-peer","/deny-bar"]}}]},
                {"from":[{"source":{"not_principals":["*"]}}],"to":[{"operation":{"paths":["/no-peer"]}}]},
                {"from":[{"source":{"namespaces":["f*"]}}],"to":[{"operation":{"paths":["/ns-prefix"]}}]},
                {"when":[{"key":"source.principal","values":["cluster.local/ns/bar/sa/app"]}],"to":[{"operation":{"paths":["/when-principal"]}}]},
                {"when":[{"key":"source.namespace","not_values":["bar"]}],"to":[{"operation":{"paths":["/when-ns"]}}]}
              ]}]}"#,
        );
        assert!(a.uses_connection);
        let allowed = |path: &str, san: Option<&str>| {
            a.evaluate(&on(path, san, "127.0.0.1:1", "127.0.0.1:2", None), None)
                .allowed
        };
        let https = Some("https://cluster.local/ns/foo/sa/app");
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("/exact", Some(FOO), true),
            ("/exact", Some(BAR), false),
            ("/exact", None, false),
            ("/exact", https, false),
            ("/prefix", Some(FOO), true),
            ("/prefix", Some(BAR), false),
            ("/suffix-not-foo", Some(BAR), true),
            ("/suffix-not-foo", Some(FOO), false),
            ("/any-peer", Some(BAR), true),
            ("/any-peer", None, false),
            ("/any-peer", https, false),
            ("/no-peer", None, true),
            ("/no-peer", Some(FOO), false),
            ("/ns-prefix", Some(FOO), true),
            ("/ns-prefix", Some(BAR), false),
            ("/deny-bar", Some(FOO), true),
            ("/deny-bar", Some(BAR), false),
            ("/when-principal", Some(BAR), true),
            ("/when-principal", Some(FOO), false),
            ("/when-ns", Some(FOO), true),
            ("/when-ns", None, true),
            ("/when-ns", Some(BAR), false),
        ];
        for (path, san, want) in cases {
            assert_eq!(allowed(path, *san), *want, "{path} {san:?}");
        }
    }

    #[test]
    fn addresses_ports_and_sni() {
        let a = authz(
            r#"{"policies":[
              {"action":"DENY","rules":[{"from":[{"source":{"remote_ip_blocks":["10.9.0.0/16"]}}]}]},
              {"action":"ALLOW","rules":[
                {"from":[{"source":{"ip_blocks":["10.0.0.0/8","192.168.1.1"],"not_ip_blocks":["10.1.0.0/16"]}}],"to":[{"operation":{"paths":["/ip"]}}]},
                {"to":[{"operation":{"paths":["/port"],"ports":["8443"]}}]},
                {"to":[{"operation":{"paths":["/not-port"],"not_ports":["8443"]}}]},
                {"when":[{"key":"source.ip","values":["2001:db8::/32"]}],"to":[{"operation":{"paths":["/v6"]}}]},
                {"when":[{"key":"remote.ip","not_values":["10.0.0.0/8"]}],"to":[{"operation":{"paths":["/not-ten"]}}]},
                {"when":[{"key":"destination.ip","values":["127.0.0.2"]},{"key":"destination.port","values":["9000"]}],"to":[{"operation":{"paths":["/dest"]}}]},
                {"when":[{"key":"connection.sni","values":["*.example.com"]}],"to":[{"operation":{"paths":["/sni"]}}]}
              ]}]}"#,
        );
        let allowed = |path: &str, src: &str, dst: &str, sni: Option<&str>| {
            a.evaluate(&on(path, None, src, dst, sni), None).allowed
        };
        let d = "127.0.0.1:8443";
        let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
            ("/ip", "10.2.3.4:5", d, None, true),
            ("/ip", "192.168.1.1:5", d, None, true),
            ("/ip", "192.168.1.2:5", d, None, false),
            ("/ip", "10.1.3.4:5", d, None, false),
            ("/ip", "10.9.3.4:5", d, None, false),
            ("/ip", "/unix/socket", d, None, false),
            ("/port", "1.1.1.1:5", "127.0.0.1:8443", None, true),
            ("/port", "1.1.1.1:5", "127.0.0.1:8080", None, false),
            ("/not-port", "1.1.1.1:5", "127.0.0.1:8443", None, false),
            ("/not-port", "1.1.1.1:5", "127.0.0.1:8080", None, true),
            ("/v6", "[2001:db8::7]:5", d, None, true),
            ("/v6", "[2001:db9::7]:5", d, None, false),
            ("/not-ten", "11.0.0.1:5", d, None, true),
            ("/not-ten", "10.0.0.1:5", d, None, false),
            ("/dest", "1.1.1.1:5", "127.0.0.2:9000", None, true),
            ("/dest", "1.1.1.1:5", "127.0.0.2:9001", None, false),
            ("/dest", "1.1.1.1:5", "127.0.0.3:9000", None, false),
            ("/sni", "1.1.1.1:5", d, Some("api.example.com"), true),
            ("/sni", "1.1.1.1:5", d, Some("example.org"), false),
            ("/sni", "1.1.1.1:5", d, None, false),
        ];
        for (path, src, dst, sni, want) in cases {
            assert_eq!(
                allowed(path, src, dst, *sni),
                *want,
                "{path} {src} {dst} {sni:?}"
            );
        }
    }

    #[test]
    fn connection_is_read_only_when_a_policy_needs_it() {
        let a = authz(
            r#"{"policies":[{"action":"ALLOW","rules":[{"to":[{"operation":{"paths":["/a"]}}]}]}]}"#,
        );
        assert!(!a.uses_connection);
        // A policy on ports only reads the destination, and only for the paths it covers.
        let b = authz(
            r#"{"policies":[{"action":"ALLOW","rules":[{"to":[{"operation":{"paths":["/p"],"ports":["80"]}}]}]}]}"#,
        );
        assert!(b.uses_connection);
        let reads = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = reads.clone();
        let mut r = req("GET", "/p");
        r.connection = Connection::new(
            move |a| {
                log.borrow_mut().push(a);
                Some("127.0.0.1:80".into())
            },
            0,
        );
        assert!(b.evaluate(&r, None).allowed);
        assert!(b.evaluate(&r, None).allowed);
        assert_eq!(*reads.borrow(), vec![Attr::Destination]);
    }

    #[test]
    fn bad_peer_values_are_refused_with_path() {
        for (json, path) in [
            (
                r#"{"from":[{"source":{"ip_blocks":["10.0.0.0/8","10.0.0.0/33"]}}]}"#,
                "from[0].source.ip_blocks[1]",
            ),
            (
                r#"{"from":[{"source":{"notRemoteIpBlocks":["x"]}}]}"#,
                "from[0].source.not_remote_ip_blocks[0]",
            ),
            (
                r#"{"to":[{"operation":{"ports":["80","http"]}}]}"#,
                "to[0].operation.ports[1]",
            ),
            (
                r#"{"to":[{"operation":{"not_ports":["70000"]}}]}"#,
                "to[0].operation.not_ports[0]",
            ),
            (
                r#"{"when":[{"key":"destination.port","values":["x"]}]}"#,
                "when[0].values[0]",
            ),
            (
                r#"{"when":[{"key":"remote.ip","not_values":["1.2.3.4/40"]}]}"#,
                "when[0].not_values[0]",
            ),
        ] {
            let raw = serde_json::from_str(&format!(
                r#"{{"policies":[{{"action":"ALLOW","rules":[{json}]}}]}}"#
            ))
            .unwrap();
            let e = compile("authorization", raw).unwrap_err();
            assert_eq!(
                e.path,
                format!("authorization.policies[0].rules[0].{path}"),
                "{json}"
            );
        }
    }

    #[test]
    fn bad_keys_are_refused_with_path() {
        let raw = serde_json::from_str(
            r#"{"policies":[{"action":"ALLOW","rules":[{"when":[{"key":"source.serviceAccount","values":["a/b"]}]}]}]}"#,
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
