//! Browser login at the proxy, the OpenID Connect authorization code flow (the contract's
//! `oidc` section), as a pure core: the section compiled (`config`), cookie sealing with a key
//! ring (`seal`), the cookies themselves (`cookies`), the session (`session`), a login flow and
//! its callback (`flow`), the return URL normalizer (`return_url`), browser navigation
//! detection (`navigation`), the token endpoint (`token`) and the discovery document
//! (`discovery`), on URL and form helpers (`url`) and the random source (`random`).
//!
//! Nothing here does I/O: the host hands in requests, IdP answers, the time and a random
//! source, and carries out what comes back (`Set-Cookie` lines, a `Location`, an HTTP call's
//! body and headers). Untrusted input (cookies, query strings, IdP JSON) never panics.
//!
//! May use: `config::schema`, `request`, `jwt` (strict JSON), `crypto`. Must not use `policy`,
//! `authn`, `pipeline` or `host`: the pipeline calls this, never the other way round.

pub mod config;
pub mod cookies;
pub mod discovery;
pub mod flow;
pub mod navigation;
pub mod random;
pub mod return_url;
pub mod seal;
pub mod session;
pub mod token;
pub mod url;
