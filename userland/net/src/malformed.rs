//! Why a frame could not be parsed: one error type for every layer, so that a caller (and a
//! counter) can tell a short frame from a bad checksum without knowing which parser said it.

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the header (or the length field) says it must be.
    Truncated,
    /// Not the protocol the parser was asked for (EtherType, IP version, IP protocol).
    WrongProtocol,
    /// A length field that contradicts itself (IPv4 IHL below 5, total length below the header,
    /// UDP length below 8).
    BadLength,
    /// A checksum that does not add up (RFC 1071).
    BadChecksum,
    /// An IPv4 fragment: nothing here reassembles.
    Fragment,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated",
            Self::WrongProtocol => "wrong protocol",
            Self::BadLength => "bad length field",
            Self::BadChecksum => "bad checksum",
            Self::Fragment => "IPv4 fragment",
        })
    }
}
