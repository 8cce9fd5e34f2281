//! The addresses of a local interface (vm.conf `local interface`, `vmctl start -L`), exactly as
//! vmd computes them, and the `local prefix` / `local inet6 prefix` strings of vm.conf.
//!
//! IPv4 (vmd priv.c `vm_priv_addr`): each VM gets the /24-sized block `VMID << 8` inside the
//! local prefix, and interface `IDX` of it the /31 at `(IDX + 1) * 2` in that block (the first
//! /31 is skipped so that no gateway ends in .0). The first address of the /31 is the host side
//! (gateway, DHCP server, name server), the second the guest's. With the default
//! 100.64.0.0/10, VM 1's first interface is 100.64.1.2 (host) and 100.64.1.3 (guest).
//! vmd refuses an interface index of 127 or more and a VM id whose block leaves the prefix;
//! so does this, and also a VM id so large that `VMID << 8` would overflow 32 bits (vmd's C
//! shift wraps, giving another VM's address; here it is an error).
//!
//! IPv6 (vmd priv.c `vm_priv_addr6`, with `local inet6`): the guest's IPv4 address is placed in
//! bytes 8..12 of the IPv6 prefix, the last byte is 1 for the host side and 2 for the guest,
//! and the subnet is a /96. vmd only configures the host side and answers neither DHCPv6 nor
//! router solicitations (vm.conf(5)); the guest address is given for completeness.
//!
//! Prefix strings (vmd parse.y `parse_prefix4`, `parse_prefix6`): IPv4 `ADDR[/LEN]` with LEN 1
//! to 16 (16 if omitted, leaving at least 16 bits for VM and interface), IPv6 `ADDR[/LEN]` with
//! LEN 0 to 64 (64 if omitted); no bits may be set past LEN. Differences: only dotted-quad
//! IPv4 (vmd also takes inet_net_pton's short forms like `10/8`).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// vmd's default local prefix, VMD_DHCP_PREFIX in vmd.h: 100.64.0.0/10, the shared address
/// space of RFC 6598.
pub const DEFAULT_PREFIX: Prefix4 = Prefix4 { addr: Ipv4Addr::new(100, 64, 0, 0), len: 10 };
/// vmd's IPv6 base, VMD_ULA_PREFIX in vmd.h: fd00::/8, unique local addresses (RFC 4193).
/// Without `local inet6 prefix`, vmd randomises it once at start ([`Prefix6::random_ula`]).
pub const ULA_PREFIX: Prefix6 = Prefix6 { addr: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0), len: 8 };

/// Each local interface is a /31: host side and guest.
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 254);
pub const NETMASK_LEN: u8 = 31;
/// The IPv6 subnet of a local interface (priv.c: "local IPv6 address with a /96 mask").
pub const NETMASK6_LEN: u8 = 96;
/// The highest interface index vmd encodes (priv.c refuses `idx >= 0x7f`): 127 interfaces.
pub const MAX_INTERFACE_INDEX: u32 = 126;

/// The prefix lengths vmd accepts, and their defaults.
const PREFIX4_LEN: (u8, u8, u8) = (1, 16, 16);
const PREFIX6_LEN: (u8, u8, u8) = (0, 64, 64);

/// An IPv4 local prefix: length 1 to 16, no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix4 {
    addr: Ipv4Addr,
    len: u8,
}

/// An IPv6 local prefix: length 0 to 64, no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix6 {
    addr: Ipv6Addr,
    len: u8,
}

/// Why a prefix string was refused. `Display` gives the reason alone; the caller names the
/// string and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    /// The length is not a number in `min..=max`.
    Length {
        min: u8,
        max: u8,
    },
    NotIpv4,
    NotIpv6,
    /// Bits set past the prefix length.
    HostBits,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { min, max } => write!(f, "prefix length must be {min} to {max}"),
            Self::NotIpv4 => f.write_str("not an IPv4 address"),
            Self::NotIpv6 => f.write_str("not an IPv6 address"),
            Self::HostBits => f.write_str("address has bits set outside the prefix length"),
        }
    }
}

/// Splits `ADDR[/LEN]`, checking LEN against `(min, max, default)`.
fn split_prefix(s: &str, (min, max, default): (u8, u8, u8)) -> Result<(&str, u8), PrefixError> {
    let Some((addr, len)) = s.rsplit_once('/') else { return Ok((s, default)) };
    let bad = PrefixError::Length { min, max };
    // Digits only: u8's parser would also take a leading '+'.
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match len.parse::<u8>() {
        Ok(n) if (min..=max).contains(&n) => Ok((addr, n)),
        _ => Err(bad),
    }
}

