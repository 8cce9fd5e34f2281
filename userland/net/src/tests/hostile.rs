//! Random and mutated input through every parser and answerer: nothing panics, and whatever is
//! answered is a well-formed frame. (The fuzz targets do this far longer; these run in
//! `cargo test`, repeatably.)

use super::{addrs, host_mac, Request, Rng, GUEST_MAC};
use crate::dhcp::{self, DhcpServer};
use crate::ethernet::{self, EthernetFrame};
use crate::host::{HostAnswer, HostSide};
use crate::ipv4::{Addressing, Ipv4Packet};
use crate::switch::{Switch, SwitchConfig};
use crate::udp::UdpDatagram;
use crate::{arp, icmp, MacAddr};

/// Seeds to mutate: a frame of each kind the host side answers.
fn seeds() -> Vec<Vec<u8>> {
    let host = addrs().host;
    let to = Addressing { src_mac: GUEST_MAC, dst_mac: host_mac(), src_ip: addrs().guest, dst_ip: host };
    vec![
        Request::discover().frame(),
        Request::selecting(addrs().guest, Some(host)).frame(),
        Request::bootp().frame(),
        arp::request(GUEST_MAC, addrs().guest, host),
        icmp::echo_request(&to, 1, 2, b"abcdefgh").unwrap(),
    ]
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !frame.is_empty() => {
                let at = rng.below(frame.len());
                frame[at] = rng.next() as u8;
            }
            1 if !frame.is_empty() => {
                let at = rng.below(frame.len());
                frame[at] ^= 1 << rng.below(8);
            }
            2 => frame.truncate(rng.below(frame.len() + 1)),
            3 => frame.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            _ if frame.len() > 14 + 20 => {
                // Keep the IP header checksum right so the mutation gets deeper.
                let header_len = usize::from(frame[14] & 0x0f) * 4;
                if header_len >= 20 && frame.len() >= 14 + header_len {
                    frame[24..26].fill(0);
                    let sum = crate::checksum::internet_checksum(&frame[14..14 + header_len]);
                    frame[24..26].copy_from_slice(&sum.to_be_bytes());
                }
            }
            _ => {}
        }
    }
}

/// An answer must parse with the crate's own checked parsers.
fn check_answer(answer: &HostAnswer) {
    let frame = match answer {
        HostAnswer::Dhcp(_, f) | HostAnswer::Arp(f) | HostAnswer::Echo(f) => f,
        HostAnswer::None => return,
    };
    assert!(frame.len() >= ethernet::MIN_FRAME_LEN);
    let eth = EthernetFrame::parse(frame).unwrap();
    assert_eq!(eth.src(), host_mac());
    if let HostAnswer::Dhcp(..) = answer {
        let ip = Ipv4Packet::in_frame(&eth).unwrap();
        let udp = UdpDatagram::parse(&ip).unwrap();
        assert_eq!((udp.src_port, udp.dst_port), (67, 68));
        assert!(udp.payload.len() >= dhcp::BOOTP_MIN_LEN);
    }
    if let HostAnswer::Echo(_) = answer {
        assert!(Ipv4Packet::in_frame(&eth).is_ok());
    }
}

#[test]
fn mutated_frames_through_host_side_and_switch() {
    let side = HostSide::new(DhcpServer::new(GUEST_MAC, host_mac(), addrs()).with_net_boot("vm1"));
    let mut sw = Switch::new(SwitchConfig { max_addresses: 16, queue_len: 4, ..SwitchConfig::default() });
    let ports: Vec<_> = (0..4).map(|i| sw.add_port((i == 0).then_some(GUEST_MAC), 0).unwrap()).collect();
    let mut rng = Rng::new(0x6b65_656c);
    let seeds = seeds();
    let mut answered = 0;
    for round in 0..20_000u64 {
        let mut frame = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut frame);
        let answer = side.answer(&frame);
        if answer != HostAnswer::None {
            answered += 1;
        }
        check_answer(&answer);
        let _ = dhcp::parse(&frame);
        let port = ports[rng.below(ports.len())];
        let _ = sw.forward(port, &frame, round * 1_000_000);
        let _ = sw.enqueue(port, frame);
        if round % 3 == 0 {
            let _ = sw.forward_next(round * 1_000_000);
        }
    }
    // The mutations leave a fair share intact or harmlessly changed.
    assert!(answered > 1000, "answered {answered}");
    let snapshot = sw.snapshot(20_000 * 1_000_000);
    assert!(snapshot.table.len() <= 16);
    let _ = snapshot.to_string();
}

#[test]
fn random_bytes_everywhere() {
    let server = DhcpServer::new(GUEST_MAC, host_mac(), addrs());
    let mut rng = Rng::new(42);
    for _ in 0..20_000 {
        let len = rng.below(700);
        let mut frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if frame.len() > 14 && rng.below(2) == 0 {
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            frame[14] = 0x45;
        }
        assert!(server.answer(&frame).is_err());
        let _ = arp::answer(&frame, host_mac(), addrs().host);
        let _ = icmp::answer(&frame, host_mac(), addrs().host);
        let _ = dhcp::parse_options(&frame);
        let _ = MacAddr::host_side_of(MacAddr::BROADCAST);
    }
}
