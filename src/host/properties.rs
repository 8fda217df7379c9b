//! Connection and route attributes from Envoy's properties, for rules on routes and policies
//! on the peer, addresses, ports and SNI: read only when some rule or policy asks (see
//! `crate::request::connection`).

use std::rc::Rc;

use proxy_wasm::hostcalls;

use crate::request::connection::{Attr, Connection};

/// The metadata filter under which `route_metadata` keys are looked up.
pub const ROUTE_METADATA_FILTER: &str = "envoy-jwt-authz";

fn path(attr: Attr, metadata_keys: &[String]) -> Option<Vec<&str>> {
    Some(match attr {
        Attr::Source => vec!["source", "address"],
        Attr::Destination => vec!["destination", "address"],
        Attr::PeerUriSan => vec!["connection", "uri_san_peer_certificate"],
        Attr::Sni => vec!["connection", "requested_server_name"],
        Attr::RouteName => vec!["xds", "route_name"],
        Attr::RouteMetadata(i) => vec![
            "xds",
            "route_metadata",
            "filter_metadata",
            ROUTE_METADATA_FILTER,
            metadata_keys.get(usize::from(i))?.as_str(),
        ],
    })
}

/// The attributes of the connection and route of HTTP context `context_id`. A paused
/// request is evaluated again from the root context, so each read first makes the request's
/// context the effective one.
pub fn connection(context_id: u32, metadata_keys: Rc<[String]>) -> Connection {
    let n = metadata_keys.len();
    Connection::new(
        move |attr| {
            let path = path(attr, &metadata_keys)?;
            super::trace::host(|| hostcalls::set_effective_context(context_id)).ok()?;
            let bytes = super::trace::host(|| hostcalls::get_property(path)).ok()??;
            super::trace::vm_entry();
            // An attribute that is not text is no attribute (fail closed: unknown).
            String::from_utf8(bytes).ok()
        },
        n,
    )
}
