//! The Internet checksum (RFC 1071): the one's complement of the one's complement sum of the
//! data as big-endian 16-bit words, an odd last byte padded with a zero. Used by the IPv4
//! header, UDP (over a pseudo-header, RFC 768) and ICMP (RFC 792).
//!
//! Verifying: the sum over data that includes its own checksum field comes to 0xffff, so
//! [`Checksum::finish`] gives 0.

/// A running sum; data may be added in pieces of any length (an odd piece is carried over).
#[derive(Debug, Clone, Default)]
pub struct Checksum {
    sum: u64,
    /// The first byte of a word whose second byte is in the next piece.
    odd_byte: Option<u8>,
}

impl Checksum {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, mut data: &[u8]) -> &mut Self {
        if let Some(high) = self.odd_byte.take() {
            match data.split_first() {
                Some((&low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, low]));
                    data = rest;
                }
                None => {
                    self.odd_byte = Some(high);
                    return self;
                }
            }
        }
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            self.sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        self.odd_byte = words.remainder().first().copied();
        self
    }

    pub fn add_u16(&mut self, value: u16) -> &mut Self {
        self.add(&value.to_be_bytes())
    }

    /// The checksum to store: the complement of the folded sum.
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.odd_byte {
            sum += u64::from(u16::from_be_bytes([high, 0]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

/// The checksum of `data` alone.
pub fn internet_checksum(data: &[u8]) -> u16 {
    Checksum::new().add(data).finish()
}
