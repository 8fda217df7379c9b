//! Which requests need which tokens: Envoy `jwt_authn` rules (first match wins) and the
//! requirement tree they name.

use regex_lite::Regex;

use crate::config::schema::{ConfigError, RawKeyMatcher, RawRequirement, RawRule};
use crate::jwt::issuer_map::IssuerMap;
use crate::policy::path_index::{PathIndex, PathKey};
use crate::policy::string_match::{bounded_match, full_regex, StringMatcher, MAX_REGEX_INPUT};
use crate::request::connection::Attr;
use crate::request::view::Request;

#[derive(Debug)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(Regex),
}

/// A host pattern: exact, or `*.suffix` / `*suffix`; compared without port, ignoring case.
#[derive(Debug, Clone)]
pub enum HostPattern {
    Exact(String),
    Suffix(String),
    Any,
}

impl HostPattern {
    pub fn parse(s: &str) -> Self {
        let s = s.to_ascii_lowercase();
        match s.strip_prefix('*') {
            Some("") => Self::Any,
            Some(rest) => Self::Suffix(rest.to_string()),
            None => Self::Exact(crate::request::view::strip_port(&s).to_string()),
        }
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(h) => host.eq_ignore_ascii_case(h),
            Self::Suffix(sfx) => {
                host.len() > sfx.len()
                    && host
                        .get(host.len() - sfx.len()..)
                        .is_some_and(|t| t.eq_ignore_ascii_case(sfx))
            }
        }
    }
}

/// Envoy's `HeaderMatcher` / `QueryParameterMatcher` (without `invert_match`).
#[derive(Debug)]
pub struct KeyMatcher {
    pub name: String,
    pub test: KeyTest,
}

#[derive(Debug)]
pub enum KeyTest {
    /// The (first, for a query parameter; comma-joined, for a header) value matches.
    Value(StringMatcher),
    /// `present_match`: true when present, or when absent for `false`.
    Present(bool),
}

impl KeyTest {
    fn holds(&self, value: Option<&str>) -> bool {
        match (self, value) {
            // A value too long for its regex counts as matching; `find` refuses such a match.
            (Self::Value(m), Some(v)) => m.matches(v).unwrap_or(true),
            (Self::Value(_), None) => false,
            (Self::Present(want), v) => v.is_some() == *want,
        }
    }
}

/// A `route_metadata` condition: the value under `key` must equal `value`.
#[derive(Debug)]
pub struct MetadataMatch {
    pub key: String,
    pub value: String,
    /// Which of [`RuleSet::route_metadata_keys`] `key` is (set by [`RuleSet::new`]).
    pub slot: u16,
}

#[derive(Debug)]
pub struct RouteMatch {
    pub path: PathMatch,
    pub methods: Option<Vec<String>>,
    pub hosts: Option<Vec<HostPattern>>,
    /// Any of these Envoy route names (`xds.route_name`).
    pub route_names: Option<Vec<String>>,
    /// All of these route metadata values.
    pub route_metadata: Vec<MetadataMatch>,
    pub headers: Vec<KeyMatcher>,
    pub query_parameters: Vec<KeyMatcher>,
}

/// The first value of query parameter `name` in `path_and_query`, as Envoy's route matching
/// reads it (not percent-decoded; a parameter without `=` has the empty value).
fn query_parameter<'a>(path_and_query: &'a str, name: &str) -> Option<&'a str> {
    let query = path_and_query.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

impl RouteMatch {
    pub fn matches(&self, req: &Request) -> bool {
        let path = req.path();
        let path_ok = match &self.path {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            // A path too long for regexes matches every regex rule; `find` refuses it there.
            PathMatch::Regex(r) => bounded_match(r, path).unwrap_or(true),
        };
        path_ok
            && self
                .methods
                .as_ref()
                .is_none_or(|ms| ms.iter().any(|m| m == req.method()))
            && self.hosts.as_ref().is_none_or(|hs| {
                let host = req.host_without_port();
                hs.iter().any(|h| h.matches(host))
            })
            && self.headers.iter().all(|h| {
                let mut values = req.header_values(&h.name).peekable();
                let joined = values.peek().is_some().then(|| values.collect::<Vec<_>>().join(","));
                h.test.holds(joined.as_deref())
            })
            && self
                .query_parameters
                .iter()
                .all(|q| q.test.holds(query_parameter(req.path_and_query(), &q.name)))
            // Route attributes last: they are host calls, made only when all else matched.
            && self.route_names.as_ref().is_none_or(|names| {
                req.connection
                    .get(Attr::RouteName)
                    .is_some_and(|n| names.iter().any(|want| want == n))
            })
            && self.route_metadata.iter().all(|m| {
                req.connection.get(Attr::RouteMetadata(m.slot)) == Some(m.value.as_str())
            })
    }

