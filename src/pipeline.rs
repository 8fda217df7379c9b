//! The order of work for one request, with no host in sight: CORS, header sanitizing, rule
//! match, authentication, authorization, then the edits for the upstream request; and what
//! the request tells the rest of Envoy (filter state, the AUDIT and dry-run report).

use std::rc::Rc;

use crate::authn::authenticator::{Authenticator, Keys, Limit, VerifiedToken};
use crate::config::{FilterConfig, Routing};
use crate::jwt::claims;
use crate::jwt::error::AuthError;
use crate::jwt::token::Jwt;
use crate::login::callback::{self, Begin, Exchange};
use crate::login::refresh::{self, Refresh};
use crate::login::{answer, identity};
use crate::oidc::cookies;
use crate::oidc::random::Random;
use crate::oidc::session::Opened;
use crate::policy::authz::{Action, AuthzResult, Identity};
use crate::policy::cors::CorsDecision;
use crate::policy::rules::PathTooLong;
use crate::reply::{self, LocalReply};
use crate::request::extractor;
use crate::request::view::{Request, RequestEdits};
use crate::stats::{self, Counter, OidcCounter, Tally};

#[derive(Debug)]
pub enum Decision {
    /// Answer locally; the request never reaches the upstream.
    Reply(LocalReply),
    /// Forward the request after applying these edits.
    Continue(RequestEdits),
    /// A login callback: exchange its code at the token endpoint, then
    /// [`callback::finish`] answers.
    Exchange(Box<Exchange>),
    /// The session's access token is about to expire: refresh it, then evaluate again with
    /// the renewed session ([`refresh::with_session`]).
    Refresh(Box<Refresh>),
}

#[derive(Debug)]
pub struct Outcome {
    pub decision: Decision,
    /// CORS headers for the upstream's response (already inside a local reply).
    pub response_headers: Vec<(String, String)>,
    /// Why the request was refused, or which per-request bound cut its checks short, for a
    /// debug log line.
    pub reason: Option<String>,
    /// When refused: remote key sets that could not serve a token (see
    /// [`Authenticator::jwks_misses`]); waiting for a fetch may change the answer.
    pub jwks_misses: Vec<(usize, AuthError)>,
    /// The counters this request moves (the token cache counts its own hits and misses).
    pub tally: Tally,
    /// An `oidc` entry's counter this request moves.
    pub oidc_event: Option<(usize, OidcCounter)>,
    /// A line worth a warning (a session trimmed to fit its cookies).
    pub warning: Option<String>,
    /// Whom the request was decided for.
    pub who: Option<Who>,
    /// What authorization found, when it ran.
    pub authz: Option<AuthzResult>,
    /// Filter state to set (`filter_state: true` and a decided request): name, value.
    pub filter_state: Vec<(&'static str, String)>,
    /// An info line about matching AUDIT or dry-run policies (the host rate-limits them).
    pub notice: Option<String>,
}

/// The identity a request was decided with.
#[derive(Debug, Clone)]
pub enum Who {
    /// The first verified token, and the provider that verified it.
    Token { provider: usize, jwt: Rc<Jwt> },
    /// A browser session of `oidc` entry `entry`.
    Session { entry: usize, opened: Rc<Opened> },
}

impl Who {
    pub fn jwt(&self) -> &Jwt {
        match self {
            Self::Token { jwt, .. } => jwt,
            Self::Session { opened, .. } => &opened.jwt,
        }
    }

    /// The provider's name; for a session, its key provider's (`oidc.<name>`).
    pub fn provider<'c>(&self, cfg: &'c FilterConfig) -> Option<&'c str> {
        let i = match self {
            Self::Token { provider, .. } => *provider,
            Self::Session { entry, .. } => cfg.oidc.get(*entry)?.keys,
        };
        cfg.providers.get(i).map(|p| p.name.as_str())
    }

    /// `<iss>/<sub>`, when both are present.
    pub fn principal(&self) -> Option<String> {
        let jwt = self.jwt();
        match (jwt.iss.as_deref(), jwt.sub.as_deref()) {
            (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => Some(format!("{i}/{s}")),
            _ => None,
        }
    }
}