impl Prefix4 {
    /// `addr/len`, if vmd would accept it.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        let (min, max, _) = PREFIX4_LEN;
        if !(min..=max).contains(&len) {
            return Err(PrefixError::Length { min, max });
        }
        let prefix = Self { addr, len };
        if u32::from(addr) & !prefix.mask() != 0 {
            return Err(PrefixError::HostBits);
        }
        Ok(prefix)
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network mask as a number (`len` is 1 to 16, so the shift is in range).
    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.len))
    }

    /// The largest VM id whose block fits: the host bits less the 8 for interfaces.
    pub fn max_vm_id(&self) -> u32 {
        (1u32 << (32 - 8 - u32::from(self.len))) - 1
    }
}

impl FromStr for Prefix4 {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (addr, len) = split_prefix(s, PREFIX4_LEN)?;
        Self::new(addr.parse().map_err(|_| PrefixError::NotIpv4)?, len)
    }
}

impl fmt::Display for Prefix4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Default for Prefix4 {
    fn default() -> Self {
        DEFAULT_PREFIX
    }
}

impl Prefix6 {
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        let (min, max, _) = PREFIX6_LEN;
        if !(min..=max).contains(&len) {
            return Err(PrefixError::Length { min, max });
        }
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
        if u128::from(addr) & !mask != 0 {
            return Err(PrefixError::HostBits);
        }
        Ok(Self { addr, len })
    }

    /// The prefix vmd makes when `local inet6` names none (config.c `config_init_localprefix`):
    /// fd00::/8 with its next 56 bits, the RFC 4193 global and subnet IDs, from `random`.
    /// vmd keeps the /8 length, which the address formula never reads; the result here says
    /// /64, what the randomised bits make it.
    pub fn random_ula(random: [u8; 7]) -> Prefix6 {
        let mut octets = ULA_PREFIX.addr.octets();
        octets[1..8].copy_from_slice(&random);
        Prefix6 { addr: Ipv6Addr::from(octets), len: 64 }
    }

    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }
}

impl FromStr for Prefix6 {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (addr, len) = split_prefix(s, PREFIX6_LEN)?;
        Self::new(addr.parse().map_err(|_| PrefixError::NotIpv6)?, len)
    }
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Why an interface has no local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// vmd encodes interface indexes 0 to [`MAX_INTERFACE_INDEX`].
    InterfaceIndex { index: u32 },
    /// The VM's block does not fit in the prefix: at most `max` VMs ids.
    VmId { vm_id: u32, max: u32 },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceIndex { index } => {
                write!(f, "local address range exceeded: interface {index} (at most {MAX_INTERFACE_INDEX})")
            }
            Self::VmId { vm_id, max } => {
                write!(f, "local address range exceeded: vm id {vm_id} (at most {max} in this prefix)")
            }
        }
    }
}

/// The two ends of a local interface's /31.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs {
    /// Keel's side: the guest's gateway, DHCP server and name server.
    pub host: Ipv4Addr,
    pub guest: Ipv4Addr,
}

/// The two ends of a local interface's IPv6 /96.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs6 {
    pub host: Ipv6Addr,
    pub guest: Ipv6Addr,
}

/// vmd's `vm_priv_addr` for interface `index` of VM `vm_id`.
pub fn addrs(prefix: &Prefix4, vm_id: u32, index: u32) -> Result<LocalAddrs, AddrError> {
    if index > MAX_INTERFACE_INDEX {
        return Err(AddrError::InterfaceIndex { index });
    }
    let max = prefix.max_vm_id();
    if vm_id > max {
        return Err(AddrError::VmId { vm_id, max });
    }
    // Both fit the host bits: vm_id <= max keeps `vm_id << 8` below 2^(32 - len), and the
    // interface part is at most (126 + 1) * 2 + 1 = 255, inside the low byte.
    let host = u32::from(prefix.addr) | (vm_id << 8) | ((index + 1) * 2);
    Ok(LocalAddrs { host: Ipv4Addr::from(host), guest: Ipv4Addr::from(host + 1) })
}

/// vmd's `vm_priv_addr6`: `prefix` with the guest's IPv4 address in bytes 8..12 and 1 (host) or
/// 2 (guest) in the last byte.
pub fn addrs6(prefix: &Prefix6, v4: &LocalAddrs) -> LocalAddrs6 {
    let with_last = |last: u8| {
        let mut octets = prefix.addr.octets();
        octets[8..12].copy_from_slice(&v4.guest.octets());
        octets[15] = last;
        Ipv6Addr::from(octets)
    };
    LocalAddrs6 { host: with_last(1), guest: with_last(2) }
}
