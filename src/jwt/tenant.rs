//! Multi-tenant issuers: a provider `issuer` with one `{tenant}` placeholder standing for one
//! non-empty path segment (`https://login.microsoftonline.com/{tenant}/v2.0`) or host label
//! (`https://{tenant}.auth.example.com/`), optionally limited to listed `tenants` and tied to
//! a claim (`tenant_claim`, e.g. `tid`) that must name the same tenant. One key set serves
//! every tenant; the token's own `iss` stays its issuer (and so its principal).

use crate::jwt::error::AuthError;
use crate::jwt::token::Jwt;

pub const PLACEHOLDER: &str = "{tenant}";

/// An issuer with a `{tenant}` placeholder: the text around it and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPattern {
    head: String,
    tail: String,
    /// In the host (one DNS label), else in the path (one segment).
    in_host: bool,
}

/// Whether `s` can be what `{tenant}` stands for: a DNS label in a host, an RFC 3986
/// unreserved segment (not `.` or `..`) in a path. Anything else (`/`, `%`, `?`, `@`, ...)
/// could reach past the segment, so it is no tenant.
fn is_segment(s: &str, in_host: bool) -> bool {
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric() || b == b'-' || (!in_host && matches!(b, b'.' | b'_' | b'~'))
    };
    !s.is_empty() && s != "." && s != ".." && s.bytes().all(allowed)
}

impl IssuerPattern {
    /// `Ok(None)` for an issuer without placeholder; an error for a misplaced one.
    pub fn parse(issuer: &str) -> Result<Option<Self>, String> {
        let Some(at) = issuer.find(PLACEHOLDER) else {
            if issuer.contains(['{', '}']) {
                return Err(format!(
                    "the only placeholder an issuer may hold is {PLACEHOLDER}"
                ));
            }
            return Ok(None);
        };
        let head = issuer.get(..at).unwrap_or_default();
        let tail = issuer.get(at + PLACEHOLDER.len()..).unwrap_or_default();
        if head.contains(['{', '}']) || tail.contains(['{', '}']) {
            return Err(format!(
                "an issuer may hold one {PLACEHOLDER} and no other placeholder"
            ));
        }
        let after_scheme = head
            .strip_prefix("https://")
            .or_else(|| head.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("an issuer with {PLACEHOLDER} must be an http:// or https:// URL with it after the scheme")
            })?;
        let in_host = !after_scheme.contains('/');
        let before_ok =
            after_scheme.is_empty() || after_scheme.ends_with(if in_host { '.' } else { '/' });
        let after_ok = match tail.bytes().next() {
            None => !in_host,
            // A host label is followed by the rest of the host: a tenant is never the whole host.
            Some(b) if in_host => b == b'.',
            Some(b) => b == b'/',
        };
        if !before_ok || !after_ok || (in_host && after_scheme.contains('@')) {
            return Err(format!(
                "{PLACEHOLDER} must be a whole path segment or host label"
            ));
        }
        Ok(Some(Self {
            head: head.to_string(),
            tail: tail.to_string(),
            in_host,
        }))
    }

    /// The text around the placeholder, by which the issuer index finds the pattern.
    pub fn key(&self) -> (&str, &str) {
        (&self.head, &self.tail)
    }

    pub fn is_tenant(&self, s: &str) -> bool {
        is_segment(s, self.in_host)
    }

    /// The tenant `iss` names, if it fits the pattern.
    pub fn tenant<'a>(&self, iss: &'a str) -> Option<&'a str> {
        let middle = iss
            .strip_prefix(self.head.as_str())?
            .strip_suffix(self.tail.as_str())?;
        self.is_tenant(middle).then_some(middle)
    }
}

/// A provider's tenant rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    pub pattern: IssuerPattern,
    /// Allowed tenants; empty: any.
    pub tenants: Vec<String>,
    pub claim: Option<String>,
}

impl Tenancy {
    /// The issuer check: `iss` must fit the pattern with an allowed tenant.
    pub fn check_issuer<'a>(&self, jwt: &'a Jwt) -> Result<&'a str, AuthError> {
        let tenant = jwt
            .iss
            .as_deref()
            .and_then(|iss| self.pattern.tenant(iss))
            .ok_or(AuthError::UnknownIssuer)?;
        if !self.tenants.is_empty() && !self.tenants.iter().any(|t| t == tenant) {
            return Err(AuthError::UnknownIssuer);
        }
        Ok(tenant)
    }

    /// `tenant_claim` must be a string equal to the issuer's tenant: a token that one tenant's
    /// issuer signed for another is no token of either.
    pub fn check_claim(&self, jwt: &Jwt, tenant: &str) -> Result<(), AuthError> {
        match &self.claim {
            Some(c) if jwt.payload.get(c).and_then(|v| v.as_str()) != Some(tenant) => {
                Err(AuthError::VerificationFail)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fit_one_segment() {
        let p = IssuerPattern::parse("https://login.example.com/{tenant}/v2.0")
            .unwrap()
            .unwrap();
        assert_eq!(
            p.tenant("https://login.example.com/acme/v2.0"),
            Some("acme")
        );
        assert_eq!(
            p.tenant("https://login.example.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"),
            Some("9188040d-6c67-4c5b-b112-36a304b66dad")
        );
        for bad in [
            "https://login.example.com//v2.0",
            "https://login.example.com/a/b/v2.0",
            "https://login.example.com/../v2.0",
            "https://login.example.com/a%2Fb/v2.0",
            "https://login.example.com/acme/v2.0/",
            "http://login.example.com/acme/v2.0",
        ] {
            assert_eq!(p.tenant(bad), None, "{bad}");
        }
        let host = IssuerPattern::parse("https://{tenant}.idp.example/")
            .unwrap()
            .unwrap();
        assert_eq!(host.tenant("https://acme.idp.example/"), Some("acme"));
        assert_eq!(host.tenant("https://a.b.idp.example/"), None);
        assert_eq!(host.tenant("https://evil.example/x.idp.example/"), None);
        let end = IssuerPattern::parse("https://sts.example/{tenant}")
            .unwrap()
            .unwrap();
        assert_eq!(end.tenant("https://sts.example/t1"), Some("t1"));
        assert_eq!(end.tenant("https://sts.example/t1/"), None);
        assert_eq!(
            IssuerPattern::parse("https://plain.example/").unwrap(),
            None
        );
    }

    #[test]
    fn misplaced_placeholders_are_refused() {
        for bad in [
            "https://login.example.com/x{tenant}/v2.0",
            "https://login.example.com/{tenant}x/v2.0",
            "https://{tenant}/",
            "https://a{tenant}.example/",
            "{tenant}://x/",
            "tenant-{tenant}",
            "https://x/{tenant}/{tenant}",
            "https://x/{tid}/",
            "https://user@{tenant}.example/",
        ] {
            assert!(IssuerPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
