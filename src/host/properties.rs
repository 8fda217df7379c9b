//! Connection attributes from Envoy's properties, for policies on the peer, addresses, ports
//! and SNI: read only when some policy asks (see `crate::request::connection`).

use proxy_wasm::hostcalls;

use crate::request::connection::{Attr, Connection};

fn path(attr: Attr) -> Vec<&'static str> {
    match attr {
        Attr::Source => vec!["source", "address"],
        Attr::Destination => vec!["destination", "address"],
        Attr::PeerUriSan => vec!["connection", "uri_san_peer_certificate"],
        Attr::Sni => vec!["connection", "requested_server_name"],
    }
}

/// The attributes of the connection of HTTP context `context_id`. A paused request is
/// evaluated again from the root context, so each read first makes the request's context
/// the effective one.
pub fn connection(context_id: u32) -> Connection {
    Connection::new(move |attr| {
        hostcalls::set_effective_context(context_id).ok()?;
        let bytes = hostcalls::get_property(path(attr)).ok()??;
        // An attribute that is not text is no attribute (fail closed: unknown).
        String::from_utf8(bytes).ok()
    })
}
