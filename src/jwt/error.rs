//! Why a request failed authentication: the outcomes of Envoy's `jwt_authn`, with its exact
//! response bodies, so that operators see the strings they already grep for.

/// A failed JWT check. The body text and HTTP status follow Envoy `jwt_authn` (jwt_verify_lib).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    BadFormat,
    HeaderBadBase64,
    HeaderBadJson,
    HeaderBadAlg,
    HeaderAlgNotImplemented,
    HeaderBadKid,
    PayloadBadBase64,
    PayloadBadJson,
    IssNotString,
    SubNotString,
    IatNotInteger,
    IatOutOfRange,
    NbfNotInteger,
    NbfOutOfRange,
    ExpNotInteger,
    ExpOutOfRange,
    JtiNotString,
    AudNotString,
    SignatureBadBase64,
    UnknownIssuer,
    NotYetValid,
    Expired,
    AudienceNotAllowed,
    /// Bad signature with a fitting key, `crit`, token over the size bound,
    /// `require_expiration` or `max_lifetime` failures.
    VerificationFail,
    JwksKidAlgMismatch,
    JwksFetchFail,
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "Jwt is missing",
            Self::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            Self::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            Self::HeaderBadJson => "Jwt header is an invalid JSON",
            Self::HeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            Self::HeaderAlgNotImplemented => "Jwt header [alg] is not supported",
            Self::HeaderBadKid => "Jwt header [kid] field is not a string",
            Self::PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            Self::PayloadBadJson => "Jwt payload is an invalid JSON",
            Self::IssNotString => "Jwt payload [iss] field is not a string",
            Self::SubNotString => "Jwt payload [sub] field is not a string",
            Self::IatNotInteger => "Jwt payload [iat] field is not an integer",
            Self::IatOutOfRange => "Jwt payload [iat] field is not a positive 64 bit integer",
            Self::NbfNotInteger => "Jwt payload [nbf] field is not an integer",
            Self::NbfOutOfRange => "Jwt payload [nbf] field is not a positive 64 bit integer",
            Self::ExpNotInteger => "Jwt payload [exp] field is not an integer",
            Self::ExpOutOfRange => "Jwt payload [exp] field is not a positive 64 bit integer",
            Self::JtiNotString => "Jwt payload [jti] field is not a string",
            Self::AudNotString => "Jwt payload [aud] field is not a string or string list",
            Self::SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            Self::UnknownIssuer => "Jwt issuer is not configured",
            Self::NotYetValid => "Jwt not yet valid",
            Self::Expired => "Jwt is expired",
            Self::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            Self::VerificationFail => "Jwt verification fails",
            Self::JwksKidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
            Self::JwksFetchFail => "Jwks remote fetch is failed",
        }
    }

    /// Stable snake_case code for logs and stats.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::AudienceNotAllowed => "audience",
            Self::UnknownIssuer => "issuer",
            Self::JwksKidAlgMismatch | Self::JwksFetchFail => "jwks",
            _ => "invalid",
        }
    }

    /// HTTP status; `jwks_unavailable_status` only applies to a missing key set.
    pub fn http_status(self, jwks_unavailable_status: u32) -> u32 {
        match self {
            Self::AudienceNotAllowed => 403,
            Self::JwksFetchFail => jwks_unavailable_status,
            _ => 401,
        }
    }

    /// Missing and unknown-issuer results are "no token for this provider" when
    /// `requires_any` aggregates its children, as in Envoy.
    pub fn is_missing_like(self) -> bool {
        matches!(self, Self::Missing | Self::UnknownIssuer)
    }
}