    /// Whether matching this route left a regex unrun (its input over [`MAX_REGEX_INPUT`]).
    fn unrunnable(&self, req: &Request) -> bool {
        let too_long = |test: &KeyTest, value: Option<&str>| match (test, value) {
            (KeyTest::Value(m), Some(v)) => m.matches(v).is_none(),
            _ => false,
        };
        (req.path().len() > MAX_REGEX_INPUT && matches!(self.path, PathMatch::Regex(_)))
            || self.headers.iter().any(|h| {
                let joined = req.header_values(&h.name).collect::<Vec<_>>().join(",");
                too_long(&h.test, Some(joined.as_str()).filter(|j| !j.is_empty()))
            })
            || self
                .query_parameters
                .iter()
                .any(|q| too_long(&q.test, query_parameter(req.path_and_query(), &q.name)))
    }

    fn uses_route(&self) -> bool {
        self.route_names.is_some() || !self.route_metadata.is_empty()
    }
}

/// What a matched request must present. Providers are indexes into `FilterConfig::providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Provider {
        index: usize,
        /// `provider_and_audiences`: replaces the provider's audiences.
        audiences: Option<Vec<String>>,
    },
    Any {
        children: Vec<Requirement>,
        /// Filled once the providers are known ([`Requirement::index_leaves`]).
        leaves: LeafIndex,
    },
    All(Vec<Requirement>),
    AllowMissing,
    AllowMissingOrFailed,
    /// A browser session of `FilterConfig::oidc[i]`.
    Oidc(usize),
}

/// The provider leaves of a `requires_any`, grouped by where their providers look for tokens
/// and keyed by issuer, so that a token reaches only the leaves whose provider could accept
/// it: with one leaf per tenant, a request costs the same with 1 or 1,000 of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeafIndex {
    pub groups: Vec<LeafGroup>,
    /// Positions of the children that are not provider leaves.
    pub others: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafGroup {
    /// The providers' token-location group (`ProviderIndex::groups`).
    pub group: usize,
    /// The positions of every leaf in the group, ascending.
    pub all: Vec<usize>,
    pub issuers: IssuerMap,
}

impl Requirement {
    pub fn any(children: Vec<Requirement>) -> Self {
        Self::Any {
            children,
            leaves: LeafIndex::default(),
        }
    }

    /// Builds the leaf index of every `requires_any` in the tree, from each provider's issuer
    /// and token-location group.
    pub fn index_leaves(
        &mut self,
        issuer: &dyn Fn(usize) -> Option<String>,
        group: &dyn Fn(usize) -> usize,
    ) {
        match self {
            Self::Any { children, leaves } => {
                let mut index = LeafIndex::default();
                for (pos, child) in children.iter_mut().enumerate() {
                    child.index_leaves(issuer, group);
                    let Self::Provider { index: p, .. } = child else {
                        index.others.push(pos);
                        continue;
                    };
                    let g = group(*p);
                    let slot = match index.groups.iter().position(|lg| lg.group == g) {
                        Some(s) => s,
                        None => {
                            index.groups.push(LeafGroup {
                                group: g,
                                all: Vec::new(),
                                issuers: IssuerMap::default(),
                            });
                            index.groups.len() - 1
                        }
                    };
                    if let Some(lg) = index.groups.get_mut(slot) {
                        lg.all.push(pos);
                        lg.issuers.insert(issuer(*p).as_deref(), pos);
                    }
                }
                *leaves = index;
            }
            Self::All(children) => {
                for c in children {
                    c.index_leaves(issuer, group);
                }
            }
            Self::Provider { .. }
            | Self::AllowMissing
            | Self::AllowMissingOrFailed
            | Self::Oidc(_) => {}
        }
    }
}

