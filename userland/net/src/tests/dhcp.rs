//! The DHCP server: what it answers and with what (vmd's dhcp.c, RFC 2131), what it ignores,
//! and hostile requests.

use std::net::Ipv4Addr;

use super::{addrs, host_mac, Request, GUEST_MAC, OTHER_MAC};
use crate::dhcp::message::{AT_CHADDR, AT_FILE, AT_FLAGS, AT_GIADDR, AT_SIADDR, AT_XID, AT_YIADDR};
use crate::dhcp::{self, msg, opt, DhcpServer, Ignored, NotDhcp, ReplyKind, MAGIC_COOKIE};
use crate::ethernet::EthernetFrame;
use crate::ipv4::Ipv4Packet;
use crate::udp::UdpDatagram;
use crate::{MacAddr, Malformed};

fn server() -> DhcpServer {
    DhcpServer::new(GUEST_MAC, host_mac(), addrs())
}

/// A reply, taken apart with the crate's own checked parsers.
#[derive(Debug)]
struct Reply {
    eth_dst: MacAddr,
    eth_src: MacAddr,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    tos: u8,
    ttl: u8,
    ports: (u16, u16),
    bootp: Vec<u8>,
    /// Every option in order, END last.
    options: Vec<(u8, Vec<u8>)>,
}

impl Reply {
    fn addr(&self, at: usize) -> Ipv4Addr {
        Ipv4Addr::new(self.bootp[at], self.bootp[at + 1], self.bootp[at + 2], self.bootp[at + 3])
    }

    fn option(&self, code: u8) -> Option<&[u8]> {
        self.options.iter().find(|(c, _)| *c == code).map(|(_, v)| &v[..])
    }

    fn codes(&self) -> Vec<u8> {
        self.options.iter().map(|(c, _)| *c).collect()
    }
}

fn decode(frame: &[u8]) -> Reply {
    let eth = EthernetFrame::parse(frame).unwrap();
    let ip = Ipv4Packet::in_frame(&eth).unwrap();
    let udp = UdpDatagram::parse(&ip).unwrap();
    let bootp = udp.payload.to_vec();
    assert!(bootp.len() >= 300, "BOOTP minimum");
    assert_eq!(&bootp[236..240], &MAGIC_COOKIE);
    let mut options = Vec::new();
    let mut at = 240;
    loop {
        let code = bootp[at];
        if code == opt::END {
            options.push((code, Vec::new()));
            break;
        }
        assert_ne!(code, opt::PAD, "no padding before END");
        let len = usize::from(bootp[at + 1]);
        options.push((code, bootp[at + 2..at + 2 + len].to_vec()));
        at += 2 + len;
    }
    assert!(bootp[at + 1..].iter().all(|&b| b == 0), "zeros after END");
    let header = &frame[14..34];
    Reply {
        eth_dst: eth.dst(),
        eth_src: eth.src(),
        ip_src: ip.src(),
        ip_dst: ip.dst(),
        tos: header[1],
        ttl: ip.ttl(),
        ports: (udp.src_port, udp.dst_port),
        bootp,
        options,
    }
}

fn answer(request: &Request) -> Result<(ReplyKind, Reply), Ignored> {
    server().answer(&request.frame()).map(|r| (r.kind, decode(&r.frame)))
}

const HOST: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 2);
const GUEST: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 3);

