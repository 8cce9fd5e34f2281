//! The Internet checksum (RFC 1071) for virtio-net's checksum offload: completing a partial
//! checksum in software, as a NIC would, for a receiving guest that did not negotiate
//! VIRTIO_NET_F_GUEST_CSUM. The sender's stack put the pseudo-header sum in the checksum field;
//! "calculating a ones' complement checksum from csum_start up until the end of the packet and
//! storing the result at offset csum_offset from csum_start will result in a fully checksummed
//! packet" (virtio 1.2 5.1.6.2.1).
//!
//! Does not: know any protocol (no pseudo-header is built here), verify a checksum, or require
//! the field to be aligned (the driver chose `csum_offset`; TCP's 16 and UDP's 6 are even).

/// The 16-bit ones' complement sum of `data` (RFC 1071 4.1): big-endian words, an odd last byte
/// padded with a zero byte, carries folded back in. Not complemented.
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut words = data.chunks_exact(2);
    // At most 2^16 x 2^63 / 2^16 words before a u64 could overflow: far beyond any frame.
    let mut sum: u64 = words.by_ref().map(|w| u64::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Where a partial checksum's field is in a frame of `len` bytes: its offset, if both of its
/// bytes are inside (`start + offset + 2 <= len`).
pub fn field_at(len: usize, start: u16, offset: u16) -> Option<usize> {
    let at = usize::from(start) + usize::from(offset);
    (at + 2 <= len).then_some(at)
}

/// The value that completes the partial checksum of `frame` at `start + offset`: the complement
/// of the sum from `start` to the end of the frame (the field included, holding the
/// pseudo-header sum). None if the field is not inside the frame.
///
/// A computed 0 is given as 0xFFFF: for TCP both are ones' complement zero (the receiver's sum
/// is the same), and for UDP 0 would mean "no checksum" (RFC 768), so 0xFFFF is the only right
/// form.
pub fn partial_checksum(frame: &[u8], start: u16, offset: u16) -> Option<u16> {
    field_at(frame.len(), start, offset)?;
    let sum = ones_complement_sum(&frame[usize::from(start)..]);
    Some(match !sum {
        0 => 0xFFFF,
        value => value,
    })
}

/// Completes the partial checksum of `frame` at `start + offset` in place (big-endian, as the
/// sum was taken); false, and the frame untouched, if the field is not inside the frame.
pub fn complete_checksum(frame: &mut [u8], start: u16, offset: u16) -> bool {
    let Some(value) = partial_checksum(frame, start, offset) else { return false };
    let Some(at) = field_at(frame.len(), start, offset) else { return false };
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 3's example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        assert_eq!(ones_complement_sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
        assert_eq!(ones_complement_sum(&[]), 0);
        assert_eq!(ones_complement_sum(&[0xAB]), 0xAB00, "an odd byte is padded on the right");
        assert_eq!(ones_complement_sum(&[0xFF; 4096]), 0xFFFF, "carries fold");
    }

    #[test]
    fn field_bounds() {
        assert_eq!(field_at(10, 4, 4), Some(8));
        assert_eq!(field_at(10, 4, 5), None);
        assert_eq!(field_at(0, 0, 0), None);
        assert_eq!(field_at(usize::MAX, u16::MAX, u16::MAX), Some(131_070));
        let mut frame = [1u8; 9];
        assert!(!complete_checksum(&mut frame, 4, 4), "one byte of the field past the end");
        assert_eq!(frame, [1; 9]);
        assert_eq!(partial_checksum(&frame, 8, 0), None);
    }

    /// Completing makes the sum over `[start..]` plus what the field held before (the
    /// pseudo-header sum, which the receiver adds itself) all ones, for sums that come out zero
    /// as well.
    #[test]
    fn completed_sums_to_all_ones() {
        let mut frame = [0u8; 41];
        for (i, b) in frame.iter_mut().enumerate() {
            *b = (i * 37) as u8;
        }
        let pseudo = [frame[16], frame[17]];
        assert!(complete_checksum(&mut frame, 10, 6));
        assert_ne!([frame[16], frame[17]], pseudo);
        let with_pseudo = [&frame[10..], &[0], &pseudo].concat();
        assert_eq!(ones_complement_sum(&with_pseudo), 0xFFFF);
        // A region whose sum is already all ones with the field zero: the result is 0, sent as
        // 0xFFFF, and the sum stays all ones.
        let mut frame = [0u8; 8];
        frame[..2].copy_from_slice(&[0xFF, 0xFF]);
        assert_eq!(partial_checksum(&frame, 0, 2), Some(0xFFFF));
        assert!(complete_checksum(&mut frame, 0, 2));
        assert_eq!(&frame[2..4], &[0xFF, 0xFF]);
        assert_eq!(ones_complement_sum(&frame), 0xFFFF);
    }
}
