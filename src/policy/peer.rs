//! The connection side of Istio's authorization: peer identities from SPIFFE URI SANs
//! (`spiffe://cluster.local/ns/<ns>/sa/<sa>` is principal `cluster.local/ns/<ns>/sa/<sa>`
//! in namespace `<ns>`), address blocks (CIDR or one address, as Istio's `ipBlocks`) and
//! destination ports, parsed from what Envoy reports (`ip:port`, `[v6]:port`).

use std::net::IpAddr;

/// The principal of a URI SAN, as Istio matches `principals` (the SAN without `spiffe://`);
/// none for a SAN of another scheme.
pub fn spiffe_principal(uri_san: &str) -> Option<&str> {
    uri_san.strip_prefix("spiffe://").filter(|p| !p.is_empty())
}

/// The namespace of a principal `<trust domain>/ns/<ns>/sa/<sa>`.
pub fn namespace(principal: &str) -> Option<&str> {
    let mut parts = principal.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(td), Some("ns"), Some(ns), Some("sa")) if !td.is_empty() && !ns.is_empty() => {
            Some(ns)
        }
        _ => None,
    }
}

/// The address and port of `ip:port` or `[v6]:port`.
pub fn split_address(addr: &str) -> Option<(IpAddr, &str)> {
    let (ip, port) = addr.rsplit_once(':')?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .unwrap_or(ip);
    Some((ip.parse().ok()?, port))
}

/// A CIDR block, or one address (a full-length block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlock {
    net: IpAddr,
    bits: u32,
}

impl IpBlock {
    /// Refused as Istio refuses them: anything but an address or `address/length`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u32>() {
                Ok(n) if n <= max && !b.starts_with('+') => n,
                _ => return Err(format!("{s:?} has an invalid prefix length")),
            },
        };
        Ok(Self { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // Bits past the prefix length do not count, as in Envoy's CIDR ranges.
        let masked = |a: u128, width: u32| match width.checked_sub(self.bits) {
            Some(shift) if shift < 128 => a >> shift,
            _ => 0,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32) == masked(u32::from(a).into(), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(n.into(), 128) == masked(a.into(), 128),
            _ => false,
        }
    }
}

/// `ip_blocks` / `not_ip_blocks` (and the `remote_`, `when` forms): some block holds the
/// address (or none is given) and no `not_` block does. An unknown address matches only a
/// pure `not_` list, as a missing value does everywhere else.
#[derive(Debug, Default)]
pub struct Blocks {
    any: Vec<IpBlock>,
    none: Vec<IpBlock>,
}

/// Parses a list, naming the failing entry `{at}[i]`.
fn list<T>(
    at: &str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, (String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| parse(v).map_err(|e| (format!("{at}[{i}]"), e)))
        .collect()
}

impl Blocks {
    /// `at_any` / `at_none`: the JSON paths of the two lists, for errors.
    pub fn parse(
        at_any: &str,
        any: &[String],
        at_none: &str,
        none: &[String],
    ) -> Result<Self, (String, String)> {
        Ok(Self {
            any: list(at_any, any, IpBlock::parse)?,
            none: list(at_none, none, IpBlock::parse)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.none.is_empty()
    }

    pub fn matches(&self, ip: Option<IpAddr>) -> bool {
        match ip {
            None => self.any.is_empty(),
            Some(ip) => {
                (self.any.is_empty() || self.any.iter().any(|b| b.contains(ip)))
                    && !self.none.iter().any(|b| b.contains(ip))
            }
        }
    }
}

/// `ports` / `not_ports` and `destination.port`: decimal port numbers (strings, as Istio).
#[derive(Debug, Default)]
pub struct Ports {
    any: Vec<u16>,
    none: Vec<u16>,
}

fn port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if !s.starts_with('+') => Ok(p),
        _ => Err(format!("{s:?} is not a port number (0-65535)")),
    }
}

