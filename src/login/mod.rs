//! Browser login in the request path: what the pipeline does with the `oidc` core for one
//! request. `answer` decides the replies that need no IdP call (a login's start, `Login
//! required`, logout, the cross-site guard); `callback` checks a login callback and, once the
//! host has exchanged its code, verifies the ID token and sets the session; `refresh` renews a
//! session's tokens; `identity` makes a session the request's identity.
//!
//! May use: `authn` (the ID token goes through the project's verifier and key sets), `oidc`,
//! `config`, `policy`, `reply`, `request`, `stats`. Must not use `pipeline` or `host`.

pub mod answer;
pub mod callback;
pub mod identity;
pub mod refresh;
