//! The host side of a local interface: ARP, ICMP echo, and the one call that dispatches them
//! with DHCP.

use std::net::Ipv4Addr;

use super::{addrs, host_mac, Request, GUEST_MAC, OTHER_MAC};
use crate::checksum::internet_checksum;
use crate::dhcp::{DhcpServer, ReplyKind};
use crate::ethernet::{EthernetFrame, ETHERTYPE_ARP};
use crate::host::{HostAnswer, HostSide};
use crate::ipv4::{Addressing, Ipv4Packet};
use crate::{arp, icmp, MacAddr};

const HOST: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 2);
const GUEST: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 3);

#[test]
fn arp_request_for_host_address() {
    let request = arp::request(GUEST_MAC, GUEST, HOST);
    let reply = arp::answer(&request, host_mac(), HOST).unwrap();
    assert_eq!(reply.len(), 60);
    let eth = EthernetFrame::parse(&reply).unwrap();
    assert_eq!((eth.dst(), eth.src(), eth.ethertype()), (GUEST_MAC, host_mac(), ETHERTYPE_ARP));
    let p = eth.payload();
    assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 2]);
    assert_eq!(&p[8..14], &host_mac().0);
    assert_eq!(&p[14..18], &HOST.octets());
    assert_eq!(&p[18..24], &GUEST_MAC.0);
    assert_eq!(&p[24..28], &GUEST.octets());
    assert!(p[28..].iter().all(|&b| b == 0));
    // A probe (sender 0.0.0.0) is answered too, to that address.
    let probe = arp::answer(&arp::request(GUEST_MAC, Ipv4Addr::UNSPECIFIED, HOST), host_mac(), HOST).unwrap();
    assert_eq!(&probe[14 + 24..14 + 28], &[0, 0, 0, 0]);
}

#[test]
fn arp_not_answered() {
    let good = arp::request(GUEST_MAC, GUEST, HOST);
    let spoiled = |at: usize, value: u8| {
        let mut f = good.clone();
        f[at] = value;
        arp::answer(&f, host_mac(), HOST)
    };
    assert!(arp::answer(&arp::request(GUEST_MAC, GUEST, GUEST), host_mac(), HOST).is_none()); // not ours
    assert!(spoiled(14 + 7, 2).is_none()); // a reply
    assert!(spoiled(14 + 1, 6).is_none()); // hardware type 6
    assert!(spoiled(14 + 2, 0x86).is_none()); // protocol not IPv4
    assert!(spoiled(14 + 4, 8).is_none()); // hardware length 8
    assert!(spoiled(14 + 5, 16).is_none()); // protocol length 16
    assert!(spoiled(12, 0x08).is_some()); // (EtherType 0x0806 unchanged: high byte is 0x08)
    assert!(spoiled(13, 0x00).is_none()); // EtherType IPv4
    assert!(spoiled(0, 0x02).is_none()); // to some other unicast MAC
    assert!(spoiled(14 + 8, 0x01).is_none()); // sender hardware address a group address
    let mut unicast_poll = good.clone();
    unicast_poll[..6].copy_from_slice(&host_mac().0);
    assert!(arp::answer(&unicast_poll, host_mac(), HOST).is_some());
    for len in 0..14 + 28 {
        assert!(arp::answer(&good[..len], host_mac(), HOST).is_none(), "cut at {len}");
    }
    assert!(arp::answer(&good[..14 + 28], host_mac(), HOST).is_some());
}

fn ping(data: &[u8]) -> Vec<u8> {
    let to = Addressing { src_mac: GUEST_MAC, dst_mac: host_mac(), src_ip: GUEST, dst_ip: HOST };
    icmp::echo_request(&to, 0x1234, 7, data).unwrap()
}

