//! Ethernet (MAC) addresses: the group bit, broadcast, text form (ether_aton(3) and
//! ether_ntoa(3)), and the host-side address vmd's DHCP server answers from.

use core::fmt;
use core::str::FromStr;

/// A 48-bit IEEE 802 MAC address, in transmission order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Broadcast or multicast: the I/G bit, the low bit of the first octet (IEEE 802-2014 8.2;
    /// OpenBSD's ETHER_IS_MULTICAST). A frame may be sent to such an address, never from one.
    pub fn is_group(self) -> bool {
        self.0[0] & 1 != 0
    }

    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }

    /// The host side of a local interface as vmd's DHCP server presents it: the guest's address
    /// with its last octet plus one (dhcp.c, `pc_smac[5]++`; wrapping, as the C byte does). Keel
    /// uses it as the host-side MAC for DHCP, ARP and ICMP alike, so the guest sees one
    /// neighbour; vmd's tap has a kernel-chosen address instead, which it only uses to accept
    /// DHCP sent to it.
    pub fn host_side_of(guest: MacAddr) -> MacAddr {
        let mut mac = guest.0;
        mac[5] = mac[5].wrapping_add(1);
        MacAddr(mac)
    }
}

impl fmt::Display for MacAddr {
    /// Lower-case, two digits per octet: `fe:e1:ba:d0:00:01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Not six hex octets of one or two digits separated by ':'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadMacAddr;

impl fmt::Display for BadMacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected six hex octets like fe:e1:ba:d0:00:01")
    }
}

impl FromStr for MacAddr {
    type Err = BadMacAddr;

    /// ether_aton(3): six octets of one or two hex digits, separated by ':'.
    fn from_str(s: &str) -> Result<Self, BadMacAddr> {
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut mac {
            let part = parts.next().ok_or(BadMacAddr)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BadMacAddr);
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| BadMacAddr)?;
        }
        if parts.next().is_some() {
            return Err(BadMacAddr);
        }
        Ok(MacAddr(mac))
    }
}