#[derive(Debug)]
pub struct Rule {
    pub route: RouteMatch,
    /// `None`: no JWT check for matching requests.
    pub requires: Option<Requirement>,
}

/// The rules in order, indexed by path: finding the first match looks only at the rules
/// whose path matcher could accept the request's path.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    index: PathIndex,
    /// Whether some rule names Envoy routes or route metadata: only then does the host offer
    /// the route's attributes.
    pub uses_route: bool,
    /// The distinct `route_metadata` keys of all rules, by slot.
    pub route_metadata_keys: Vec<String>,
}

impl RuleSet {
    pub fn new(mut rules: Vec<Rule>) -> Self {
        let mut route_metadata_keys: Vec<String> = Vec::new();
        for m in rules.iter_mut().flat_map(|r| &mut r.route.route_metadata) {
            let slot = match route_metadata_keys.iter().position(|k| *k == m.key) {
                Some(s) => s,
                None => {
                    route_metadata_keys.push(m.key.clone());
                    route_metadata_keys.len() - 1
                }
            };
            m.slot = u16::try_from(slot).unwrap_or(u16::MAX);
        }
        let uses_route = rules.iter().any(|r| r.route.uses_route());
        let index = PathIndex::new(rules.len(), |i| match rules.get(i).map(|r| &r.route.path) {
            Some(PathMatch::Exact(p)) => vec![PathKey::Exact(p)],
            Some(PathMatch::Prefix(p)) => vec![PathKey::Prefix(p)],
            Some(PathMatch::Regex(_)) | None => vec![PathKey::Any],
        });
        Self {
            rules,
            index,
            uses_route,
            route_metadata_keys,
        }
    }

    /// The first rule matching the request, if any (Envoy: first match wins). `Err` when the
    /// path is over [`MAX_REGEX_INPUT`] and reaches a regex rule (its other conditions met):
    /// the regex is not run, and skipping the rule could hand the request to a later rule
    /// requiring less, so the request must be refused.
    pub fn find(&self, req: &Request) -> Result<Option<&Rule>, PathTooLong> {
        let path = req.path();
        let found = self
            .index
            .candidates(path)
            .iter()
            .filter_map(|&i| self.rules.get(i))
            .find(|r| r.route.matches(req));
        match found {
            Some(r) if r.route.unrunnable(req) => Err(PathTooLong),
            _ => Ok(found),
        }
    }
}

/// A path over [`MAX_REGEX_INPUT`] reached a regex rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathTooLong;

/// The names a requirement may use: JWT providers and `oidc` entries, by position.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub providers: &'a [&'a str],
    pub oidc: &'a [&'a str],
}

pub fn compile_rule(at: &str, raw: RawRule, names: &Names) -> Result<Rule, ConfigError> {
    let m = raw.route;
    let mut paths = Vec::new();
    if let Some(p) = m.prefix {
        paths.push(PathMatch::Prefix(p));
    }
    if let Some(p) = m.path {
        paths.push(PathMatch::Exact(p));
    }
    if let Some(r) = m.safe_regex {
        paths.push(PathMatch::Regex(full_regex(
            &format!("{at}.match.safe_regex.regex"),
            &r.regex,
        )?));
    }
    if paths.len() != 1 {
        return Err(ConfigError::at(
            format!("{at}.match"),
            "exactly one of prefix, path, safe_regex is required",
        ));
    }
    let path = paths
        .pop()
        .ok_or_else(|| ConfigError::at(format!("{at}.match"), "no path matcher"))?;
    let route_metadata = m.route_metadata.unwrap_or_default();
    let route = RouteMatch {
        path,
        methods: m.methods,
        hosts: m
            .hosts
            .map(|hs| hs.iter().map(|h| HostPattern::parse(h)).collect()),
        route_names: m.route_names,
        route_metadata: route_metadata
            .into_iter()
            .map(|(key, value)| MetadataMatch {
                key,
                value,
                slot: 0,
            })
            .collect(),
        headers: key_matchers(&format!("{at}.match.headers"), m.headers, true)?,
        query_parameters: key_matchers(
            &format!("{at}.match.query_parameters"),
            m.query_parameters,
            false,
        )?,
    };
    let requires = match raw.requires {
        None => None,
        Some(r) => Some(compile_requirement(&format!("{at}.requires"), r, names)?),
    };
    Ok(Rule { route, requires })
}

