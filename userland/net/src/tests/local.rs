//! The local-interface address formula, against examples worked by hand from vmd's priv.c
//! `vm_priv_addr`: address = prefix | VMID << 8 | (IDX + 1) * 2, plus 1 for the guest; the
//! result must stay in the prefix and IDX below 0x7f. And `vm_priv_addr6`: the guest's IPv4
//! address in bytes 8..12 of the IPv6 prefix, last byte 1 (host) or 2 (guest).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::local::{self, AddrError, LocalAddrs, Prefix4, Prefix6, PrefixError, DEFAULT_PREFIX, ULA_PREFIX};

fn v4(prefix: &str, vm_id: u32, index: u32) -> Result<(Ipv4Addr, Ipv4Addr), AddrError> {
    local::addrs(&prefix.parse().unwrap(), vm_id, index).map(|a| (a.host, a.guest))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn worked_examples_default_prefix() {
    let p = "100.64.0.0/10";
    // VM 1, interface 0: 1 << 8 | (0 + 1) * 2 = 0x102.
    assert_eq!(v4(p, 1, 0), Ok((ip("100.64.1.2"), ip("100.64.1.3"))));
    // VM 1, interface 1: (1 + 1) * 2 = 4.
    assert_eq!(v4(p, 1, 1), Ok((ip("100.64.1.4"), ip("100.64.1.5"))));
    assert_eq!(v4(p, 2, 0), Ok((ip("100.64.2.2"), ip("100.64.2.3"))));
    // VM 300, interface 3: 300 << 8 = 0x12c00, | 8 = 0x12c08 = 0.1.44.8.
    assert_eq!(v4(p, 300, 3), Ok((ip("100.65.44.8"), ip("100.65.44.9"))));
    // The last interface vmd encodes: (126 + 1) * 2 = 254, the guest at .255.
    assert_eq!(v4(p, 1, 126), Ok((ip("100.64.1.254"), ip("100.64.1.255"))));
    assert_eq!(v4(p, 1, 127), Err(AddrError::InterfaceIndex { index: 127 }));
    // The last VM of a /10: 22 host bits, 8 for interfaces, so VM ids up to 2^14 - 1.
    assert_eq!(v4(p, 16383, 126), Ok((ip("100.127.255.254"), ip("100.127.255.255"))));
    assert_eq!(v4(p, 16384, 0), Err(AddrError::VmId { vm_id: 16384, max: 16383 }));
    // VM id 0 is not one vmd hands out, but the formula gives it the block's second /31.
    assert_eq!(v4(p, 0, 0), Ok((ip("100.64.0.2"), ip("100.64.0.3"))));
}

#[test]
fn worked_examples_other_prefixes() {
    // A /16 leaves 8 bits of VM id.
    assert_eq!(v4("10.1.0.0/16", 255, 0), Ok((ip("10.1.255.2"), ip("10.1.255.3"))));
    assert_eq!(v4("10.1.0.0/16", 256, 0), Err(AddrError::VmId { vm_id: 256, max: 255 }));
    // A /1: 2^23 VM ids.
    assert_eq!(v4("128.0.0.0/1", 0x7f_ffff, 0), Ok((ip("255.255.255.2"), ip("255.255.255.3"))));
    // vmd shifts a 32-bit VM id left by 8 in C, so 2^24 + 1 would wrap onto VM 1; refused here.
    assert!(v4("128.0.0.0/1", (1 << 24) + 1, 0).is_err());
    assert!(v4("128.0.0.0/1", u32::MAX, 0).is_err());
    assert!(local::addrs(&DEFAULT_PREFIX, u32::MAX, u32::MAX).is_err());
}

#[test]
fn every_pair_is_a_31_and_distinct() {
    let mut seen = std::collections::HashSet::new();
    for vm in [0u32, 1, 2, 255, 256, 16383] {
        for index in 0..=local::MAX_INTERFACE_INDEX {
            let LocalAddrs { host, guest } = local::addrs(&DEFAULT_PREFIX, vm, index).unwrap();
            assert_eq!(u32::from(host) & 1, 0);
            assert_eq!(u32::from(guest), u32::from(host) + 1);
            assert_eq!(u32::from(host) & 0xffc0_0000, u32::from(ip("100.64.0.0")));
            assert!(host.octets()[3] != 0, "no gateway ends in .0");
            assert!(seen.insert(host));
        }
    }
}

#[test]
fn prefix_strings() {
    assert_eq!("100.64.0.0/10".parse(), Ok(DEFAULT_PREFIX));
    assert_eq!(DEFAULT_PREFIX.to_string(), "100.64.0.0/10");
    assert_eq!(Prefix4::default(), DEFAULT_PREFIX);
    // No length: /16.
    let p: Prefix4 = "10.20.0.0".parse().unwrap();
    assert_eq!((p.addr(), p.prefix_len()), (ip("10.20.0.0"), 16));
    let len = PrefixError::Length { min: 1, max: 16 };
    for (s, e) in [
        ("10.0.0.0/17", len),
        ("10.0.0.0/0", len),
        ("10.0.0.0/", len),
        ("10.0.0.0/+8", len),
        ("10.0.0.0/abc", len),
        ("10.0.0.0/99999999999", len),
        ("10.0.0.1/8", PrefixError::HostBits),
        ("100.65.1.0", PrefixError::HostBits), // /16 when no length is given
        ("fd00::/8", PrefixError::NotIpv4),
        ("10/8", PrefixError::NotIpv4),
        ("", PrefixError::NotIpv4),
        ("/8", PrefixError::NotIpv4),
    ] {
        assert_eq!(s.parse::<Prefix4>(), Err(e), "{s}");
    }
    assert_eq!(PrefixError::Length { min: 1, max: 16 }.to_string(), "prefix length must be 1 to 16");
    assert_eq!(PrefixError::HostBits.to_string(), "address has bits set outside the prefix length");
}

#[test]
fn prefix6_strings() {
    assert_eq!("fd00::/8".parse(), Ok(ULA_PREFIX));
    let p: Prefix6 = "fd12:3456:789a:1::".parse().unwrap();
    assert_eq!(p.prefix_len(), 64);
    assert_eq!("::/0".parse::<Prefix6>().map(|p| p.prefix_len()), Ok(0));
    assert_eq!("fd00::/65".parse::<Prefix6>(), Err(PrefixError::Length { min: 0, max: 64 }));
    assert_eq!("fd00::1/64".parse::<Prefix6>(), Err(PrefixError::HostBits));
    assert_eq!("100.64.0.0/10".parse::<Prefix6>(), Err(PrefixError::NotIpv6));
}

#[test]
fn ipv6_addresses() {
    // VM 1 interface 0: guest 100.64.1.3 = 64 40 01 03 in bytes 8..12.
    let v4 = local::addrs(&DEFAULT_PREFIX, 1, 0).unwrap();
    let six = local::addrs6(&ULA_PREFIX, &v4);
    assert_eq!(six.host, "fd00::6440:103:0:1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(six.guest, "fd00::6440:103:0:2".parse::<Ipv6Addr>().unwrap());
    let p: Prefix6 = "fd12:3456:789a:1::/64".parse().unwrap();
    assert_eq!(local::addrs6(&p, &v4).host, "fd12:3456:789a:1:6440:103:0:1".parse::<Ipv6Addr>().unwrap());
}

#[test]
fn random_ula() {
    let p = Prefix6::random_ula([1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(p.addr(), "fd01:203:405:607::".parse::<Ipv6Addr>().unwrap());
    assert_eq!(p.prefix_len(), 64);
    assert_eq!(p.to_string().parse(), Ok(p));
}
