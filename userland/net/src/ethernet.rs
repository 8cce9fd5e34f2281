//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894): destination, source, EtherType,
//! payload. No FCS: virtio-net and taps carry frames without it.
//!
//! 802.1Q: a tag is not skipped. A tagged frame parses with EtherType 0x8100 ([`ETHERTYPE_VLAN`]),
//! so the switch forwards it by its addresses like any frame (as bridge(4) does), and the host
//! side of a local interface, which wants exactly IPv4 or ARP, does not answer it: a local
//! interface is one untagged link, and vmd does not answer tagged DHCP either.

use alloc::vec::Vec;

use crate::{MacAddr, Malformed};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// Destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
/// The shortest frame on the wire, without the FCS (IEEE 802.3 minFrameSize 64 less 4):
/// frames built here are padded to it.
pub const MIN_FRAME_LEN: usize = 60;
/// The longest frame the switch forwards by default: a 1500-byte MTU, the header and one
/// 802.1Q tag (IEEE 802.3 maxFrameSize 1522 less the FCS).
pub const MAX_FRAME_LEN: usize = 1518;

/// A parsed frame, borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    bytes: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// Any slice of at least [`HEADER_LEN`] bytes is a frame; the payload is the rest (with any
    /// padding: the layer above knows its own length).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Malformed> {
        if bytes.len() < HEADER_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(Self { bytes })
    }

    pub fn dst(&self) -> MacAddr {
        MacAddr(self.bytes[0..6].try_into().unwrap_or_default())
    }

    pub fn src(&self) -> MacAddr {
        MacAddr(self.bytes[6..12].try_into().unwrap_or_default())
    }

    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.bytes[12], self.bytes[13]])
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Starts a frame: the header, into an empty `out`.
pub fn write_header(out: &mut Vec<u8>, dst: MacAddr, src: MacAddr, ethertype: u16) {
    out.extend_from_slice(&dst.0);
    out.extend_from_slice(&src.0);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

/// Pads a built frame with zeros to [`MIN_FRAME_LEN`]: the layers inside carry their own
/// lengths, so receivers ignore the padding (RFC 894).
pub fn pad(frame: &mut Vec<u8>) {
    if frame.len() < MIN_FRAME_LEN {
        frame.resize(MIN_FRAME_LEN, 0);
    }
}
