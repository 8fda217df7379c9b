//! The request as the core sees it: its view (method, path, host, headers, query, cookies), the
//! serialized header map it is read from, and token extraction and removal at the configured
//! locations.
//!
//! May use: `config::schema` (to compile token locations). Must not use anything that knows a
//! token's meaning, a key or a policy: a request is data, not a decision.

pub mod connection;
pub mod extractor;
pub mod header_map;
pub mod view;