/// Filter state names: Envoy shows each as `%FILTER_STATE(wasm.<name>:PLAIN)%`.
pub const STATE_PRINCIPAL: &str = "jwt_authz.principal";
pub const STATE_PROVIDER: &str = "jwt_authz.provider";
pub const STATE_CLAIMS: &str = "jwt_authz.claims";
pub const STATE_RESULT: &str = "jwt_authz.result";
pub const STATE_POLICIES: &str = "jwt_authz.policies";
pub const STATE_DRY_RUN: &str = "jwt_authz.dry_run_result";

impl Outcome {
    fn reply(reply: LocalReply, reason: Option<String>, tally: Tally) -> Self {
        Self {
            decision: Decision::Reply(reply),
            response_headers: Vec::new(),
            reason,
            jwks_misses: Vec::new(),
            tally,
            oidc_event: None,
            warning: None,
            who: None,
            authz: None,
            filter_state: Vec::new(),
            notice: None,
        }
    }
}

fn with_cors(mut reply: LocalReply, cors: &[(String, String)]) -> LocalReply {
    reply.headers.extend(cors.iter().cloned());
    reply
}

/// Runs the filter on a request. `may_refresh` is false when the request comes back from a
/// session refresh, which must not start another.
pub fn on_request_headers<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    req: &Request,
    now: u64,
    rng: &mut dyn Random,
    may_refresh: bool,
) -> Outcome {
    let mut out = decide(cfg, keys, req, now, rng, may_refresh);
    report(cfg, req, &mut out);
    out
}

/// The AUDIT and dry-run line, and the filter state when asked for. Nothing to do (and no
/// allocation) for a request that no AUDIT or dry-run policy concerns, without filter state.
fn report(cfg: &FilterConfig, req: &Request, out: &mut Outcome) {
    let authz = cfg.authorization.as_ref();
    let policies = || match (authz, &out.authz) {
        (Some(a), Some(r)) if !r.matched.is_empty() => Some(a.names(&r.matched)),
        _ => None,
    };
    let dry_run = out.authz.as_ref().and_then(|r| r.dry_run);
    let dry_run_code = |allowed: bool| {
        if allowed {
            Counter::Allowed.name()
        } else {
            Counter::DeniedAuthorization.name()
        }
    };
    if let (Some(a), Some(r)) = (authz, &out.authz) {
        let noted = r.matched.iter().any(|&i| {
            a.policies
                .get(i)
                .is_some_and(|p| p.dry_run || p.action == Action::Audit)
        });
        let dry_run_differs = dry_run.is_some_and(|d| d.allowed != r.allowed);
        if noted || dry_run_differs {
            let mut line = format!(
                "{} {}: policies [{}] matched; principal {}; result {}",
                req.method(),
                req.path(),
                policies().unwrap_or_default(),
                out.who
                    .as_ref()
                    .and_then(Who::principal)
                    .unwrap_or_else(|| "-".into()),
                stats::result_code(out.tally).unwrap_or("-"),
            );
            if let Some(d) = dry_run {
                line.push_str(&format!("; dry run: {}", dry_run_code(d.allowed)));
                if !d.allowed {
                    let by = d.decided_by.and_then(|i| a.policies.get(i));
                    line.push_str(&match by {
                        Some(p) => format!(" by {}", p.name),
                        None => " (no ALLOW policy matched)".to_string(),
                    });
                }
            }
            out.notice = Some(line);
        }
    }
    if !cfg.filter_state {
        return;
    }
    let Some(result) = stats::result_code(out.tally) else {
        return;
    };
    let mut state = vec![(STATE_RESULT, result.to_string())];
    if let Some(who) = &out.who {
        if let Some(p) = who.principal() {
            state.push((STATE_PRINCIPAL, p));
        }
        if let Some(p) = who.provider(cfg) {
            state.push((STATE_PROVIDER, p.to_string()));
        }
        if let Ok(claims) = serde_json::to_string(&who.jwt().payload) {
            state.push((STATE_CLAIMS, claims));
        }
    }
    if let Some(p) = policies() {
        state.push((STATE_POLICIES, p));
    }
    if let Some(d) = dry_run {
        state.push((STATE_DRY_RUN, dry_run_code(d.allowed).to_string()));
    }
    out.filter_state = state;
}

