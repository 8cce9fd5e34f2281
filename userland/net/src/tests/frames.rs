//! Checksums, MAC addresses, and the Ethernet, IPv4 and UDP parsers and builders.

use std::net::Ipv4Addr;

use super::{Request, GUEST_MAC};
use crate::checksum::{internet_checksum, Checksum};
use crate::ethernet::{self, EthernetFrame};
use crate::ipv4::{Addressing, Ipv4Packet};
use crate::udp::{self, UdpDatagram};
use crate::{MacAddr, Malformed};

#[test]
fn checksum_rfc1071_example() {
    // RFC 1071 4.1: the words 0001 f203 f4f5 f6f7 sum to ddf2 (with end-around carry).
    assert_eq!(internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
}

#[test]
fn checksum_of_nothing_and_odd_lengths() {
    assert_eq!(internet_checksum(&[]), 0xffff);
    // An odd last byte is the high half of a word.
    assert_eq!(internet_checksum(&[0x12]), !0x1200);
    assert_eq!(internet_checksum(&[0x12, 0x34, 0x56]), !(0x1234u16 + 0x5600));
}

#[test]
fn checksum_in_pieces_equals_whole() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
    let whole = internet_checksum(&data);
    for split in [0, 1, 2, 3, 500, 999, 1000, 1001] {
        let mut sum = Checksum::new();
        sum.add(&data[..split]).add(&data[split..]);
        assert_eq!(sum.finish(), whole, "split at {split}");
    }
    let mut bytewise = Checksum::new();
    for b in &data {
        bytewise.add(std::slice::from_ref(b));
    }
    assert_eq!(bytewise.finish(), whole);
}

#[test]
fn mac_text_and_bits() {
    assert_eq!("fe:e1:ba:d0:0:1".parse::<MacAddr>(), Ok(GUEST_MAC));
    assert_eq!(GUEST_MAC.to_string(), "fe:e1:ba:d0:00:01");
    for bad in
        ["", "fe:e1:ba:d0:00", "fe:e1:ba:d0:00:01:02", "fe:e1:ba:d0:00:1g", "fe:e1:ba:d0::01", "fee:1:ba:d0:00:01"]
    {
        assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
    }
    assert!(MacAddr::BROADCAST.is_group() && MacAddr::BROADCAST.is_broadcast());
    assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_group());
    assert!(!GUEST_MAC.is_group());
    assert_eq!(MacAddr::host_side_of(GUEST_MAC), MacAddr([0xfe, 0xe1, 0xba, 0xd0, 0x00, 0x02]));
    assert_eq!(MacAddr::host_side_of(MacAddr([2, 0, 0, 0, 0, 0xff])), MacAddr([2, 0, 0, 0, 0, 0]));
}

#[test]
fn ethernet_header_only() {
    assert_eq!(EthernetFrame::parse(&[0; 13]).unwrap_err(), Malformed::Truncated);
    let frame = Request::discover().frame();
    let eth = EthernetFrame::parse(&frame).unwrap();
    assert_eq!(eth.dst(), MacAddr::BROADCAST);
    assert_eq!(eth.src(), GUEST_MAC);
    assert_eq!(eth.ethertype(), ethernet::ETHERTYPE_IPV4);
    assert_eq!(eth.payload().len(), frame.len() - 14);
    assert!(EthernetFrame::parse(&[0; 14]).unwrap().payload().is_empty());
}

/// A frame to spoil: a DISCOVER, whose IPv4 header starts at 14 and UDP at 34.
fn sample() -> Vec<u8> {
    Request::discover().frame()
}

fn fix_ip_checksum(frame: &mut [u8]) {
    frame[24..26].fill(0);
    let sum = internet_checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
}

fn ip_of(frame: &[u8]) -> Result<Ipv4Packet<'_>, Malformed> {
    Ipv4Packet::in_frame(&EthernetFrame::parse(frame).unwrap())
}

fn udp_of(frame: &[u8]) -> Result<UdpDatagram<'_>, Malformed> {
    UdpDatagram::parse(&ip_of(frame)?)
}

#[test]
fn ipv4_header_checks() {
    let good = sample();
    let ip = ip_of(&good).unwrap();
    assert_eq!((ip.src(), ip.dst(), ip.protocol(), ip.ttl()), (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 17, 64));
    assert!(!ip.is_fragment());

    let spoil = |change: &dyn Fn(&mut Vec<u8>), fix: bool| {
        let mut f = good.clone();
        change(&mut f);
        if fix {
            fix_ip_checksum(&mut f);
        }
        ip_of(&f).map(|_| ())
    };
    assert_eq!(spoil(&|f| f[12] = 0x86, false), Err(Malformed::WrongProtocol)); // EtherType IPv6
    assert_eq!(spoil(&|f| f[14] = 0x65, true), Err(Malformed::WrongProtocol)); // version 6
    assert_eq!(spoil(&|f| f[14] = 0x44, true), Err(Malformed::BadLength)); // IHL 4
    assert_eq!(spoil(&|f| f[14] = 0x4f, true), Err(Malformed::BadChecksum)); // options of zeros, sum wrong
    assert_eq!(spoil(&|f| f[16..18].copy_from_slice(&19u16.to_be_bytes()), true), Err(Malformed::BadLength));
    assert_eq!(spoil(&|f| f[16..18].copy_from_slice(&0xffffu16.to_be_bytes()), true), Err(Malformed::Truncated));
    assert_eq!(spoil(&|f| f[22] = 1, false), Err(Malformed::BadChecksum)); // TTL changed
    assert_eq!(spoil(&|f| f.truncate(14 + 19), false), Err(Malformed::Truncated));
    assert_eq!(spoil(&|f| f.truncate(14), false), Err(Malformed::Truncated));
    // A whole header, but the total length runs past the data.
    assert_eq!(ip_of(&good[..14 + 21]).map(|_| ()), Err(Malformed::Truncated));
    // Link padding after the total length is not payload.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xaa; 20]);
    assert_eq!(ip_of(&padded).unwrap().payload().len(), ip.payload().len());
}

