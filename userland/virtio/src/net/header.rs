//! The header before every virtio-net frame, `struct virtio_net_hdr` (virtio 1.2 5.1.6), as the
//! device reads it on transmit and writes it on receive, and [`Checksum`], the one thing in it
//! this device acts on.
//!
//! Its length depends on what was negotiated: 12 bytes (`num_buffers` included) for a modern
//! driver or one that negotiated VIRTIO_NET_F_MRG_RXBUF; 10 bytes for a legacy driver without it
//! (5.1.6.1: "without that feature the structure was 2 bytes shorter"). Little-endian (the
//! legacy interface is the guest's native order, little-endian on x86).
//!
//! Does not: segmentation offload (no GSO feature is offered: a transmit header asking for one
//! is refused), hash reporting, or RSC.

use keel_virtio_spec::{features, net_hdr};

use super::checksum::field_at;

/// What a frame's header says about its checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Nothing: the checksums are as the sender wrote them, and nobody vouches for them
    /// (`flags` 0).
    Unverified,
    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum field at `start + offset` holds only the
    /// pseudo-header sum; the ones' complement sum from `start` to the end of the frame
    /// completes it (5.1.6.2). The checksums before it are valid.
    Partial { start: u16, offset: u16 },
    /// VIRTIO_NET_HDR_F_DATA_VALID: the checksums were verified (5.1.6.4; only on receive).
    Verified,
}

impl Checksum {
    /// Whether it fits a frame of `len` bytes: a partial checksum's field must lie inside.
    pub fn fits(&self, len: usize) -> bool {
        match *self {
            Checksum::Partial { start, offset } => field_at(len, start, offset).is_some(),
            Checksum::Unverified | Checksum::Verified => true,
        }
    }
}

/// The header's length with the features `negotiated`.
pub fn header_len(negotiated: u64) -> usize {
    if negotiated & (features::VERSION_1 | features::NET_MRG_RXBUF) != 0 {
        net_hdr::LEN
    } else {
        net_hdr::LEN_LEGACY
    }
}

/// Why a transmit header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHeader {
    /// `gso_type` other than NONE: no segmentation offload was offered (5.1.6.2.1).
    Segmentation,
}

/// Reads a transmit header (`raw`: 10 or 12 bytes). NEEDS_CSUM counts only if VIRTIO_NET_F_CSUM
/// was negotiated (`offload`; otherwise the driver must send `flags` 0, 5.1.6.2.1), every other
/// flag is ignored (5.1.6.2.2: DATA_VALID and RSC_INFO are not the driver's to set), and so are
/// `hdr_len`, `gso_size` and `num_buffers` (meaningless without segmentation). Whether the
/// checksum field lies inside the frame is the caller's check ([`Checksum::fits`]).
pub fn parse_transmit(raw: &[u8], offload: bool) -> Result<Checksum, BadHeader> {
    let byte = |at: usize| raw.get(at).copied().unwrap_or(0);
    let word = |at: usize| u16::from_le_bytes([byte(at), byte(at + 1)]);
    if byte(net_hdr::GSO_TYPE) != net_hdr::GSO_NONE {
        return Err(BadHeader::Segmentation);
    }
    if offload && byte(net_hdr::FLAGS) & net_hdr::F_NEEDS_CSUM != 0 {
        return Ok(Checksum::Partial { start: word(net_hdr::CSUM_START), offset: word(net_hdr::CSUM_OFFSET) });
    }
    Ok(Checksum::Unverified)
}

/// The receive header for a frame spread over `num_buffers` buffers (5.1.6.4): `flags` and the
/// checksum fields from `checksum` (the caller has made it one the driver may be given),
/// `gso_type` NONE, `hdr_len` and `gso_size` 0. The first [`header_len`] bytes are the header.
pub fn receive_header(checksum: Checksum, num_buffers: u16) -> [u8; net_hdr::LEN] {
    let mut raw = [0u8; net_hdr::LEN];
    match checksum {
        Checksum::Unverified => {}
        Checksum::Partial { start, offset } => {
            raw[net_hdr::FLAGS] = net_hdr::F_NEEDS_CSUM;
            raw[net_hdr::CSUM_START..][..2].copy_from_slice(&start.to_le_bytes());
            raw[net_hdr::CSUM_OFFSET..][..2].copy_from_slice(&offset.to_le_bytes());
        }
        Checksum::Verified => raw[net_hdr::FLAGS] = net_hdr::F_DATA_VALID,
    }
    raw[net_hdr::GSO_TYPE] = net_hdr::GSO_NONE;
    raw[net_hdr::NUM_BUFFERS..][..2].copy_from_slice(&num_buffers.to_le_bytes());
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(header_len(0), 10, "legacy, no mergeable buffers");
        assert_eq!(header_len(features::NET_MRG_RXBUF), 12);
        assert_eq!(header_len(features::VERSION_1), 12);
        assert_eq!(header_len(features::VERSION_1 | features::NET_MRG_RXBUF | features::NET_CSUM), 12);
    }

    #[test]
    fn transmit_headers() {
        // flags NEEDS_CSUM, gso NONE, hdr_len 54, gso_size 0, csum_start 34, csum_offset 16.
        let raw = [1, 0, 54, 0, 0, 0, 34, 0, 16, 0, 0, 0];
        assert_eq!(parse_transmit(&raw, true), Ok(Checksum::Partial { start: 34, offset: 16 }));
        assert_eq!(parse_transmit(&raw[..10], true), Ok(Checksum::Partial { start: 34, offset: 16 }));
        assert_eq!(parse_transmit(&raw, false), Ok(Checksum::Unverified), "CSUM not negotiated");
        let valid = [2 | 4, 0, 0, 0, 0, 0, 9, 9, 9, 9];
        assert_eq!(parse_transmit(&valid, true), Ok(Checksum::Unverified), "not the driver's flags");
        let gso = [1, 1, 54, 0, 0x5a, 0x05, 34, 0, 16, 0];
        assert_eq!(parse_transmit(&gso, true), Err(BadHeader::Segmentation));
        let ecn = [0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_transmit(&ecn, true), Err(BadHeader::Segmentation));
        assert!(Checksum::Partial { start: 34, offset: 16 }.fits(52));
        assert!(!Checksum::Partial { start: 34, offset: 16 }.fits(51));
        assert!(Checksum::Unverified.fits(0) && Checksum::Verified.fits(0));
    }

    #[test]
    fn receive_headers() {
        assert_eq!(receive_header(Checksum::Unverified, 1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(receive_header(Checksum::Verified, 3), [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0]);
        assert_eq!(
            receive_header(Checksum::Partial { start: 0x122, offset: 6 }, 0x102),
            [1, 0, 0, 0, 0, 0, 0x22, 1, 6, 0, 2, 1]
        );
    }
}
