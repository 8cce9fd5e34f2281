//! IPv4 headers (RFC 791), checked: version 4, IHL at least 5 and within the data, total length
//! at least the header and within the data (bytes after it are link padding, ignored), header
//! checksum (RFC 1071). Options are skipped, never interpreted. Fragments parse, and say so
//! ([`Ipv4Packet::is_fragment`]): the layers above refuse them, since nothing here reassembles.
//!
//! Building: a 20-byte header without options, with its checksum, for the replies the host side
//! sends.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::checksum::{internet_checksum, Checksum};
use crate::ethernet::{self, ETHERTYPE_IPV4};
use crate::{MacAddr, Malformed};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_UDP: u8 = 17;

/// The header without options.
pub const HEADER_LEN: usize = 20;
/// The most a packet (header and payload) can be: the total length field is 16 bits.
pub const MAX_PACKET_LEN: usize = 0xffff;

/// More-fragments flag and fragment offset in the flags/offset word.
const MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET: u16 = 0x1fff;

/// A checked packet, borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    header: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Malformed> {
        let first = *bytes.first().ok_or(Malformed::Truncated)?;
        if first >> 4 != 4 {
            return Err(Malformed::WrongProtocol);
        }
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < HEADER_LEN {
            return Err(Malformed::BadLength);
        }
        if bytes.len() < header_len {
            return Err(Malformed::Truncated);
        }
        let total_len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if total_len < header_len {
            return Err(Malformed::BadLength);
        }
        if bytes.len() < total_len {
            return Err(Malformed::Truncated);
        }
        let header = &bytes[..header_len];
        if internet_checksum(header) != 0 {
            return Err(Malformed::BadChecksum);
        }
        Ok(Self { header, payload: &bytes[header_len..total_len] })
    }

    /// An IPv4 packet inside an Ethernet frame: EtherType 0x0800, then [`Self::parse`].
    pub fn in_frame(frame: &ethernet::EthernetFrame<'a>) -> Result<Self, Malformed> {
        if frame.ethertype() != ETHERTYPE_IPV4 {
            return Err(Malformed::WrongProtocol);
        }
        Self::parse(frame.payload())
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.header[12], self.header[13], self.header[14], self.header[15])
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.header[16], self.header[17], self.header[18], self.header[19])
    }

    pub fn protocol(&self) -> u8 {
        self.header[9]
    }

    pub fn ttl(&self) -> u8 {
        self.header[8]
    }

    /// More fragments follow, or this is not the first: either way not a whole datagram.
    pub fn is_fragment(&self) -> bool {
        let word = u16::from_be_bytes([self.header[6], self.header[7]]);
        word & (MORE_FRAGMENTS | FRAGMENT_OFFSET) != 0
    }

    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The RFC 768 pseudo-header sum (source, destination, protocol, `length`) that the UDP
    /// checksum starts from.
    pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> Checksum {
        let mut sum = Checksum::new();
        sum.add(&src.octets()).add(&dst.octets()).add_u16(u16::from(protocol)).add_u16(length);
        sum
    }
}

/// Who a built frame goes from and to, at both layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
}

/// What goes into a built header besides the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFields {
    /// Type of service (RFC 791; the DSCP byte of RFC 2474).
    pub tos: u8,
    pub ttl: u8,
    pub protocol: u8,
}

/// Writes an Ethernet header and a 20-byte IPv4 header for `payload_len` bytes of payload into
/// an empty `out`. Identification 0, no fragmentation flags, as vmd's packet.c does. `None`
/// if the packet would be longer than the total length field can say.
pub fn write_headers(out: &mut Vec<u8>, to: &Addressing, fields: HeaderFields, payload_len: usize) -> Option<()> {
    let total_len = u16::try_from(HEADER_LEN.checked_add(payload_len)?).ok()?;
    ethernet::write_header(out, to.dst_mac, to.src_mac, ETHERTYPE_IPV4);
    let start = out.len();
    out.extend_from_slice(&[0x45, fields.tos]);
    out.extend_from_slice(&total_len.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // identification, flags and fragment offset
    out.extend_from_slice(&[fields.ttl, fields.protocol, 0, 0]); // checksum filled below
    out.extend_from_slice(&to.src_ip.octets());
    out.extend_from_slice(&to.dst_ip.octets());
    let checksum = internet_checksum(&out[start..]);
    out[start + 10..start + 12].copy_from_slice(&checksum.to_be_bytes());
    Some(())
}