#[test]
fn echo_reply() {
    for data in [&b""[..], b"x", b"0123456789abcdef0123456789abcdef0123456789abcdef"] {
        let reply = icmp::answer(&ping(data), host_mac(), HOST).unwrap();
        let eth = EthernetFrame::parse(&reply).unwrap();
        assert_eq!((eth.dst(), eth.src()), (GUEST_MAC, host_mac()));
        let ip = Ipv4Packet::in_frame(&eth).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.protocol(), ip.ttl()), (HOST, GUEST, 1, 64));
        let m = ip.payload();
        assert_eq!(&m[..2], &[0, 0]);
        assert_eq!(internet_checksum(m), 0);
        assert_eq!(&m[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&m[8..], data);
    }
    // A large one.
    let data = vec![0x5a; 1472];
    assert_eq!(icmp::answer(&ping(&data), host_mac(), HOST).unwrap().len(), 14 + 20 + 8 + 1472);
}

#[test]
fn echo_not_answered() {
    let good = ping(b"hello");
    let spoiled = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut f = good.clone();
        change(&mut f);
        // Keep the IP header checksum right, so only the intended field is wrong.
        f[24..26].fill(0);
        let sum = internet_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        icmp::answer(&f, host_mac(), HOST)
    };
    assert!(spoiled(&|_| ()).is_some());
    assert!(spoiled(&|f| f[34] = 0).is_none()); // an echo reply
    assert!(spoiled(&|f| f[34] = 13).is_none()); // timestamp
    assert!(spoiled(&|f| f[35] = 1).is_none()); // code 1
    assert!(spoiled(&|f| f[40] ^= 1).is_none()); // ICMP checksum now wrong
    assert!(spoiled(&|f| f[33] = 9).is_none()); // to another address
    assert!(spoiled(&|f| f[26..30].copy_from_slice(&[255, 255, 255, 255])).is_none()); // from broadcast
    assert!(spoiled(&|f| f[26..30].copy_from_slice(&[224, 0, 0, 1])).is_none()); // from multicast
    assert!(spoiled(&|f| f[26..30].copy_from_slice(&[0, 0, 0, 0])).is_none()); // from nowhere
    assert!(spoiled(&|f| f[20] = 0x20).is_none()); // a first fragment
    assert!(spoiled(&|f| f[23] = 17).is_none()); // UDP
    assert!(spoiled(&|f| f[0] = 0x02).is_none()); // to another MAC
    assert!(spoiled(&|f| f[6] = 0x03).is_none()); // from a group MAC
                                                  // Cut anywhere before the end of the packet (the frame has 13 bytes of padding after it).
    for len in 0..14 + 20 + 8 + 5 {
        assert!(icmp::answer(&good[..len], host_mac(), HOST).is_none(), "cut at {len}");
    }
}

#[test]
fn host_side_dispatch() {
    let side = HostSide::new(DhcpServer::new(GUEST_MAC, host_mac(), addrs()));
    assert!(matches!(side.answer(&Request::discover().frame()), HostAnswer::Dhcp(ReplyKind::Offer, _)));
    assert!(matches!(side.answer(&arp::request(GUEST_MAC, GUEST, HOST)), HostAnswer::Arp(_)));
    assert!(matches!(side.answer(&ping(b"hi")), HostAnswer::Echo(_)));
    // Only the guest is answered.
    assert_eq!(side.answer(&arp::request(OTHER_MAC, GUEST, HOST)), HostAnswer::None);
    assert_eq!(side.answer(&Request { eth_src: OTHER_MAC, ..Request::discover() }.frame()), HostAnswer::None);
    // Things for elsewhere.
    assert_eq!(side.answer(&arp::request(GUEST_MAC, GUEST, Ipv4Addr::new(8, 8, 8, 8))), HostAnswer::None);
    let to = Addressing { src_mac: GUEST_MAC, dst_mac: host_mac(), src_ip: GUEST, dst_ip: Ipv4Addr::new(8, 8, 8, 8) };
    assert_eq!(side.answer(&icmp::echo_request(&to, 1, 1, b"").unwrap()), HostAnswer::None);
    assert_eq!(side.answer(&[]), HostAnswer::None);
    assert_eq!(side.dhcp().guest_mac(), GUEST_MAC);
    assert_eq!(side.dhcp().host_mac(), MacAddr::host_side_of(GUEST_MAC));
}
