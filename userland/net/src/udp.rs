//! UDP datagrams (RFC 768) inside a checked IPv4 packet: the length field is at least 8 and
//! within the IP payload (bytes after it are ignored), and a non-zero checksum must verify
//! against the pseudo-header. A zero checksum means the sender computed none (RFC 768).
//! Fragments are refused.
//!
//! Note for the device glue: a guest that was offered VIRTIO_NET_F_CSUM may leave the checksum
//! partial; such frames must be completed before they reach this parser.
//!
//! Building: a whole Ethernet/IPv4/UDP frame with both checksums.

use alloc::vec::Vec;

use crate::ethernet;
use crate::ipv4::{self, Addressing, HeaderFields, Ipv4Packet, PROTO_UDP};
use crate::Malformed;

pub const HEADER_LEN: usize = 8;

/// A checked datagram, borrowing its payload.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    pub fn parse(ip: &Ipv4Packet<'a>) -> Result<Self, Malformed> {
        if ip.protocol() != PROTO_UDP {
            return Err(Malformed::WrongProtocol);
        }
        if ip.is_fragment() {
            return Err(Malformed::Fragment);
        }
        let bytes = ip.payload();
        if bytes.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        let length = u16::from_be_bytes([bytes[4], bytes[5]]);
        let len = usize::from(length);
        if len < HEADER_LEN {
            return Err(Malformed::BadLength);
        }
        if len > bytes.len() {
            return Err(Malformed::Truncated);
        }
        let datagram = &bytes[..len];
        let checksum = u16::from_be_bytes([bytes[6], bytes[7]]);
        if checksum != 0 {
            let mut sum = Ipv4Packet::pseudo_header(ip.src(), ip.dst(), PROTO_UDP, length);
            if sum.add(datagram).finish() != 0 {
                return Err(Malformed::BadChecksum);
            }
        }
        Ok(Self {
            src_port: u16::from_be_bytes([bytes[0], bytes[1]]),
            dst_port: u16::from_be_bytes([bytes[2], bytes[3]]),
            payload: &datagram[HEADER_LEN..],
        })
    }
}

/// A whole frame: Ethernet, IPv4 (`tos`, `ttl`), UDP from `src_port` to `dst_port` with
/// `payload`, padded to the Ethernet minimum. `None` if the payload does not fit one packet.
pub fn build_frame(to: &Addressing, tos: u8, ttl: u8, src_port: u16, dst_port: u16, payload: &[u8]) -> Option<Vec<u8>> {
    let udp_len = HEADER_LEN.checked_add(payload.len())?;
    let length = u16::try_from(udp_len).ok()?;
    let mut frame = Vec::with_capacity(ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp_len);
    ipv4::write_headers(&mut frame, to, HeaderFields { tos, ttl, protocol: PROTO_UDP }, udp_len)?;
    let start = frame.len();
    frame.extend_from_slice(&src_port.to_be_bytes());
    frame.extend_from_slice(&dst_port.to_be_bytes());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    let mut sum = Ipv4Packet::pseudo_header(to.src_ip, to.dst_ip, PROTO_UDP, length);
    // RFC 768: a computed checksum of zero is sent as all ones (zero means "none").
    let checksum = match sum.add(&frame[start..]).finish() {
        0 => 0xffff,
        c => c,
    };
    frame[start + 6..start + 8].copy_from_slice(&checksum.to_be_bytes());
    ethernet::pad(&mut frame);
    Some(frame)
}