fn decide<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    req: &Request,
    now: u64,
    rng: &mut dyn Random,
    may_refresh: bool,
) -> Outcome {
    let mut tally = Tally::default();
    let preflight =
        |r, tally: Tally| Outcome::reply(r, None, tally.with(Counter::CorsPreflightAnswered));
    let cors = match cfg.cors.as_ref().map(|c| c.decide(req)) {
        Some(CorsDecision::Reply(r)) => return preflight(r, tally),
        Some(CorsDecision::Rejected(reply)) => {
            tally.add(Counter::CorsOriginRejected);
            match reply {
                Some(r) => return preflight(r, tally),
                None => Vec::new(),
            }
        }
        Some(CorsDecision::AddToResponse(h)) => h,
        Some(CorsDecision::None) | None => Vec::new(),
    };
    let refuse =
        |tally: Tally, reply: LocalReply, reason: String, jwks_misses, why: Counter| Outcome {
            decision: Decision::Reply(with_cors(reply, &cors)),
            response_headers: Vec::new(),
            reason: Some(reason),
            jwks_misses,
            tally: tally.with(Counter::Denied).with(why),
            oidc_event: None,
            warning: None,
            who: None,
            authz: None,
            filter_state: Vec::new(),
            notice: None,
        };

    let mut edits = RequestEdits::default();
    for name in &cfg.sanitized_headers {
        if req.header(name).is_some() {
            edits.remove(name);
        }
    }
    // The request's cookies, parsed once for stripping ours and reading the session.
    let mut present = Vec::new();
    if !cfg.oidc.is_empty() {
        if let Some(outcome) = login_paths(cfg, keys, req, now, &cors) {
            return outcome;
        }
        present = cookies::request_cookies(req);
        let bases = cfg
            .oidc
            .iter()
            .map(|o| o.provider.session.cookie.name.as_str());
        cookies::strip_all(req, &present, bases, &mut edits);
    }

    let requirement = match &cfg.routing {
        Routing::Everything(r) => Some(r),
        Routing::Rules(rs) => match rs.find(req) {
            Ok(rule) => rule.and_then(|r| r.requires.as_ref()),
            Err(PathTooLong) => {
                return Outcome::reply(reply::path_too_long(), None, tally.with(Counter::Denied))
            }
        },
    };
    let mut limited = None;
    let mut session = None;
    // Session cookies a sliding session renews; they go on the response after the CORS headers.
    let mut set_cookies = Vec::new();
    let verified = match requirement {
        None => Vec::new(),
        Some(r) => {
            let mut auth = Authenticator::new(cfg, req, keys, now);
            if !cfg.oidc.is_empty() {
                auth.use_cookies(&present);
            }
            let result = auth.evaluate(r);
            limited = auth.limit().map(|l| limit_note(cfg, l));
            if limited.is_some() {
                tally.add(Counter::LimitReached);
            }
            if let (Err(AuthError::Missing), Some(i)) = (&result, auth.login_needed()) {
                let why = match auth.session(i) {
                    Ok(_) => crate::oidc::session::NoSession::Absent,
                    Err(w) => w,
                };
                return no_session(cfg, keys, req, i, why, now, rng, tally, &cors);
            }
            if let (Ok(_), Some(i)) = (&result, auth.session_used()) {
                let (Some(login), Ok(s)) = (cfg.oidc.get(i), auth.session(i)) else {
                    return refuse(
                        tally,
                        answer::login_required(),
                        "session vanished".into(),
                        Vec::new(),
                        Counter::DeniedMissing,
                    );
                };
                if !answer::same_site(login, req, cfg.cors.as_ref()) {
                    return refuse(
                        tally,
                        answer::cross_site_refused(),
                        format!(
                            "oidc {}: cross-site {} refused",
                            login.provider.name,
                            req.method()
                        ),
                        Vec::new(),
                        Counter::DeniedAuthorization,
                    );
                }
                if may_refresh && refresh::due(&s.session, now) {
                    if let Some(r) = keys
                        .discovery(login.keys)
                        .and_then(|d| refresh::begin(login, i, &s.session, &d))
                    {
                        let mut out = Outcome::reply(answer::login_required(), None, tally);
                        out.decision = Decision::Refresh(Box::new(r));
                        out.response_headers = cors;
                        return out;
                    }
                }
                if s.session.should_slide(&login.provider.session, now) {
                    let mut slid = s.session.clone();
                    slid.last_use = now;
                    if let Ok(stored) =
                        crate::oidc::session::store(&login.provider, &slid, now, &present, rng)
                    {
                        set_cookies.extend(
                            stored
                                .set_cookies
                                .into_iter()
                                .map(|c| ("set-cookie".to_string(), c)),
                        );
                    }
                }
                session = Some((i, s));
            }
            match result {
                Ok(v) => v,
                Err(e) => {
                    let mut why = format!("jwt {}: {}", e.code(), e.message());
                    if let Some(note) = &limited {
                        why = format!("{why} ({note})");
                    }
                    return refuse(
                        tally,
                        reply::auth_failure(e, req, cfg.jwks_unavailable_status),
                        why,
                        auth.jwks_misses().to_vec(),
                        Counter::denied_by(e),
                    );
                }
            }
        }
    };

    let session_jwt = session
        .as_ref()
        .filter(|_| verified.is_empty())
        .map(|(_, s)| &s.jwt);
    let who = match (verified.first(), &session) {
        (Some(v), _) => Some(Who::Token {
            provider: v.provider,
            jwt: v.jwt.clone(),
        }),
        (None, Some((i, s))) => Some(Who::Session {
            entry: *i,
            opened: s.clone(),
        }),
        (None, None) => None,
    };
    let mut authz_result = None;
    if let Some(authz) = &cfg.authorization {
        let identity = match (verified.first(), &session_jwt) {
            (Some(v), _) => cfg.providers.get(v.provider).map(|p| Identity {
                jwt: &v.jwt,
                space_delimited: &p.space_delimited_claims,
            }),
            (None, Some(jwt)) => Some(Identity {
                jwt,
                space_delimited: &DEFAULT_SPACE_DELIMITED,
            }),
            (None, None) => None,
        };
        let result = authz.evaluate(req, identity.as_ref());
        if !result.allowed {
            let by = result
                .decided_by
                .and_then(|i| authz.policies.get(i))
                .map(|p| p.name.as_str());
            let mut out = refuse(
                tally,
                reply::rbac_denied(by),
                match by {
                    Some(name) => format!("authorization denied by {name}"),
                    None => "authorization denied: no ALLOW policy matched".to_string(),
                },
                Vec::new(),
                Counter::DeniedAuthorization,
            );
            out.who = who;
            out.authz = Some(result);
            return out;
        }
        if result.dry_run.is_some_and(|d| !d.allowed) {
            tally.add(Counter::DryRunDenied);
        }
        authz_result = Some(result);
    }

    for v in &verified {
        apply_token(cfg, req, v, &mut edits);
    }
    if let (Some((i, s)), Some(jwt)) = (&session, &session_jwt) {
        if let Some(login) = cfg.oidc.get(*i) {
            identity::edits(login, &s.session, jwt, &mut edits);
        }
    }
    let mut response_headers = cors;
    response_headers.append(&mut set_cookies);
    Outcome {
        decision: Decision::Continue(edits),
        response_headers,
        reason: limited,
        jwks_misses: Vec::new(),
        tally: tally.with(Counter::Allowed),
        oidc_event: None,
        warning: None,
        who,
        authz: authz_result,
        filter_state: Vec::new(),
        notice: None,
    }
}