#[test]
fn ipv4_with_options_parses() {
    // IHL 6: four bytes of options (NOPs) after the 20-byte header.
    let good = sample();
    let mut f = good[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&good[34..]);
    f[14] = 0x46;
    let total = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[24..26].fill(0);
    let sum = internet_checksum(&f[14..38]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    let udp = udp_of(&f).unwrap();
    assert_eq!((udp.src_port, udp.dst_port), (68, 67));
}

#[test]
fn udp_checks() {
    let good = sample();
    let udp = udp_of(&good).unwrap();
    assert_eq!((udp.src_port, udp.dst_port, udp.payload.len()), (68, 67, 300));

    let spoil = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut f = good.clone();
        change(&mut f);
        udp_of(&f).map(|_| ())
    };
    assert_eq!(spoil(&|f| f[38..40].copy_from_slice(&7u16.to_be_bytes())), Err(Malformed::BadLength));
    assert_eq!(spoil(&|f| f[38..40].copy_from_slice(&309u16.to_be_bytes())), Err(Malformed::Truncated));
    assert_eq!(spoil(&|f| f[100] ^= 1), Err(Malformed::BadChecksum));
    // No checksum (zero) is accepted whatever the data.
    assert_eq!(
        spoil(&|f| {
            f[40..42].fill(0);
            f[100] ^= 1;
        }),
        Ok(())
    );
    // Not UDP, and fragments.
    let refix = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut f = good.clone();
        change(&mut f);
        fix_ip_checksum(&mut f);
        udp_of(&f).map(|_| ())
    };
    assert_eq!(refix(&|f| f[23] = 6), Err(Malformed::WrongProtocol));
    assert_eq!(refix(&|f| f[20] = 0x20), Err(Malformed::Fragment)); // more fragments
    assert_eq!(refix(&|f| f[21] = 0x01), Err(Malformed::Fragment)); // offset 8
    assert_eq!(refix(&|f| f[20] = 0x40), Ok(())); // don't fragment is fine
                                                  // IP total length cutting the UDP header or datagram short.
    assert_eq!(refix(&|f| f[16..18].copy_from_slice(&(20u16 + 7).to_be_bytes())), Err(Malformed::Truncated));
    assert_eq!(refix(&|f| f[16..18].copy_from_slice(&(20u16 + 100).to_be_bytes())), Err(Malformed::Truncated));
}

#[test]
fn built_frames_round_trip() {
    let to = Addressing {
        src_mac: GUEST_MAC,
        dst_mac: MacAddr::BROADCAST,
        src_ip: Ipv4Addr::new(10, 0, 0, 1),
        dst_ip: Ipv4Addr::new(10, 0, 0, 2),
    };
    for len in [0usize, 1, 17, 18, 1472] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let frame = udp::build_frame(&to, 0x10, 16, 1234, 5678, &payload).unwrap();
        assert!(frame.len() >= ethernet::MIN_FRAME_LEN);
        assert_eq!(frame.len(), (14 + 20 + 8 + len).max(60));
        let udp = udp_of(&frame).unwrap();
        assert_eq!((udp.src_port, udp.dst_port, udp.payload), (1234, 5678, &payload[..]));
        let ip = ip_of(&frame).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.ttl()), (to.src_ip, to.dst_ip, 16));
        assert_eq!(frame[15], 0x10);
    }
    // Too long for one packet.
    assert!(udp::build_frame(&to, 0, 1, 1, 2, &vec![0; 65_536 - 28]).is_none());
    assert!(udp::build_frame(&to, 0, 1, 1, 2, &vec![0; 65_535 - 28]).is_some());
}

#[test]
fn udp_checksum_zero_is_sent_as_ones() {
    // Find a payload whose checksum comes to zero: adjust two bytes until it does.
    let to = Addressing {
        src_mac: GUEST_MAC,
        dst_mac: GUEST_MAC,
        src_ip: Ipv4Addr::new(1, 2, 3, 4),
        dst_ip: Ipv4Addr::new(5, 6, 7, 8),
    };
    let frame = udp::build_frame(&to, 0, 1, 1, 2, &[0, 0]).unwrap();
    let sum = u16::from_be_bytes([frame[40], frame[41]]);
    // Adding `sum` as a data word makes the one's complement sum 0xffff, the checksum 0.
    let frame = udp::build_frame(&to, 0, 1, 1, 2, &sum.to_be_bytes()).unwrap();
    assert_eq!(&frame[40..42], &[0xff, 0xff]);
    assert!(udp_of(&frame).is_ok());
}