impl Ports {
    pub fn parse(
        at_any: &str,
        any: &[String],
        at_none: &str,
        none: &[String],
    ) -> Result<Self, (String, String)> {
        Ok(Self {
            any: list(at_any, any, port)?,
            none: list(at_none, none, port)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.none.is_empty()
    }

    /// `port`: as Envoy reports it (the text after the address's last `:`).
    pub fn matches(&self, port: Option<&str>) -> bool {
        match port.and_then(|p| p.parse::<u16>().ok()) {
            None => self.any.is_empty(),
            Some(p) => (self.any.is_empty() || self.any.contains(&p)) && !self.none.contains(&p),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_hold_their_addresses() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "10.0.0.0/8",
                &["10.0.0.0", "10.255.255.255", "10.1.2.3"],
                &["11.0.0.0", "9.255.255.255", "::ffff:10.0.0.1"],
            ),
            ("10.1.2.3", &["10.1.2.3"], &["10.1.2.4"]),
            ("10.1.2.3/24", &["10.1.2.200"], &["10.1.3.1"]),
            ("0.0.0.0/0", &["1.2.3.4", "255.255.255.255"], &["::1"]),
            ("10.1.2.3/32", &["10.1.2.3"], &["10.1.2.2"]),
            (
                "2001:db8::/32",
                &["2001:db8::1", "2001:db8:ffff::"],
                &["2001:db9::", "10.0.0.1"],
            ),
            ("::1", &["::1"], &["::2", "127.0.0.1"]),
            ("::/0", &["::1", "fe80::1"], &["127.0.0.1"]),
        ];
        for (block, yes, no) in cases {
            let b = IpBlock::parse(block).unwrap();
            for a in *yes {
                assert!(b.contains(ip(a)), "{block} should hold {a}");
            }
            for a in *no {
                assert!(!b.contains(ip(a)), "{block} should not hold {a}");
            }
        }
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
            "",
            "10.0.0.0/8/8",
            "1.2.3.4:80",
        ] {
            assert!(IpBlock::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_principals_namespaces() {
        assert_eq!(
            split_address("127.0.0.1:5000"),
            Some((ip("127.0.0.1"), "5000"))
        );
        assert_eq!(split_address("[::1]:443"), Some((ip("::1"), "443")));
        assert_eq!(split_address("/tmp/sock"), None);
        assert_eq!(split_address("x:1"), None);
        let p = spiffe_principal("spiffe://cluster.local/ns/foo/sa/bar").unwrap();
        assert_eq!(p, "cluster.local/ns/foo/sa/bar");
        assert_eq!(namespace(p), Some("foo"));
        assert_eq!(
            spiffe_principal("https://cluster.local/ns/foo/sa/bar"),
            None
        );
        assert_eq!(spiffe_principal("spiffe://"), None);
        assert_eq!(namespace("cluster.local/sa/foo/ns/bar"), None);
        assert_eq!(namespace("cluster.local/ns//sa/bar"), None);
        assert_eq!(namespace("cluster.local/ns/foo"), None);
    }

    #[test]
    fn lists_match_and_refuse() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let b = Blocks::parse("a", &s(&["10.0.0.0/8"]), "n", &s(&["10.9.0.0/16"])).unwrap();
        assert!(b.matches(Some(ip("10.1.1.1"))));
        assert!(!b.matches(Some(ip("10.9.1.1"))));
        assert!(!b.matches(None));
        let only_not = Blocks::parse("a", &[], "n", &s(&["10.0.0.0/8"])).unwrap();
        assert!(only_not.matches(None));
        assert_eq!(
            Blocks::parse("a", &s(&["1.2.3.4", "nope"]), "n", &[])
                .unwrap_err()
                .0,
            "a[1]"
        );
        let p = Ports::parse("a", &s(&["80", "443"]), "n", &s(&["8443"])).unwrap();
        assert!(p.matches(Some("443")));
        assert!(!p.matches(Some("8080")));
        assert!(!p.matches(None));
        let np = Ports::parse("a", &[], "n", &s(&["8443"])).unwrap();
        assert!(!np.matches(Some("8443")));
        assert!(np.matches(Some("80")));
        for bad in ["65536", "-1", "http", "", "+80"] {
            assert_eq!(
                Ports::parse("a", &s(&[bad]), "n", &[]).unwrap_err().0,
                "a[0]",
                "{bad}"
            );
        }
    }
}