/// Claims split on spaces for a session's identity, as for providers by default.
const DEFAULT_SPACE_DELIMITED: [String; 0] = [];

/// The callback and logout paths of the `oidc` entries: answered by the filter, never
/// forwarded.
fn login_paths<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    req: &Request,
    now: u64,
    cors: &[(String, String)],
) -> Option<Outcome> {
    let path = req.path();
    for (i, login) in cfg.oidc.iter().enumerate() {
        let p = &login.provider;
        let discovery = || keys.discovery(login.keys);
        if path == p.callback_path() {
            let present = cookies::request_cookies(req);
            let d = discovery();
            let mut out = match callback::begin(
                login,
                i,
                req.path_and_query(),
                d.as_deref(),
                &present,
                now,
            ) {
                Begin::Exchange(ex) => {
                    let mut out = Outcome::reply(answer::login_failed(401), None, Tally::default());
                    out.decision = Decision::Exchange(ex);
                    return Some(out);
                }
                Begin::Refused(why) => {
                    let mut out = Outcome::reply(
                        with_cors(answer::login_failed(401), cors),
                        Some(why),
                        Tally::default().with(Counter::Denied),
                    );
                    out.oidc_event = Some((i, OidcCounter::LoginFailed));
                    out
                }
                Begin::NoDiscovery => {
                    let mut out = Outcome::reply(
                        with_cors(answer::unavailable(), cors),
                        Some(format!("oidc {}: discovery has not succeeded yet", p.name)),
                        Tally::default().with(Counter::Denied),
                    );
                    out.jwks_misses = vec![(login.keys, AuthError::JwksFetchFail)];
                    out
                }
            };
            out.response_headers = Vec::new();
            return Some(out);
        }
        let is_logout = p.logout.as_ref().is_some_and(|l| l.path == path)
            && matches!(req.method(), "GET" | "POST");
        if is_logout {
            let present = cookies::request_cookies(req);
            let session = crate::oidc::session::load(p, &present, now).ok();
            let d = discovery();
            let (reply, event) = answer::logout(
                login,
                req,
                session.as_ref(),
                d.as_deref(),
                &present,
                cfg.cors.as_ref(),
            );
            let mut out = Outcome::reply(with_cors(reply, cors), None, Tally::default());
            out.oidc_event = event.map(|e| (i, e));
            return Some(out);
        }
    }
    None
}

