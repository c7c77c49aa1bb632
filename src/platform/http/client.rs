//! Who a request comes from, as the throttles count it: the socket peer, or behind a
//! trusted proxy (`ROWGUARD_TRUSTED_PROXIES`) the address that proxy forwarded.
//!
//! Forwarding headers are anyone's to write, so they are read only when the socket
//! peer is a trusted proxy, and then from the right: each trusted proxy appends the
//! address it received from, so the right-most address that is not itself a trusted
//! proxy is the first one nobody trusted vouches for beyond. What a client wrote to
//! the left of it is ignored. `X-Forwarded-For` is read when present, else
//! `Forwarded` (RFC 7239): the former is what most proxies append to by default, and
//! a proxy that appends to one passes the other through untouched, so a proxy that
//! writes only `Forwarded` must drop a client's `X-Forwarded-For`.
//!
//! IPv6 clients are counted by their /64: one host usually holds a whole /64, and
//! counting single addresses would give it 2^64 fresh counters.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
    sync::Arc,
};

use poem::{
    FromRequest, Request, RequestBody,
    http::{HeaderMap, header::FORWARDED},
};

/// An IP network, `192.0.2.0/24` or `2001:db8::/32`; a bare address is its own /32 or
/// /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                masked(u32::from(network).into(), self.prefix, 32)
                    == masked(u32::from(address).into(), self.prefix, 32)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                masked(network.into(), self.prefix, 128) == masked(address.into(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The first `prefix` bits of a `width`-bit address.
fn masked(address: u128, prefix: u8, width: u32) -> u128 {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return 0;
    }
    let host_bits = width - prefix;
    (address >> host_bits) << host_bits
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let network = network.to_canonical();
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= width)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ROWGUARD_TRUSTED_PROXIES`: comma-separated networks; empty, none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

/// The client's address: the socket peer unless it is a trusted proxy, else the
/// right-most forwarded address that is not one (see the module documentation). An
/// entry that is not an address (`unknown`, an obfuscated `_node`) ends the walk at
/// the proxy that wrote it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        if forwarded_by_an_untrusted_peer(peer, headers, trusted)
            && !UNTRUSTED_FORWARDING_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // Once per process: behind a proxy nobody configured, every client would be
            // counted as the proxy (one throttle for everyone); from anyone else it is a
            // header the server rightly ignores.
            tracing::warn!(
                %peer,
                "a request carried X-Forwarded-For or Forwarded from a peer ROWGUARD_TRUSTED_PROXIES does not \
                 list: clients are counted by their socket address; behind a proxy, list it there"
            );
        }
        return peer;
    }
    let mut nearest = peer;
    for hop in forwarded_hops(headers).into_iter().rev() {
        match hop {
            Some(address) if trusted.contains(address) => nearest = address,
            Some(address) => return address,
            None => return nearest,
        }
    }
    nearest
}

static UNTRUSTED_FORWARDING_WARNED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether a peer that is not a trusted proxy sent forwarding headers (which are
/// ignored): a proxy left out of `ROWGUARD_TRUSTED_PROXIES`, or a client's own words.
fn forwarded_by_an_untrusted_peer(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> bool {
    !trusted.contains(peer)
        && (headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded"))
}

/// The forwarded addresses, left to right (`None` for an entry that is not one).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let x_forwarded_for = values("x-forwarded-for");
    if !x_forwarded_for.is_empty() {
        return x_forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(parse_node)
            .collect();
    }
    values(FORWARDED.as_str())
        .iter()
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(value))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `"[2001:db8::1]:4711"`, a bare
/// IPv6 address.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    let address = if let Some(rest) = text.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if text.matches(':').count() == 1 {
        text.split_once(':')?.0
    } else {
        text
    };
    address.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// What the throttles count an address as: an IPv4 address itself, an IPv6 one by its
/// /64.
pub fn throttle_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(address) => address.to_string(),
        IpAddr::V6(address) => {
            let network = u128::from(address) >> 64 << 64;
            format!("{}/64", Ipv6Addr::from(network))
        }
    }
}

/// The client of a request, as the throttles count it ([`throttle_key`] of
/// [`client_ip`]); `unknown` when the peer has no IP address. The trusted proxies are
/// the route's data (none when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

impl ClientAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'a> FromRequest<'a> for ClientAddress {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let none = TrustedProxies::default();
        let trusted = request
            .data::<Arc<TrustedProxies>>()
            .map_or(&none, |trusted| trusted.as_ref());
        let key = match request.remote_addr().as_socket_addr() {
            Some(peer) => throttle_key(client_ip(peer.ip(), request.headers(), trusted)),
            None => "unknown".to_string(),
        };
        Ok(ClientAddress(key))
    }
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn proxies(text: &str) -> TrustedProxies {
        text.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_noticed_for_the_operator() {
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.7")]);
        let peer = ip("198.51.100.1");
        // From a trusted proxy: nothing to notice.
        assert!(!forwarded_by_an_untrusted_peer(
            peer,
            &forwarded,
            &proxies("198.51.100.0/24")
        ));
        // From anyone else, either header: noticed (the server warns once).
        let nobody = proxies("");
        assert!(forwarded_by_an_untrusted_peer(peer, &forwarded, &nobody));
        assert!(forwarded_by_an_untrusted_peer(
            peer,
            &headers(&[("forwarded", "for=203.0.113.7")]),
            &nobody
        ));
        assert!(!forwarded_by_an_untrusted_peer(
            peer,
            &headers(&[]),
            &nobody
        ));
    }

    #[test]
    fn two_ipv6_addresses_in_one_64_share_a_throttle_key() {
        let a = throttle_key(ip("2001:db8:1:2:aaaa::1"));
        let b = throttle_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, throttle_key(ip("2001:db8:1:3::1")), "another /64");
    }

    #[test]
    fn ipv4_addresses_are_keyed_alone_even_when_mapped_into_ipv6() {
        assert_eq!(throttle_key(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(throttle_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_ne!(throttle_key(ip("192.0.2.7")), throttle_key(ip("192.0.2.8")));
    }

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let trusted = proxies(" 10.0.0.0/8, 2001:db8::/32 ,192.0.2.1");
        assert!(trusted.contains(ip("10.200.3.4")));
        assert!(trusted.contains(ip("::ffff:10.1.1.1")));
        assert!(trusted.contains(ip("2001:db8:ffff::1")));
        assert!(trusted.contains(ip("192.0.2.1")));
        assert!(!trusted.contains(ip("192.0.2.2")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(proxies("").is_empty());
        assert!(proxies("0.0.0.0/0").contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let spoofed = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
        ]);
        let peer = ip("203.0.113.5");
        assert_eq!(client_ip(peer, &spoofed, &proxies("")), peer);
        assert_eq!(client_ip(peer, &spoofed, &proxies("10.0.0.0/8")), peer);
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trusted = proxies("10.0.0.0/8");
        // The client claimed 1.1.1.1; the outer proxy 10.0.0.2 saw 198.51.100.7.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &chain, &trusted),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        let lines = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &lines, &trusted),
            ip("198.51.100.8")
        );
        // Only trusted hops: the left-most of them.
        let inside = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &inside, &trusted), ip("10.9.9.9"));
        // No header at all: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies("10.0.0.0/8");
        let forwarded = headers(&[(
            "forwarded",
            "for=1.1.1.1;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.2",
        )]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &forwarded, &trusted),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("forwarded", "for=198.51.100.9:443")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &with_port, &trusted),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn an_entry_that_is_not_an_address_ends_the_walk_at_the_proxy_that_wrote_it() {
        let trusted = proxies("10.0.0.0/8");
        let hidden = headers(&[("forwarded", "for=198.51.100.9, for=unknown, for=10.0.0.3")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &hidden, &trusted), ip("10.0.0.3"));
    }
}
