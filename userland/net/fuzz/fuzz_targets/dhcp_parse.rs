//! One frame from a guest through the host side of a local interface: the DHCP parser and
//! server, ARP and ICMP echo. Byte 0 picks fix-ups, so that mutations get past the checksums
//! to the BOOTP fields and options: bit 0 recomputes the IPv4 header checksum, bit 1 the UDP or
//! ICMP checksum, bit 2 makes the VM network-booted. The rest is the frame.
//! Checks: nothing panics; an answer is a frame the crate's own checked parsers accept, from
//! the host-side MAC; a DHCP reply goes from port 67 to 68, has at least 300 bytes of BOOTP,
//! the request's xid, and offers the guest's address (or none, in a NAK).
#![no_main]

use keel_net::checksum::{internet_checksum, Checksum};
use keel_net::dhcp::{self, DhcpServer, ReplyKind};
use keel_net::ethernet::EthernetFrame;
use keel_net::host::{HostAnswer, HostSide};
use keel_net::ipv4::{Ipv4Packet, PROTO_ICMP, PROTO_UDP};
use keel_net::udp::UdpDatagram;
use keel_net::{local, MacAddr};
use libfuzzer_sys::fuzz_target;

const GUEST_MAC: MacAddr = MacAddr([0xfe, 0xe1, 0xba, 0xd0, 0x00, 0x01]);

/// Recomputes the checksums the flags ask for, where the lengths allow.
fn fix_checksums(frame: &mut [u8], flags: u8) {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let header_len = usize::from(frame[14] & 0x0f) * 4;
    if header_len < 20 || frame.len() < 14 + header_len {
        return;
    }
    if flags & 1 != 0 {
        frame[24..26].fill(0);
        let sum = internet_checksum(&frame[14..14 + header_len]);
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
    }
    if flags & 2 == 0 {
        return;
    }
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let end = (14 + total).min(frame.len());
    let start = 14 + header_len;
    if end < start + 8 {
        return;
    }
    let (src, dst) = (&frame[26..30], &frame[30..34]);
    match frame[23] {
        PROTO_UDP => {
            let udp_len = u16::from_be_bytes([frame[start + 4], frame[start + 5]]);
            let udp_end = start + usize::from(udp_len);
            if udp_end > end || usize::from(udp_len) < 8 {
                return;
            }
            let mut sum = Checksum::new();
            sum.add(src).add(dst).add_u16(u16::from(PROTO_UDP)).add_u16(udp_len);
            frame[start + 6..start + 8].fill(0);
            let value = match sum.add(&frame[start..udp_end]).finish() {
                0 => 0xffff,
                c => c,
            };
            frame[start + 6..start + 8].copy_from_slice(&value.to_be_bytes());
        }
        PROTO_ICMP => {
            frame[start + 2..start + 4].fill(0);
            let value = internet_checksum(&frame[start..end]);
            frame[start + 2..start + 4].copy_from_slice(&value.to_be_bytes());
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, frame)) = data.split_first() else { return };
    let mut frame = frame.to_vec();
    fix_checksums(&mut frame, flags);

    let addrs = local::addrs(&local::DEFAULT_PREFIX, 1, 0).unwrap();
    let host_mac = MacAddr::host_side_of(GUEST_MAC);
    let mut server = DhcpServer::new(GUEST_MAC, host_mac, addrs);
    if flags & 4 != 0 {
        server = server.with_net_boot("vm1.example");
    }
    let _ = dhcp::parse(&frame);
    let request_xid = dhcp::parse(&frame).ok().map(|m| m.xid());
    let answer = HostSide::new(server).answer(&frame);
    let reply = match &answer {
        HostAnswer::None => return,
        HostAnswer::Dhcp(_, f) | HostAnswer::Arp(f) | HostAnswer::Echo(f) => f,
    };
    let eth = EthernetFrame::parse(reply).expect("answer is a frame");
    assert_eq!(eth.src(), host_mac);
    match answer {
        HostAnswer::Dhcp(kind, _) => {
            let ip = Ipv4Packet::in_frame(&eth).expect("DHCP reply IPv4");
            let udp = UdpDatagram::parse(&ip).expect("DHCP reply UDP");
            assert_eq!((udp.src_port, udp.dst_port), (dhcp::SERVER_PORT, dhcp::CLIENT_PORT));
            let bootp = udp.payload;
            assert!(bootp.len() >= dhcp::BOOTP_MIN_LEN);
            assert_eq!(Some(bootp[4..8].try_into().unwrap()), request_xid);
            let yiaddr = &bootp[16..20];
            let expected = if kind == ReplyKind::Nak { [0; 4] } else { addrs.guest.octets() };
            assert_eq!(yiaddr, expected);
        }
        HostAnswer::Echo(_) => {
            let ip = Ipv4Packet::in_frame(&eth).expect("echo reply IPv4");
            assert_eq!(internet_checksum(ip.payload()), 0);
        }
        _ => {}
    }
});
