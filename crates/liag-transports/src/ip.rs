//! [`IpVersion`]: which addresses of a target a connector uses.

use std::net::IpAddr;

/// Which IP version's addresses of its targets a connector uses
/// (`TcpConnector::set_ip_version`, `WsConnector::set_ip_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpVersion {
    /// IPv4 and IPv6 addresses alike (the default).
    #[default]
    Any,
    /// IPv4 addresses only.
    V4,
    /// IPv6 addresses only.
    V6,
}

impl IpVersion {
    /// Whether `ip` is of this version.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            IpVersion::Any => true,
            IpVersion::V4 => ip.is_ipv4(),
            IpVersion::V6 => ip.is_ipv6(),
        }
    }
}