/// `headers` (names compared lowercase) or `query_parameters` (names as they are).
fn key_matchers(
    at: &str,
    raw: Option<Vec<RawKeyMatcher>>,
    lowercase: bool,
) -> Result<Vec<KeyMatcher>, ConfigError> {
    let mut out = Vec::new();
    for (i, k) in raw.unwrap_or_default().into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        if k.name.is_empty() {
            return Err(ConfigError::at(format!("{at}.name"), "must not be empty"));
        }
        let test = match (k.string_match, k.present_match) {
            (Some(m), None) => {
                KeyTest::Value(StringMatcher::compile(&format!("{at}.string_match"), m)?)
            }
            (None, Some(p)) => KeyTest::Present(p),
            _ => {
                return Err(ConfigError::at(
                    at,
                    "exactly one of string_match, present_match is required",
                ))
            }
        };
        let name = if lowercase {
            k.name.to_ascii_lowercase()
        } else {
            k.name
        };
        out.push(KeyMatcher { name, test });
    }
    Ok(out)
}

fn provider(at: &str, name: &str, providers: &[&str]) -> Result<usize, ConfigError> {
    providers
        .iter()
        .position(|p| *p == name)
        .ok_or_else(|| ConfigError::at(at, format!("unknown provider {name:?}")))
}

fn compile_requirement(
    at: &str,
    raw: RawRequirement,
    names: &Names,
) -> Result<Requirement, ConfigError> {
    let providers = names.providers;
    Ok(match raw {
        RawRequirement::ProviderName(name) => Requirement::Provider {
            index: provider(&format!("{at}.provider_name"), &name, providers)?,
            audiences: None,
        },
        RawRequirement::ProviderAndAudiences(pa) => Requirement::Provider {
            index: provider(
                &format!("{at}.provider_and_audiences.provider_name"),
                &pa.provider_name,
                providers,
            )?,
            audiences: Some(pa.audiences),
        },
        RawRequirement::RequiresAny(list) => Requirement::any(compile_list(
            &format!("{at}.requires_any"),
            list.requirements,
            names,
        )?),
        RawRequirement::RequiresAll(list) => Requirement::All(compile_list(
            &format!("{at}.requires_all"),
            list.requirements,
            names,
        )?),
        RawRequirement::AllowMissing(_) => Requirement::AllowMissing,
        RawRequirement::AllowMissingOrFailed(_) => Requirement::AllowMissingOrFailed,
        RawRequirement::Oidc(name) => {
            Requirement::Oidc(names.oidc.iter().position(|n| *n == name).ok_or_else(|| {
                ConfigError::at(format!("{at}.oidc"), format!("unknown oidc entry {name:?}"))
            })?)
        }
    })
}

