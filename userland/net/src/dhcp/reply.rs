//! The reply frame: the BOOTP fixed part (RFC 2131 table 3), the options vmd's dhcp.c sends,
//! padded to BOOTP's 300 bytes, inside UDP/IPv4/Ethernet with vmd's header fields. What goes in
//! which reply is in the module doc of [`super`].

use super::message::{self, msg, opt, Message, AT_CHADDR, AT_FILE, AT_FLAGS, AT_GIADDR, AT_SIADDR, AT_XID, AT_YIADDR};
use super::{reply_destination, DhcpServer, ReplyKind, CLIENT_PORT, LEASE_TIME_INFINITE, NET_BOOT_FILE, SERVER_PORT};
use crate::ipv4::Addressing;
use crate::local;
use crate::udp;
use alloc::vec::Vec;

/// IPTOS_LOWDELAY, as vmd's packet.c sets it.
const TOS_LOW_DELAY: u8 = 0x10;
/// vmd's packet.c: TTL 16.
const TTL: u8 = 16;

pub(super) fn build(server: &DhcpServer, request: &Message<'_>, kind: ReplyKind) -> Vec<u8> {
    let nak = kind == ReplyKind::Nak;
    let host = server.addrs.host;
    let mut bootp = Vec::with_capacity(message::BOOTP_MIN_LEN);
    bootp.resize(message::FIXED_LEN, 0);
    bootp[0] = message::OP_BOOTREPLY;
    bootp[1] = request.htype();
    bootp[2] = request.hlen();
    bootp[AT_XID..AT_XID + 4].copy_from_slice(&request.xid());
    bootp[AT_FLAGS..AT_FLAGS + 2].copy_from_slice(&request.flags().to_be_bytes());
    if !nak {
        bootp[AT_YIADDR..AT_YIADDR + 4].copy_from_slice(&server.addrs.guest.octets());
        bootp[AT_SIADDR..AT_SIADDR + 4].copy_from_slice(&host.octets());
    }
    bootp[AT_GIADDR..AT_GIADDR + 4].copy_from_slice(&request.giaddr().octets());
    bootp[AT_CHADDR..AT_CHADDR + 6].copy_from_slice(&server.guest_mac.0);
    let net_boot = server.net_boot.as_ref().filter(|_| !nak);
    if net_boot.is_some() {
        bootp[AT_FILE..AT_FILE + NET_BOOT_FILE.len()].copy_from_slice(NET_BOOT_FILE.as_bytes());
    }

    bootp.extend_from_slice(&message::MAGIC_COOKIE);
    let message_type = match kind {
        ReplyKind::Offer => Some(msg::OFFER),
        ReplyKind::Ack => Some(msg::ACK),
        ReplyKind::Nak => Some(msg::NAK),
        ReplyKind::Bootp => None,
    };
    if let Some(t) = message_type {
        push_option(&mut bootp, opt::MESSAGE_TYPE, &[t]);
        if !nak {
            push_option(&mut bootp, opt::LEASE_TIME, &LEASE_TIME_INFINITE.to_be_bytes());
        }
        push_option(&mut bootp, opt::SERVER_ID, &host.octets());
    }
    if !nak {
        push_option(&mut bootp, opt::SUBNET_MASK, &local::NETMASK.octets());
        push_option(&mut bootp, opt::ROUTERS, &host.octets());
        push_option(&mut bootp, opt::DOMAIN_NAME_SERVERS, &host.octets());
        if let Some(name) = net_boot.and_then(|b| b.host_name.as_deref()) {
            push_option(&mut bootp, opt::HOST_NAME, name.as_bytes());
        }
    }
    bootp.push(opt::END);
    if bootp.len() < message::BOOTP_MIN_LEN {
        bootp.resize(message::BOOTP_MIN_LEN, 0);
    }

    let (dst_mac, dst_ip) = reply_destination(kind, request.flags(), server.guest_mac, server.addrs.guest);
    let to = Addressing { src_mac: server.host_mac, dst_mac, src_ip: host, dst_ip };
    // At most a few hundred bytes: always fits one packet.
    udp::build_frame(&to, TOS_LOW_DELAY, TTL, SERVER_PORT, CLIENT_PORT, &bootp).unwrap_or_default()
}

/// Code, length, value. Every value here is at most 255 bytes (a host name is checked for it).
fn push_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    let Ok(len) = u8::try_from(value.len()) else { return };
    out.push(code);
    out.push(len);
    out.extend_from_slice(value);
}