/// A requirement failed for want of the session of `oidc` entry `i`: a login or `Login
/// required` (or 503 until discovery succeeds, which the host may wait for).
#[allow(clippy::too_many_arguments)]
fn no_session<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    req: &Request,
    i: usize,
    why: crate::oidc::session::NoSession,
    now: u64,
    rng: &mut dyn Random,
    tally: Tally,
    cors: &[(String, String)],
) -> Outcome {
    let Some(login) = cfg.oidc.get(i) else {
        return Outcome::reply(answer::login_required(), None, tally);
    };
    let present = cookies::request_cookies(req);
    let d = keys.discovery(login.keys);
    let a = answer::no_session(login, req, d.as_deref(), &present, why, now, rng);
    let mut out = Outcome::reply(
        with_cors(a.reply, cors),
        Some(a.reason),
        tally.with(Counter::Denied).with(Counter::DeniedMissing),
    );
    out.oidc_event = a.event.map(|e| (i, e));
    if a.needs_discovery {
        out.jwks_misses = vec![(login.keys, AuthError::JwksFetchFail)];
    }
    out
}

fn limit_note(cfg: &FilterConfig, limit: Limit) -> String {
    match limit {
        Limit::Tokens => format!(
            "more than max_tokens_per_request ({}) tokens: the rest failed unverified",
            cfg.max_tokens_per_request
        ),
        Limit::SignatureChecks => format!(
            "max_signature_checks_per_request ({}) spent: keys left untried, tokens failed",
            cfg.max_signature_checks_per_request
        ),
        Limit::TokenSize(n) => format!(
            "token of {n} bytes over max_token_size ({})",
            cfg.max_token_size
        ),
    }
}

