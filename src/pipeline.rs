//! The order of work for one request, with no host in sight: CORS, header sanitizing, rule
//! match, authentication, authorization, then the edits for the upstream request.

use crate::authn::authenticator::{Authenticator, Keys, Limit, VerifiedToken};
use crate::config::{FilterConfig, Routing};
use crate::jwt::claims;
use crate::jwt::error::AuthError;
use crate::policy::authz::Identity;
use crate::policy::cors::CorsDecision;
use crate::reply::{self, LocalReply};
use crate::request::extractor;
use crate::request::view::{Request, RequestEdits};
use crate::stats::{Counter, Tally};

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer locally; the request never reaches the upstream.
    Reply(LocalReply),
    /// Forward the request after applying these edits.
    Continue(RequestEdits),
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
}

fn with_cors(mut reply: LocalReply, cors: &[(String, String)]) -> LocalReply {
    reply.headers.extend(cors.iter().cloned());
    reply
}

pub fn on_request_headers<K: Keys>(
    cfg: &FilterConfig,
    keys: &K,
    req: &Request,
    now: u64,
) -> Outcome {
    let mut tally = Tally::default();
    let preflight = |r, tally: Tally| Outcome {
        decision: Decision::Reply(r),
        response_headers: Vec::new(),
        reason: None,
        jwks_misses: Vec::new(),
        tally: tally.with(Counter::CorsPreflightAnswered),
    };
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
        };

    let mut edits = RequestEdits::default();
    for name in &cfg.sanitized_headers {
        if req.header(name).is_some() {
            edits.remove(name);
        }
    }

    let requirement = match &cfg.routing {
        Routing::Everything(r) => Some(r),
        Routing::Rules(rs) => rs.find(req).and_then(|r| r.requires.as_ref()),
    };
    let mut limited = None;
    let verified = match requirement {
        None => Vec::new(),
        Some(r) => {
            let mut auth = Authenticator::new(cfg, req, keys, now);
            let result = auth.evaluate(r);
            limited = auth.limit().map(|l| limit_note(cfg, l));
            if limited.is_some() {
                tally.add(Counter::LimitReached);
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

    if let Some(authz) = &cfg.authorization {
        let identity = verified.first().and_then(|v| {
            cfg.providers.get(v.provider).map(|p| Identity {
                jwt: &v.jwt,
                space_delimited: &p.space_delimited_claims,
            })
        });
        let result = authz.evaluate(req, identity.as_ref());
        if !result.allowed {
            return refuse(
                tally,
                reply::rbac_denied(),
                if result.matched.is_empty() {
                    "authorization denied: no ALLOW policy matched".to_string()
                } else {
                    format!("authorization denied by {}", result.matched.join(","))
                },
                Vec::new(),
                Counter::DeniedAuthorization,
            );
        }
    }

    for v in &verified {
        apply_token(cfg, req, v, &mut edits);
    }
    Outcome {
        decision: Decision::Continue(edits),
        response_headers: cors,
        reason: limited,
        jwks_misses: Vec::new(),
        tally: tally.with(Counter::Allowed),
    }
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
