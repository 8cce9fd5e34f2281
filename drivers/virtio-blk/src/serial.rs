//! A virtio-blk serial number (GET_ID, virtio 1.2 5.2.6) as text, without allocating: up to 20
//! printable ASCII bytes. It does not interpret the serial (vendors format it as they like).

/// Up to 20 printable ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Serial {
    bytes: [u8; 20],
    len: usize,
}

impl Serial {
    /// The bytes up to the first NUL, if all are printable ASCII and there is at least one.
    pub fn from_bytes(id: &[u8; 20]) -> Option<Serial> {
        let len = id.iter().position(|&b| b == 0).unwrap_or(id.len());
        let text = &id[..len];
        (len > 0 && text.iter().all(|b| (0x20..0x7F).contains(b))).then_some(Serial { bytes: *id, len })
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Debug for Serial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl core::fmt::Display for Serial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