/// Upstream edits for one verified token: payload and claim headers, token removal.
fn apply_token(cfg: &FilterConfig, req: &Request, v: &VerifiedToken, edits: &mut RequestEdits) {
    let Some(p) = cfg.providers.get(v.provider) else {
        return;
    };
    if !p.forward {
        extractor::remove_token(req, v.location, edits);
    }
    if let Some(h) = &p.forward_payload_header {
        let mut value = v.jwt.payload_b64.clone();
        if p.pad_forward_payload_header {
            while !value.len().is_multiple_of(4) {
                value.push('=');
            }
        }
        edits.set(h, value);
    }
    for c in &p.claim_to_headers {
        if let Some(value) = claims::lookup(&v.jwt.payload, &c.path).and_then(claims::header_value)
        {
            edits.set(&c.header, value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::cookies::{session, SessionSpec};
    use crate::login::testing::{fixture, request, Fixture, NOW};
    use crate::oidc::random::HostRandom;

    fn run(f: &Fixture, req: &Request) -> Outcome {
        on_request_headers(&f.cfg, &f.keys, req, NOW, &mut HostRandom, true)
    }

    fn reply(o: &Outcome) -> &LocalReply {
        match &o.decision {
            Decision::Reply(r) => r,
            d => panic!("not a reply: {d:?}"),
        }
    }

    fn header<'a>(r: &'a LocalReply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn cookie(f: &Fixture, access: Option<&str>) -> String {
        let claims = json!({"sub": "alice", "email": "alice@example.com", "aud": "gateway"});
        let spec = SessionSpec {
            access_token: access.map(str::to_string),
            access_expires_at: Some(NOW + 3600),
            refresh_token: None,
        };
        session(
            &f.cfg,
            "web",
            claims.as_object().unwrap().clone(),
            spec,
            NOW,
        )
        .unwrap()
    }

    const HTML: (&str, &str) = ("accept", "text/html");

    #[test]
    fn without_a_session_navigations_log_in_and_the_rest_get_401() {
        let f = fixture(json!([{"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]));
        let nav = run(&f, &request("GET", "/orders?x=1", &[HTML]));
        let r = reply(&nav);
        assert_eq!(r.status, 302);
        let location = header(r, "location").unwrap();
        assert!(location.starts_with("https://idp.example/auth?response_type=code"));
        assert!(location.contains("code_challenge_method=S256"));
        assert!(header(r, "set-cookie").unwrap().starts_with("web.f-"));
        assert_eq!(nav.oidc_event, Some((0, OidcCounter::LoginStarted)));
        let api = run(
            &f,
            &request(
                "GET",
                "/orders",
                &[("accept", "*/*"), ("origin", "https://spa.example")],
            ),
        );
        let r = reply(&api);
        assert_eq!((r.status, r.body.as_str()), (401, "Login required"));
        assert_eq!(
            header(r, "access-control-allow-origin"),
            Some("https://spa.example")
        );
        let xhr = run(
            &f,
            &request("GET", "/", &[HTML, ("x-requested-with", "XMLHttpRequest")]),
        );
        assert_eq!(reply(&xhr).status, 401);
    }

    #[test]
    fn a_session_passes_with_its_claims_and_token_and_its_cookies_stripped() {
        let f = fixture(json!([{"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]));
        let c = format!("{}; theme=dark", cookie(&f, Some("at-1")));
        let out = run(
            &f,
            &request("GET", "/orders", &[("cookie", &c), ("x-email", "spoof")]),
        );
        let Decision::Continue(edits) = &out.decision else {
            panic!("{:?}", out.decision)
        };
        let set = |n: &str| {
            edits
                .set
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(set("x-email"), Some("alice@example.com"));
        assert_eq!(set("authorization"), Some("Bearer at-1"));
        assert_eq!(set("cookie"), Some("theme=dark"));
        // A session without an access token: a client's own Authorization never passes.
        let c = cookie(&f, None);
        let out = run(
            &f,
            &request(
                "GET",
                "/",
                &[("cookie", &c), ("authorization", "Bearer forged")],
            ),
        );
        let Decision::Continue(edits) = &out.decision else {
            panic!()
        };
        assert!(edits.remove.contains(&"authorization".to_string()));
    }

    #[test]
    fn filter_state_and_the_audit_line_report_the_decision() {
        let mut f = fixture(json!([{"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]));
        let c = cookie(&f, Some("at"));
        let get = |f: &Fixture, path: &str| run(f, &request("GET", path, &[("cookie", &c)]));
        // Not asked for: no filter state, no line.
        let out = get(&f, "/");
        assert!(out.filter_state.is_empty() && out.notice.is_none());
        f.cfg.filter_state = true;
        f.cfg.authorization = Some(
            crate::policy::authz::compile(
                "authorization",
                serde_json::from_value(json!({"policies": [
                    {"name": "audit", "action": "AUDIT", "rules": [{}]},
                    {"name": "no-admin", "action": "DENY", "dry_run": true,
                     "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]},
                    {"name": "users", "action": "ALLOW",
                     "rules": [{"when": [{"key": "request.auth.claims[sub]", "values": ["alice"]}]}]}
                ]}))
                .unwrap(),
            )
            .unwrap(),
        );
        let out = get(&f, "/admin");
        assert!(matches!(out.decision, Decision::Continue(_)));
        let state: std::collections::BTreeMap<_, _> = out.filter_state.iter().cloned().collect();
        assert_eq!(state[STATE_RESULT], "allowed");
        assert_eq!(
            state[STATE_PRINCIPAL],
            format!("{}/alice", crate::login::testing::ISS)
        );
        assert_eq!(state[STATE_PROVIDER], "oidc.web");
        assert_eq!(state[STATE_POLICIES], "audit,no-admin,users");
        assert_eq!(state[STATE_DRY_RUN], "denied_authorization");
        assert!(state[STATE_CLAIMS].contains("\"email\":\"alice@example.com\""));
        assert!(out.tally.contains(Counter::DryRunDenied));
        let line = out.notice.unwrap();
        assert!(
            line.ends_with("result allowed; dry run: denied_authorization by no-admin"),
            "{line}"
        );
        // A refusal before any token: the result, nothing else.
        let out = run(&f, &request("GET", "/", &[]));
        assert_eq!(
            out.filter_state,
            vec![(STATE_RESULT, "denied_missing".to_string())]
        );
    }

    #[test]
    fn tampered_or_foreign_sessions_count_as_none() {
        let f = fixture(json!([{"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]));
        let good = cookie(&f, Some("at"));
        let mut bad = good.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        for c in [bad, good.replace("web=", "other=")] {
            let out = run(&f, &request("GET", "/", &[("cookie", &c)]));
            assert_eq!(reply(&out).status, 401, "{c}");
        }
    }

    #[test]
    fn unsafe_methods_need_the_sites_own_origin() {
        let f = fixture(json!([{"match": {"prefix": "/"}, "requires": {"oidc": "web"}}]));
        let c = cookie(&f, Some("at"));
        let post = |extra: &[(&str, &str)]| {
            let mut h = vec![("cookie", c.as_str())];
            h.extend_from_slice(extra);
            run(&f, &request("POST", "/orders", &h))
        };
        let evil = post(&[("origin", "https://evil.example")]);
        assert_eq!(
            (reply(&evil).status, reply(&evil).body.as_str()),
            (403, "Cross-site request refused")
        );
        assert_eq!(
            reply(&post(&[])).status,
            403,
            "neither Origin nor Sec-Fetch-Site"
        );
        for ok in [
            post(&[("origin", "https://app.example")]),
            post(&[("origin", "https://spa.example")]),
            post(&[("sec-fetch-site", "same-origin")]),
        ] {
            assert!(matches!(ok.decision, Decision::Continue(_)));
        }
    }

    #[test]
    fn a_bearer_token_is_judged_by_its_provider_alone() {
        let f = fixture(
            json!([{"match": {"prefix": "/"}, "requires": {"requires_any":
            {"requirements": [{"oidc": "web"}, {"provider_name": "api"}]}}}]),
        );
        let c = cookie(&f, Some("at"));
        let out = run(
            &f,
            &request(
                "GET",
                "/",
                &[HTML, ("cookie", &c), ("authorization", "Bearer a.b.c")],
            ),
        );
        let r = reply(&out);
        assert_eq!(r.status, 401);
        assert!(header(r, "www-authenticate")
            .unwrap()
            .contains("invalid_token"));
        assert!(header(r, "location").is_none());
    }

    #[test]
    fn callback_and_logout_are_answered_by_the_filter() {
        let f = fixture(json!([]));
        let cb = run(
            &f,
            &request(
                "GET",
                "/oauth2/callback?code=c&state=AAAAAAAAAAAAAAAAAAAAAA",
                &[],
            ),
        );
        assert_eq!(
            (reply(&cb).status, reply(&cb).body.as_str()),
            (401, "Login failed")
        );
        assert_eq!(cb.oidc_event, Some((0, OidcCounter::LoginFailed)));
        let c = cookie(&f, Some("at"));
        let out = run(&f, &request("GET", "/oauth2/logout", &[("cookie", &c)]));
        let r = reply(&out);
        assert_eq!(r.status, 302);
        assert!(header(r, "location")
            .unwrap()
            .starts_with("https://idp.example/logout?"));
        assert!(header(r, "set-cookie").unwrap().contains("Max-Age=0"));
        let cross = run(
            &f,
            &request(
                "POST",
                "/oauth2/logout",
                &[("sec-fetch-site", "cross-site")],
            ),
        );
        assert_eq!(reply(&cross).status, 403);
        // A browser without Sec-Fetch-* headers: its Origin tells.
        let post = |origin| request("POST", "/oauth2/logout", &[("origin", origin)]);
        assert_eq!(reply(&run(&f, &post("https://evil.example"))).status, 403);
        assert_eq!(reply(&run(&f, &post("https://app.example"))).status, 302);
        assert_eq!(reply(&run(&f, &post("https://spa.example"))).status, 302);
    }
}
