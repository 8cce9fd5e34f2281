//! ICMP echo (RFC 792) for the host side of a local interface: an echo request to the host-side
//! address gets an echo reply with the same identifier, sequence number and data (RFC 1122
//! 3.2.2.6). Nothing else of ICMP.
//!
//! Not answered: fragments (nothing reassembles), requests from a broadcast, multicast or
//! unspecified source (RFC 1122 3.2.2.6 and 3.2.1.3: no reply to those), a bad ICMP checksum.
//! IP options of the request are not reflected: the reply has a plain 20-byte header.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::checksum::internet_checksum;
use crate::ethernet::{self, EthernetFrame};
use crate::ipv4::{self, Addressing, HeaderFields, Ipv4Packet, PROTO_ICMP};
use crate::MacAddr;

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// Type, code, checksum, identifier, sequence number.
const HEADER_LEN: usize = 8;
/// The TTL of replies: the usual host default (RFC 1700 recommended 64).
const REPLY_TTL: u8 = 64;

/// The echo reply frame to an echo request sent to `host_mac` and `host_ip`, or `None` if the
/// frame is not one. The reply goes back to the request's source MAC.
pub fn answer(frame: &[u8], host_mac: MacAddr, host_ip: Ipv4Addr) -> Option<Vec<u8>> {
    let eth = EthernetFrame::parse(frame).ok()?;
    if eth.dst() != host_mac {
        return None;
    }
    let ip = Ipv4Packet::in_frame(&eth).ok()?;
    let icmp = ip.payload();
    if ip.protocol() != PROTO_ICMP || ip.is_fragment() || ip.dst() != host_ip || icmp.len() < HEADER_LEN {
        return None;
    }
    let src = ip.src();
    if src.is_broadcast() || src.is_multicast() || src.is_unspecified() || eth.src().is_group() {
        return None;
    }
    if icmp[0] != TYPE_ECHO_REQUEST || icmp[1] != 0 || internet_checksum(icmp) != 0 {
        return None;
    }
    let to = Addressing { src_mac: host_mac, dst_mac: eth.src(), src_ip: host_ip, dst_ip: src };
    build(&to, TYPE_ECHO_REPLY, &icmp[4..])
}

/// An echo request frame, as a guest's ping would send it (tests and tools use it).
pub fn echo_request(to: &Addressing, identifier: u16, sequence: u16, data: &[u8]) -> Option<Vec<u8>> {
    let mut rest = Vec::with_capacity(4 + data.len());
    rest.extend_from_slice(&identifier.to_be_bytes());
    rest.extend_from_slice(&sequence.to_be_bytes());
    rest.extend_from_slice(data);
    build(to, TYPE_ECHO_REQUEST, &rest)
}

/// An ICMP message of `icmp_type` (code 0) with `rest` after the checksum, in a frame; `None`
/// if it does not fit one packet (a reply never is: it is as long as its request).
fn build(to: &Addressing, icmp_type: u8, rest: &[u8]) -> Option<Vec<u8>> {
    let icmp_len = 4 + rest.len();
    let mut frame = Vec::with_capacity(ethernet::HEADER_LEN + ipv4::HEADER_LEN + icmp_len);
    let fields = HeaderFields { tos: 0, ttl: REPLY_TTL, protocol: PROTO_ICMP };
    ipv4::write_headers(&mut frame, to, fields, icmp_len)?;
    let start = frame.len();
    frame.extend_from_slice(&[icmp_type, 0, 0, 0]);
    frame.extend_from_slice(rest);
    let checksum = internet_checksum(&frame[start..]);
    frame[start + 2..start + 4].copy_from_slice(&checksum.to_be_bytes());
    ethernet::pad(&mut frame);
    Some(frame)
}
