//! A loopback console stream: what is written to it is read back from it (an echo device).
//!
//! What it does: stands in for a guest's serial console until guests run, so the console
//! plumbing (attach, `~.`, backlog) can be exercised end to end. It holds at most its capacity;
//! a write takes only what fits and says how much, as a pipe would.
//!
//! What it does not do: transform the bytes (no echo of CR as CR LF, no line discipline).

use crate::console::RingBuffer;

/// A bounded echo device. See the module documentation.
#[derive(Debug, Clone)]
pub struct LoopbackStream {
    ring: RingBuffer,
}

impl LoopbackStream {
    /// A stream holding at most `capacity` unread bytes.
    pub fn new(capacity: usize) -> Self {
        Self { ring: RingBuffer::new(capacity) }
    }

    /// Write as much of `data` as fits; returns how many bytes were taken (0 when full).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.ring.free());
        self.ring.push_bytes(&data[..n]);
        n
    }

    /// Read up to `buf.len()` bytes, oldest first; returns how many (0 when empty).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        self.ring.read(buf)
    }

    /// How many bytes wait to be read.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_what_is_written() {
        let mut s = LoopbackStream::new(16);
        assert!(s.is_empty());
        assert_eq!(s.write(b"hello\r"), 6);
        assert_eq!(s.len(), 6);
        let mut buf = [0u8; 4];
        assert_eq!(s.read(&mut buf), 4);
        assert_eq!(&buf, b"hell");
        assert_eq!(s.read(&mut buf), 2);
        assert_eq!(&buf[..2], b"o\r");
        assert_eq!(s.read(&mut buf), 0);
    }

    #[test]
    fn full_stream_takes_only_what_fits() {
        let mut s = LoopbackStream::new(4);
        assert_eq!(s.write(b"abcdef"), 4);
        assert_eq!(s.write(b"g"), 0);
        let mut buf = [0u8; 2];
        s.read(&mut buf);
        assert_eq!(s.write(b"ghij"), 2);
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf), 4);
        assert_eq!(&buf[..4], b"cdgh");
        // Nothing was dropped: writes never overwrite.
        let mut none = LoopbackStream::new(0);
        assert_eq!(none.write(b"x"), 0);
    }
}