#[test]
fn discover_gets_offer_with_vmd_contents() {
    let (kind, r) = answer(&Request::discover()).unwrap();
    assert_eq!(kind, ReplyKind::Offer);
    // Ethernet and IP as vmd's dhcp.c and packet.c build them: unicast to the guest.
    assert_eq!((r.eth_dst, r.eth_src), (GUEST_MAC, host_mac()));
    assert_eq!((r.ip_src, r.ip_dst), (HOST, GUEST));
    assert_eq!((r.tos, r.ttl, r.ports), (0x10, 16, (67, 68)));
    // BOOTP fields.
    assert_eq!(&r.bootp[..4], &[2, 1, 6, 0]);
    assert_eq!(&r.bootp[AT_XID..AT_XID + 4], &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(r.addr(AT_YIADDR), GUEST);
    assert_eq!(r.addr(AT_SIADDR), HOST);
    assert_eq!(r.addr(AT_GIADDR), Ipv4Addr::UNSPECIFIED);
    assert_eq!(&r.bootp[AT_CHADDR..AT_CHADDR + 16], &[0xfe, 0xe1, 0xba, 0xd0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(r.bootp[AT_FILE..AT_FILE + 128].iter().all(|&b| b == 0));
    assert_eq!(r.bootp.len(), 300);
    // Options in vmd's order.
    assert_eq!(r.codes(), [53, 51, 54, 1, 3, 6, 255]);
    assert_eq!(r.option(opt::MESSAGE_TYPE), Some(&[msg::OFFER][..]));
    assert_eq!(r.option(opt::LEASE_TIME), Some(&[0xff, 0xff, 0xff, 0xff][..]));
    assert_eq!(r.option(opt::SERVER_ID), Some(&HOST.octets()[..]));
    assert_eq!(r.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 254][..]));
    assert_eq!(r.option(opt::ROUTERS), Some(&HOST.octets()[..]));
    assert_eq!(r.option(opt::DOMAIN_NAME_SERVERS), Some(&HOST.octets()[..]));
}

#[test]
fn request_gets_ack_or_nak() {
    // SELECTING: our address, our server.
    let (kind, r) = answer(&Request::selecting(GUEST, Some(HOST))).unwrap();
    assert_eq!(kind, ReplyKind::Ack);
    assert_eq!(r.option(opt::MESSAGE_TYPE), Some(&[msg::ACK][..]));
    assert_eq!(r.codes(), [53, 51, 54, 1, 3, 6, 255]);
    assert_eq!(r.addr(AT_YIADDR), GUEST);
    // INIT-REBOOT: our address, no server identifier.
    assert_eq!(answer(&Request::selecting(GUEST, None)).unwrap().0, ReplyKind::Ack);
    // No requested address at all (vmd: ACK), and 0.0.0.0 (vmd reads it as none).
    assert_eq!(answer(&Request::dhcp(msg::REQUEST)).unwrap().0, ReplyKind::Ack);
    assert_eq!(answer(&Request::selecting(Ipv4Addr::UNSPECIFIED, None)).unwrap().0, ReplyKind::Ack);
    // Another address: NAK, broadcast, only type and server identifier (RFC 2131 table 3).
    let (kind, r) = answer(&Request::selecting(Ipv4Addr::new(192, 168, 1, 9), None)).unwrap();
    assert_eq!(kind, ReplyKind::Nak);
    assert_eq!((r.eth_dst, r.ip_dst), (MacAddr::BROADCAST, Ipv4Addr::BROADCAST));
    assert_eq!(r.codes(), [53, 54, 255]);
    assert_eq!(r.option(opt::MESSAGE_TYPE), Some(&[msg::NAK][..]));
    assert_eq!(r.addr(AT_YIADDR), Ipv4Addr::UNSPECIFIED);
    assert_eq!(r.addr(AT_SIADDR), Ipv4Addr::UNSPECIFIED);
    // The guest's neighbour address is not its own either.
    assert_eq!(answer(&Request::selecting(HOST, Some(HOST))).unwrap().0, ReplyKind::Nak);
}

#[test]
fn request_for_another_server_is_ignored() {
    let other = Ipv4Addr::new(100, 64, 9, 2);
    assert_eq!(answer(&Request::selecting(GUEST, Some(other))).unwrap_err(), Ignored::OtherServer);
}

#[test]
fn message_types_not_answered() {
    for t in [0, msg::OFFER, msg::DECLINE, msg::ACK, msg::NAK, msg::RELEASE, msg::INFORM, 9, 200, 255] {
        assert_eq!(answer(&Request::dhcp(t)).unwrap_err(), Ignored::MessageType(t), "type {t}");
    }
}

#[test]
fn bootp_gets_bootreply() {
    let (kind, r) = answer(&Request::bootp()).unwrap();
    assert_eq!(kind, ReplyKind::Bootp);
    assert_eq!(r.codes(), [1, 3, 6, 255]);
    assert_eq!(r.addr(AT_YIADDR), GUEST);
    // A wrong cookie makes it BOOTP too.
    let mut req = Request::discover();
    req.options = None;
    let mut message = req.bootp_message();
    message[236..240].copy_from_slice(&[99, 130, 83, 98]);
    message.extend_from_slice(&[53, 1, 1, 255]);
    assert_eq!(server().answer(&frame_with_bootp(&req, &message)).unwrap().kind, ReplyKind::Bootp);
}

/// `req`'s frame with `message` as the BOOTP message.
fn frame_with_bootp(req: &Request, message: &[u8]) -> Vec<u8> {
    let to =
        crate::ipv4::Addressing { src_mac: req.eth_src, dst_mac: req.eth_dst, src_ip: req.src_ip, dst_ip: req.dst_ip };
    crate::udp::build_frame(&to, 0, 64, req.src_port, req.dst_port, message).unwrap()
}

#[test]
fn broadcast_flag_and_relay_fields_are_honoured() {
    let mut req = Request::discover();
    req.flags = 0x8000;
    let (_, r) = answer(&req).unwrap();
    assert_eq!((r.eth_dst, r.ip_dst), (MacAddr::BROADCAST, Ipv4Addr::BROADCAST));
    assert_eq!(&r.bootp[AT_FLAGS..AT_FLAGS + 2], &[0x80, 0]);
    // Other flag bits (reserved) are copied too, but do not ask for broadcast.
    req.flags = 0x0001;
    let (_, r) = answer(&req).unwrap();
    assert_eq!((r.eth_dst, r.ip_dst), (GUEST_MAC, GUEST));
}

#[test]
fn sent_to_host_mac_is_answered() {
    let mut req = Request::selecting(GUEST, Some(HOST));
    req.eth_dst = host_mac();
    req.dst_ip = HOST;
    assert_eq!(answer(&req).unwrap().0, ReplyKind::Ack);
}

#[test]
fn ignored_requests() {
    let cases: Vec<(&str, Request, Ignored)> = vec![
        ("to another MAC", Request { eth_dst: OTHER_MAC, ..Request::discover() }, Ignored::NotForUs),
        ("from another MAC", Request { eth_src: OTHER_MAC, ..Request::discover() }, Ignored::NotFromGuest),
        ("chaddr not the guest", Request { chaddr: OTHER_MAC, ..Request::discover() }, Ignored::NotFromGuest),
        ("htype not Ethernet", Request { htype: 6, ..Request::discover() }, Ignored::NotFromGuest),
        ("hlen not 6", Request { hlen: 16, ..Request::discover() }, Ignored::NotFromGuest),
        ("a BOOTREPLY", Request { op: 2, ..Request::discover() }, Ignored::NotRequest),
        ("op 0", Request { op: 0, ..Request::discover() }, Ignored::NotRequest),
        ("ciaddr set (renewing)", Request { ciaddr: GUEST, ..Request::selecting(GUEST, None) }, Ignored::Unsupported),
        ("boot file asked for", Request { file: b"bsd.rd", ..Request::discover() }, Ignored::Unsupported),
        ("relayed", Request { hops: 1, ..Request::discover() }, Ignored::Unsupported),
        ("to port 68", Request { dst_port: 68, ..Request::discover() }, Ignored::NotDhcp(NotDhcp::Ports)),
        ("from port 67", Request { src_port: 67, ..Request::discover() }, Ignored::NotDhcp(NotDhcp::Ports)),
        ("DNS", Request { dst_port: 53, src_port: 5353, ..Request::discover() }, Ignored::NotDhcp(NotDhcp::Ports)),
        ("short of 300", Request { pad_to: 272 - 1, options: None, ..Request::discover() }, Ignored::FrameLength),
    ];
    for (what, req, why) in cases {
        assert_eq!(answer(&req).unwrap_err(), why, "{what}");
    }
}

#[test]
fn frame_length_bounds_are_vmds() {
    // 314 bytes: the smallest frame answered (14 + 20 + 8 + 272 of BOOTP).
    let req = Request { pad_to: 272, ..Request::discover() };
    let frame = req.frame();
    assert_eq!(frame.len(), 314);
    assert!(server().answer(&frame).is_ok());
    assert_eq!(server().answer(&frame[..313]), Err(Ignored::FrameLength));
    // 1514: the largest.
    let req = Request { pad_to: 1500 - 28, ..Request::discover() };
    assert_eq!(req.frame().len(), 1514);
    assert!(server().answer(&req.frame()).is_ok());
    let req = Request { pad_to: 1500 - 28 + 1, ..Request::discover() };
    assert_eq!(server().answer(&req.frame()), Err(Ignored::FrameLength));
}

#[test]
fn not_ipv4_udp_at_all() {
    let good = Request::discover().frame();
    let mut tagged = good[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    tagged.extend_from_slice(&good[12..]);
    assert_eq!(server().answer(&tagged), Err(Ignored::NotDhcp(NotDhcp::Malformed(Malformed::WrongProtocol))));
    let mut bad_sum = good.clone();
    bad_sum[300] ^= 0x40;
    assert_eq!(server().answer(&bad_sum), Err(Ignored::NotDhcp(NotDhcp::Malformed(Malformed::BadChecksum))));
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(server().answer(&arp), Err(Ignored::NotDhcp(NotDhcp::Malformed(Malformed::WrongProtocol))));
}

/// A DISCOVER-sized request with `options` after the cookie, exactly (no END or padding added).
fn with_options(options: &[u8]) -> Request {
    Request { options: Some(options.to_vec()), pad_to: 0, ..Request::discover() }
}

fn parsed_options(options: &[u8]) -> dhcp::Options<'_> {
    dhcp::parse_options(options)
}

#[test]
fn option_walk_is_bounded() {
    let walk = |tail: &[u8]| {
        let mut area = MAGIC_COOKIE.to_vec();
        area.extend_from_slice(tail);
        let o = parsed_options(&area);
        (o.message_type, o.requested_address, o.server_id, o.parameter_list.to_vec())
    };
    // Pads, then the type.
    assert_eq!(walk(&[0, 0, 0, 53, 1, 3]).0, Some(3));
    // END stops the walk.
    assert_eq!(walk(&[255, 53, 1, 3]).0, None);
    // An option running past the end stops it; those before are kept.
    assert_eq!(walk(&[53, 1, 1, 50, 4, 1, 2]), (Some(1), None, None, vec![]));
    // A lone code byte at the end, no length.
    assert_eq!(walk(&[53, 1, 1, 54]).0, Some(1));
    // The vmd out-of-bounds case: an option ending exactly at the area's end, no END.
    assert_eq!(walk(&[53, 1, 2]).0, Some(2));
    assert_eq!(walk(&[12, 3, b'a', b'b', b'c']).0, None);
    // Wrong lengths are skipped, not misread.
    assert_eq!(walk(&[53, 2, 1, 1, 50, 3, 1, 2, 3, 54, 5, 1, 2, 3, 4, 5]), (None, None, None, vec![]));
    // The last of a repeated option counts.
    assert_eq!(walk(&[53, 1, 1, 53, 1, 3]).0, Some(3));
    // Overload (52) is not followed.
    assert_eq!(walk(&[52, 1, 3, 53, 1, 1]).0, Some(1));
    // Long options (255 bytes) are skipped whole.
    let mut long = vec![43, 255];
    long.extend_from_slice(&[53; 255]);
    long.extend_from_slice(&[53, 1, 3, 55, 2, 1, 3]);
    assert_eq!(walk(&long), (Some(3), None, None, vec![1, 3]));
    // Empty area after the cookie, and no cookie.
    assert_eq!(walk(&[]).0, None);
    assert!(!parsed_options(&[99, 130, 83]).cookie);
    assert!(parsed_options(&MAGIC_COOKIE).cookie);
}

#[test]
fn hostile_options_in_frames() {
    // Every request padded to the minimum, so only the options are odd.
    let mut discover_overlong = vec![53, 1, 1, 43, 200];
    discover_overlong.extend_from_slice(&[0xaa; 10]);
    for (options, expected) in [
        (vec![53, 1, 1], Ok(ReplyKind::Offer)),        // no END
        (vec![53, 1, 1, 53, 7], Ok(ReplyKind::Offer)), // truncated option after
        (discover_overlong, Ok(ReplyKind::Offer)),
        (vec![53, 0], Ok(ReplyKind::Bootp)),   // type without value: not DHCP
        (vec![53, 255], Ok(ReplyKind::Bootp)), // type running past the end
        (vec![0; 40], Ok(ReplyKind::Bootp)),   // only padding
        (vec![53, 1, 3, 50, 4, 100, 64, 1, 3], Ok(ReplyKind::Ack)),
        (vec![53, 1, 3, 50, 4, 100, 64, 1, 4], Ok(ReplyKind::Nak)),
        (vec![53, 1, 3, 54, 4, 100, 64, 1, 2, 50, 4, 100, 64, 1, 3], Ok(ReplyKind::Ack)),
    ] {
        let mut req = with_options(&options);
        req.pad_to = 300.max(236 + 4 + options.len());
        let got = server().answer(&req.frame()).map(|r| r.kind);
        assert_eq!(got, expected, "{options:?}");
    }
}

#[test]
fn every_truncation_is_harmless() {
    let frame = Request::selecting(GUEST, Some(HOST)).frame();
    for len in 0..frame.len() {
        let _ = dhcp::parse(&frame[..len]);
        assert!(server().answer(&frame[..len]).is_err(), "cut at {len}");
    }
    // A BOOTP message shorter than its fixed part inside a frame of legal length.
    let req = Request { options: None, pad_to: 0, ..Request::discover() };
    let mut message = req.bootp_message();
    message.truncate(200);
    let mut frame = frame_with_bootp(&req, &message);
    frame.resize(400, 0);
    assert_eq!(server().answer(&frame), Err(Ignored::NotDhcp(NotDhcp::Short)));
}

#[test]
fn net_boot_adds_file_and_host_name() {
    let server = server().with_net_boot("web.example");
    let (r, kind) = {
        let reply = server.answer(&Request::discover().frame()).unwrap();
        (decode(&reply.frame), reply.kind)
    };
    assert_eq!(kind, ReplyKind::Offer);
    assert_eq!(&r.bootp[AT_FILE..AT_FILE + 13], b"auto_install\0");
    assert_eq!(r.codes(), [53, 51, 54, 1, 3, 6, 12, 255]);
    assert_eq!(r.option(opt::HOST_NAME), Some(&b"web.example"[..]));
    // Not a host name, or one character: file only (vmd: res_hnok, length > 1).
    for name in ["x", "-web", "web-", "we b", "web_", "ünï"] {
        let server = self::server().with_net_boot(name);
        let r = decode(&server.answer(&Request::discover().frame()).unwrap().frame);
        assert_eq!(r.option(opt::HOST_NAME), None, "{name}");
        assert_eq!(&r.bootp[AT_FILE..AT_FILE + 12], b"auto_install");
    }
    // NAKs carry neither.
    let nak = server.answer(&Request::selecting(HOST, None).frame()).unwrap();
    let r = decode(&nak.frame);
    assert_eq!(r.codes(), [53, 54, 255]);
    assert!(r.bootp[AT_FILE..AT_FILE + 128].iter().all(|&b| b == 0));
}

#[test]
fn host_names() {
    for good in ["a1", "web", "web-1", "web_1.example", "a.b", "1", "a..b", "A9"] {
        assert!(dhcp::is_host_name(good), "{good}");
    }
    for bad in ["", "-a", "a-", "_a", "a_", "a b", "a/b", "a.-b", "é"] {
        assert!(!dhcp::is_host_name(bad), "{bad}");
    }
}
