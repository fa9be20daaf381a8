//! Which destinations `liag proxy server` opens: by default none on the server's own host or
//! networks (loopback, link-local, private, unique- and site-local, shared address space,
//! benchmarking, NAT64 prefixes), nor any multicast, broadcast, reserved or unspecified
//! address. `--allow-private` lifts the first list. The server's own public addresses are not
//! in it: a service on them that a firewall hides only from outside is reachable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The destinations a server opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Also addresses of the server's host and networks.
    pub(crate) allow_private: bool,
}

impl Policy {
    /// Whether a stream may reach `ip`.
    pub(crate) fn allows(self, ip: IpAddr) -> bool {
        let ip = match ip {
            // ::ffff:127.0.0.1 is 127.0.0.1.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let never = match ip {
            IpAddr::V4(v4) => {
                v4.is_unspecified()
                    || v4.is_multicast()
                    || v4.is_broadcast()
                    // 240.0.0.0/4, reserved.
                    || v4.octets()[0] >= 240
            }
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
        };
        !never && (self.allow_private || !is_private(ip))
    }
}

/// The server's own host and the networks near it.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_private()
                // 100.64.0.0/10, carrier-grade NAT's shared address space (RFC 6598).
                || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64)
                || v4.octets()[0] == 0
                // 198.18.0.0/15, for benchmarking networks (RFC 2544).
                || (v4.octets()[0] == 198 && v4.octets()[1] & 0xfe == 18)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.is_unique_local()
                || is_v4_compatible(v6)
        }
    }
}

/// `::a.b.c.d`, the deprecated IPv4-compatible form, which some stacks still route.
fn is_v4_compatible(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    s[..6] == [0; 6] && Ipv4Addr::from(v6.to_bits() as u32) != Ipv4Addr::UNSPECIFIED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_networks_are_refused_unless_allowed() {
        let strict = Policy {
            allow_private: false,
        };
        let open = Policy {
            allow_private: true,
        };
        for near in [
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.1.2.3",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
        ] {
            let ip: IpAddr = near.parse().unwrap();
            assert!(!strict.allows(ip), "{near} refused");
            assert!(open.allows(ip), "{near} allowed with --allow-private");
        }
        for never in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "ff02::1",
        ] {
            let ip: IpAddr = never.parse().unwrap();
            assert!(!open.allows(ip), "{never} refused always");
        }
        for far in [
            "192.0.2.1",
            "8.8.8.8",
            "100.128.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(strict.allows(far.parse().unwrap()), "{far} allowed");
        }
    }
}