fn compile_list(
    at: &str,
    list: Vec<RawRequirement>,
    names: &Names,
) -> Result<Vec<Requirement>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::at(
            format!("{at}.requirements"),
            "must list at least one requirement",
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, r)| compile_requirement(&format!("{at}.requirements[{i}]"), r, names))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::policy::path_index::testing::{random_path, Rng};
    use crate::request::connection::Connection;

    fn req(method: &str, path: &str, host: &str) -> Request {
        Request::new(vec![
            (":method".into(), method.into()),
            (":path".into(), path.into()),
            (":authority".into(), host.into()),
        ])
    }

    fn rule(json: &str) -> Result<Rule, ConfigError> {
        compile_rule(
            "rules[0]",
            serde_json::from_str(json).unwrap(),
            &Names {
                providers: &["a", "b"],
                oidc: &["web"],
            },
        )
    }

    #[test]
    fn route_matching() {
        let r = rule(r#"{"match":{"prefix":"/api","methods":["GET"],"hosts":["*.example.com"]}}"#)
            .unwrap();
        assert!(r
            .route
            .matches(&req("GET", "/api/x?q", "svc.example.com:8080")));
        assert!(!r.route.matches(&req("POST", "/api/x", "svc.example.com")));
        assert!(!r.route.matches(&req("GET", "/apx", "svc.example.com")));
        assert!(!r.route.matches(&req("GET", "/api", "example.com")));
        let r = rule(r#"{"match":{"path":"/exact"}}"#).unwrap();
        assert!(r.route.matches(&req("GET", "/exact?x=1", "h")));
        assert!(!r.route.matches(&req("GET", "/exact/", "h")));
        let r = rule(r#"{"match":{"safe_regex":{"regex":"/v[0-9]+/.*"}}}"#).unwrap();
        assert!(r.route.matches(&req("GET", "/v2/x", "h")));
        assert!(!r.route.matches(&req("GET", "/a/v2/x", "h")));
        let r = rule(r#"{"match":{"prefix":"/","hosts":["SVC2.example.com"]}}"#).unwrap();
        assert!(r.route.matches(&req("GET", "/", "svc2.EXAMPLE.com:443")));
    }

    #[test]
    fn headers_query_parameters_and_route_attributes() {
        let r = rule(
            r#"{"match":{"prefix":"/","headers":[{"name":"X-Env","string_match":{"prefix":"prod"}},
                {"name":"x-flag","present_match":false}],
                "query_parameters":[{"name":"debug","present_match":true},{"name":"v","string_match":{"exact":"2"}}]}}"#,
        )
        .unwrap();
        let with = |headers: &[(&str, &str)], path: &str| {
            let mut h = vec![(":path".to_string(), path.to_string())];
            h.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
            r.route.matches(&Request::new(h))
        };
        assert!(with(&[("x-env", "prod-1")], "/a?debug&v=2"));
        assert!(with(&[("x-env", "prod-1")], "/a?v=2&debug=0"));
        assert!(!with(&[("x-env", "dev")], "/a?debug&v=2"));
        assert!(!with(&[("x-env", "prod"), ("x-flag", "")], "/a?debug&v=2"));
        assert!(!with(&[("x-env", "prod")], "/a?debugx&v=2"));
        assert!(!with(&[("x-env", "prod")], "/a?debug&v=2x"));
        assert!(!with(&[("x-env", "prod")], "/a?debug&V=2"));
        // Several values of a header are matched joined by commas, as Envoy does.
        assert!(with(&[("x-env", "prod"), ("x-env", "dev")], "/a?debug&v=2"));
        assert!(!with(
            &[("x-env", "dev"), ("x-env", "prod")],
            "/a?debug&v=2"
        ));

        let set = RuleSet::new(vec![
            rule(r#"{"match":{"prefix":"/","route_names":["admin","ops"]}}"#).unwrap(),
            rule(r#"{"match":{"prefix":"/","route_metadata":{"tier":"gold","team":"a"}}}"#)
                .unwrap(),
            rule(r#"{"match":{"prefix":"/","route_metadata":{"team":"b"}}}"#).unwrap(),
        ]);
        assert!(set.uses_route);
        assert_eq!(set.route_metadata_keys, vec!["team", "tier"]);
        let on = |name: Option<&'static str>, team: Option<&'static str>| {
            let mut req = Request::new(vec![(":path".into(), "/".into())]);
            req.connection = Connection::new(
                move |a| match a {
                    Attr::RouteName => name.map(String::from),
                    Attr::RouteMetadata(0) => team.map(String::from),
                    Attr::RouteMetadata(1) => Some("gold".into()),
                    _ => None,
                },
                2,
            );
            set.find(&req)
                .unwrap()
                .and_then(|f| set.rules.iter().position(|r| std::ptr::eq(r, f)))
        };
        assert_eq!(on(Some("ops"), None), Some(0));
        assert_eq!(on(Some("web"), Some("a")), Some(1));
        assert_eq!(on(None, Some("b")), Some(2));
        assert_eq!(on(None, Some("c")), None);
        assert!(!RuleSet::new(vec![rule(r#"{"match":{"prefix":"/"}}"#).unwrap()]).uses_route);
        let e = rule(r#"{"match":{"prefix":"/","headers":[{"name":"x","present_match":true,"string_match":{"exact":"a"}}]}}"#)
            .unwrap_err();
        assert_eq!(e.path, "rules[0].match.headers[0]");
        let e = rule(r#"{"match":{"prefix":"/","query_parameters":[{"name":"x","string_match":{"safe_regex":{"regex":"("}}}]}}"#)
            .unwrap_err();
        assert_eq!(
            e.path,
            "rules[0].match.query_parameters[0].string_match.safe_regex.regex"
        );
    }

    #[test]
    fn the_index_finds_the_rule_a_linear_walk_finds() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0;
        for _ in 0..300 {
            let mut rules = Vec::new();
            for _ in 0..1 + rng.below(12) {
                let path = random_path(&mut rng);
                let mut m = match rng.below(4) {
                    0 => serde_json::json!({"path": path}),
                    1 => serde_json::json!({"safe_regex": {"regex": format!("{path}.*")}}),
                    _ => serde_json::json!({"prefix": path.trim_end_matches('/')}),
                };
                if rng.below(3) == 0 {
                    m["methods"] = serde_json::json!([rng.pick(&["GET", "POST"])]);
                }
                if rng.below(3) == 0 {
                    m["hosts"] = serde_json::json!([rng.pick(&["a.test", "*.test"])]);
                }
                let raw = serde_json::from_value(serde_json::json!({"match": m})).unwrap();
                rules.push(
                    compile_rule(
                        "rules[0]",
                        raw,
                        &Names {
                            providers: &[],
                            oidc: &[],
                        },
                    )
                    .unwrap(),
                );
            }
            let set = RuleSet::new(rules);
            for _ in 0..20 {
                let query = if rng.below(2) == 0 { "?q=/a" } else { "" };
                let r = req(
                    rng.pick(&["GET", "POST"]),
                    &format!("{}{query}", random_path(&mut rng)),
                    rng.pick(&["a.test", "b.test", "other"]),
                );
                let linear = set.rules.iter().position(|rule| rule.route.matches(&r));
                let indexed = set
                    .find(&r)
                    .unwrap()
                    .and_then(|found| set.rules.iter().position(|rule| std::ptr::eq(rule, found)));
                assert_eq!(indexed, linear, "{:?} {:?}", r.path_and_query(), set.rules);
                compared += usize::from(linear.is_some());
            }
        }
        // Enough requests matched some rule for the comparison to mean something.
        assert!(compared > 1000, "{compared}");
    }

    #[test]
    fn requirement_errors_name_the_path() {
        let e = rule(r#"{"match":{"prefix":"/"},"requires":{"requires_any":{"requirements":[{"provider_name":"a"},{"provider_name":"zz"}]}}}"#)
            .unwrap_err();
        assert_eq!(
            e.path,
            "rules[0].requires.requires_any.requirements[1].provider_name"
        );
        let e = rule(r#"{"match":{"prefix":"/","path":"/x"}}"#).unwrap_err();
        assert_eq!(e.path, "rules[0].match");
        let e = rule(r#"{"match":{"safe_regex":{"regex":"(["}}}"#).unwrap_err();
        assert_eq!(e.path, "rules[0].match.safe_regex.regex");
    }

    #[test]
    fn header_and_query_regexes_too_long_to_run_refuse_the_request() {
        let set = RuleSet::new(vec![
            rule(
                r#"{"match": {"prefix": "/", "headers": [{"name": "x-env",
                "string_match": {"safe_regex": {"regex": "prod-[a-z]+"}}}]}}"#,
            )
            .unwrap(),
            rule(
                r#"{"match": {"prefix": "/", "query_parameters": [{"name": "q",
                "string_match": {"safe_regex": {"regex": "a+"}}}]}}"#,
            )
            .unwrap(),
            rule(r#"{"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}"#).unwrap(),
        ]);
        let long = "x".repeat(MAX_REGEX_INPUT + 1);
        let mut r = req("GET", "/", "h");
        r = Request::new(
            r.headers
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .chain([("x-env".to_string(), long.clone())])
                .collect(),
        );
        // Skipping the first rule would fall through to one requiring a token: refused instead.
        assert_eq!(set.find(&r).err(), Some(PathTooLong));
        let q = req("GET", &format!("/?q={long}"), "h");
        assert_eq!(set.find(&q).err(), Some(PathTooLong));
        let short = req("GET", "/?q=b", "h");
        assert!(std::ptr::eq(
            set.find(&short).unwrap().unwrap(),
            &set.rules[2]
        ));
    }
}
