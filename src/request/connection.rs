//! What the connection and the route carry besides the request headers (peer and local
//! addresses, the peer certificate's URI SAN, SNI, the route's name and metadata), read from
//! the host on first use and remembered for the rest of the request: a request that no rule
//! or policy asks about costs no host call.

use std::cell::OnceCell;
use std::fmt;
use std::rc::Rc;

/// One connection attribute, as Envoy names its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// `source.address`: `ip:port` of the downstream peer, as the connection manager computed
    /// it (after `x-forwarded-for` handling).
    Source,
    /// `destination.address`: `ip:port` the connection was accepted on.
    Destination,
    /// `connection.uri_san_peer_certificate`: the first URI SAN of the client certificate.
    PeerUriSan,
    /// `connection.requested_server_name`: the TLS SNI.
    Sni,
    /// `xds.route_name`: the name of the route Envoy picked.
    RouteName,
    /// `xds.route_metadata.filter_metadata.envoy-jwt-authz.<key>`, the key being the n-th of
    /// the configuration's route metadata keys (`RuleSet::route_metadata_keys`).
    RouteMetadata(u16),
}

/// The attributes with a fixed slot; route metadata keys follow them.
const FIXED: usize = 5;

impl Attr {
    fn slot(self) -> usize {
        match self {
            Self::Source => 0,
            Self::Destination => 1,
            Self::PeerUriSan => 2,
            Self::Sni => 3,
            Self::RouteName => 4,
            Self::RouteMetadata(i) => FIXED + usize::from(i),
        }
    }
}

struct Inner {
    read: Box<dyn Fn(Attr) -> Option<String>>,
    seen: Vec<OnceCell<Option<String>>>,
}

/// A request's connection attributes; the default knows none. Clones share what was read.
#[derive(Clone, Default)]
pub struct Connection(Option<Rc<Inner>>);

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connection")
    }
}

impl Connection {
    /// `read` answers one attribute (absent or empty: unknown); it runs at most once per
    /// attribute. `metadata_keys` is how many route metadata keys may be asked for.
    pub fn new(read: impl Fn(Attr) -> Option<String> + 'static, metadata_keys: usize) -> Self {
        Self(Some(Rc::new(Inner {
            read: Box::new(read),
            seen: (0..FIXED + metadata_keys)
                .map(|_| OnceCell::new())
                .collect(),
        })))
    }

    pub fn get(&self, attr: Attr) -> Option<&str> {
        let inner = self.0.as_ref()?;
        let cell = inner.seen.get(attr.slot())?;
        cell.get_or_init(|| (inner.read)(attr).filter(|v| !v.is_empty()))
            .as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn each_attribute_is_read_once_and_only_when_asked() {
        let reads = Rc::new(Cell::new(0));
        let counter = reads.clone();
        let c = Connection::new(
            move |a| {
                counter.set(counter.get() + 1);
                match a {
                    Attr::Source => Some("10.0.0.1:5000".into()),
                    Attr::Sni => Some(String::new()),
                    Attr::RouteMetadata(0) => Some("gold".into()),
                    _ => None,
                }
            },
            1,
        );
        assert_eq!(reads.get(), 0);
        let copy = c.clone();
        assert_eq!(c.get(Attr::Source), Some("10.0.0.1:5000"));
        assert_eq!(copy.get(Attr::Source), Some("10.0.0.1:5000"));
        assert_eq!(c.get(Attr::Sni), None);
        assert_eq!(c.get(Attr::Sni), None);
        assert_eq!(reads.get(), 2);
        assert_eq!(c.get(Attr::RouteMetadata(0)), Some("gold"));
        // A key past those declared is unknown, and costs no read.
        assert_eq!(c.get(Attr::RouteMetadata(1)), None);
        assert_eq!(reads.get(), 3);
        assert_eq!(Connection::default().get(Attr::Source), None);
    }
}
