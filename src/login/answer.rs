//! The replies of browser login that need no call to the IdP: a login's start (302) or `Login
//! required` (401) when a session is needed and absent, the cross-site guard for requests a
//! session authenticates, and logout.

use crate::config::OidcLogin;
use crate::oidc::cookies::{clear_all, clear_session};
use crate::oidc::discovery::Discovery;
use crate::oidc::flow::{logout_location, start_login};
use crate::oidc::navigation::is_navigation;
use crate::oidc::random::Random;
use crate::oidc::session::{NoSession, Session};
use crate::policy::cors::CorsPolicy;
use crate::reply::LocalReply;
use crate::request::view::Request;
use crate::stats::OidcCounter;

fn text(status: u32, body: &str) -> LocalReply {
    let mut reply = crate::reply::plain(status, body);
    reply
        .headers
        .push(("cache-control".into(), "no-store".into()));
    reply
}

pub fn login_required() -> LocalReply {
    text(401, "Login required")
}

pub fn login_failed(status: u32) -> LocalReply {
    text(status, "Login failed")
}

pub fn unavailable() -> LocalReply {
    text(503, "OIDC provider unavailable")
}

pub fn cross_site_refused() -> LocalReply {
    text(403, "Cross-site request refused")
}

/// A 302 to `location` setting `cookies`; never cached.
pub fn redirect(location: String, cookies: Vec<String>) -> LocalReply {
    let mut headers = vec![
        ("location".to_string(), location),
        ("cache-control".to_string(), "no-store".to_string()),
    ];
    headers.extend(cookies.into_iter().map(|c| ("set-cookie".to_string(), c)));
    LocalReply {
        status: 302,
        headers,
        body: String::new(),
    }
}

/// What a request that needs a session and has none gets.
pub struct Answer {
    pub reply: LocalReply,
    pub event: Option<OidcCounter>,
    /// For the debug log: never a cookie, token or secret.
    pub reason: String,
    /// The reply is the 503 for want of discovery: the host may wait for it and ask again.
    pub needs_discovery: bool,
}

/// A navigation starts a login; anything else gets `Login required`. A session cookie that
/// did not open (or expired) is cleared on either reply.
pub fn no_session(
    login: &OidcLogin,
    req: &Request,
    discovery: Option<&Discovery>,
    cookies: &[(&str, &str)],
    why: NoSession,
    now: u64,
    rng: &mut dyn Random,
) -> Answer {
    let p = &login.provider;
    let rejected = why != NoSession::Absent;
    let clears = if rejected {
        clear_session(&p.session.cookie, cookies)
    } else {
        Vec::new()
    };
    let event = rejected.then_some(OidcCounter::SessionRejected);
    // Until discovery has succeeded once, no request that needs a session is answered but with
    // 503 (after waiting for it): the contract's "never let through".
    let Some(d) = discovery else {
        return Answer {
            reply: unavailable(),
            event,
            reason: format!("oidc {}: discovery has not succeeded yet", p.name),
            needs_discovery: true,
        };
    };
    if !is_navigation(req) {
        let mut reply = login_required();
        reply
            .headers
            .extend(clears.into_iter().map(|c| ("set-cookie".to_string(), c)));
        return Answer {
            reply,
            event,
            reason: format!("oidc {}: no session ({why:?}), not a navigation", p.name),
            needs_discovery: false,
        };
    }
    match start_login(
        p,
        &d.authorization_endpoint,
        req.path_and_query(),
        cookies,
        now,
        rng,
    ) {
        Some(start) => {
            let mut set = clears;
            set.extend(start.set_cookies);
            Answer {
                reply: redirect(start.location, set),
                event: Some(OidcCounter::LoginStarted),
                reason: format!("oidc {}: no session ({why:?}), login started", p.name),
                needs_discovery: false,
            }
        }
        None => Answer {
            reply: unavailable(),
            event,
            reason: format!("oidc {}: no random source for a login", p.name),
            needs_discovery: false,
        },
    }
}

/// Whether a request the session authenticates may go on: safe methods always; others only
/// from the site's own origin (`redirect_uri`'s) or one the CORS policy allows, judged by
/// `Origin`, else by `Sec-Fetch-Site: same-origin`.
pub fn same_site(login: &OidcLogin, req: &Request, cors: Option<&CorsPolicy>) -> bool {
    if matches!(req.method(), "GET" | "HEAD" | "OPTIONS") {
        return true;
    }
    match req.header("origin") {
        Some(origin) => {
            origin == login.provider.redirect.origin()
                || cors.is_some_and(|c| c.origin_allowed(origin))
        }
        None => req
            .header("sec-fetch-site")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("same-origin")),
    }
}

/// Logout: every cookie of the filter cleared, then to the IdP's end-session endpoint (with
/// the session's ID token as hint) or to `post_logout_redirect_uri`. A browser's cross-site
/// request is refused, so that another site cannot log users out: `Sec-Fetch-Site:
/// cross-site`, or (for browsers that send no `Sec-Fetch-*`) an `Origin` that is neither the
/// site's own nor one the CORS policy allows.
pub fn logout(
    login: &OidcLogin,
    req: &Request,
    session: Option<&Session>,
    discovery: Option<&Discovery>,
    cookies: &[(&str, &str)],
    cors: Option<&CorsPolicy>,
) -> (LocalReply, Option<OidcCounter>) {
    let cross_site = req
        .header("sec-fetch-site")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("cross-site"))
        || req.header("origin").is_some_and(|o| {
            o != login.provider.redirect.origin() && !cors.is_some_and(|c| c.origin_allowed(o))
        });
    if cross_site {
        return (cross_site_refused(), None);
    }
    let p = &login.provider;
    let location = logout_location(
        p,
        discovery.and_then(|d| d.end_session_endpoint.as_deref()),
        session.is_some(),
        session.and_then(|s| s.id_token.as_deref()),
    );
    (
        redirect(location, clear_all(&p.session.cookie, cookies)),
        Some(OidcCounter::Logout),
    )
}
