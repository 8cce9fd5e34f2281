//! A VM's console as the shell sees it: output kept while no one is attached, and the escape.
//!
//! What it does: [`RingBuffer`] is a fixed-size byte ring that keeps the newest bytes (the
//! oldest are dropped and counted when it is full); [`Console`] uses one to keep a guest's
//! console output while the serial port is at the shell prompt, hands the backlog over on
//! attach, and runs keystrokes through an [`EscapeFilter`] while attached.
//!
//! What it does not do: talk to the guest or to the serial port (the caller moves the bytes),
//! or translate line endings. The ring's storage is allocated once, at its full capacity, so
//! a chatty guest cannot make it grow.

use alloc::vec;
use alloc::vec::Vec;

use crate::mux::{EscapeAction, EscapeFilter};

/// A bounded byte ring: pushing into a full ring drops the oldest bytes.
#[derive(Debug, Clone)]
pub struct RingBuffer {
    buf: Vec<u8>,
    /// Index of the oldest byte.
    head: usize,
    len: usize,
    dropped: u64,
}

impl RingBuffer {
    /// A ring holding at most `capacity` bytes (allocated now). A capacity of 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        Self { buf: vec![0; capacity], head: 0, len: 0, dropped: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes are held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many more bytes fit before the oldest are dropped.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// How many bytes were dropped (overwritten or never stored) since the last [`Self::take_dropped`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The dropped count, which restarts from 0.
    pub fn take_dropped(&mut self) -> u64 {
        core::mem::take(&mut self.dropped)
    }

    /// Append `data`, dropping the oldest bytes (old ones first, then the start of `data`) to
    /// keep the newest `capacity` bytes.
    pub fn push_bytes(&mut self, data: &[u8]) {
        let cap = self.capacity();
        // Only the newest `cap` bytes of `data` can survive.
        let skip = data.len().saturating_sub(cap);
        let data = &data[skip..];
        let overflow = (self.len + data.len()).saturating_sub(cap);
        self.head = if cap == 0 { 0 } else { (self.head + overflow) % cap };
        self.len -= overflow;
        self.dropped = self.dropped.saturating_add((skip + overflow) as u64);
        for &b in data {
            let at = (self.head + self.len) % cap;
            self.buf[at] = b;
            self.len += 1;
        }
    }

    /// Move up to `out.len()` of the oldest bytes into `out`; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for slot in &mut out[..n] {
            *slot = self.buf[self.head];
            self.head = (self.head + 1) % self.capacity();
        }
        self.len -= n;
        n
    }

    /// Move every held byte, oldest first, to the end of `out`.
    pub fn drain_into(&mut self, out: &mut Vec<u8>) {
        let (first, second) = self.as_slices();
        out.extend_from_slice(first);
        out.extend_from_slice(second);
        self.clear();
    }

    /// The held bytes, oldest first, as two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let first_len = self.len.min(self.capacity() - self.head);
        let first = &self.buf[self.head..self.head + first_len];
        let second = &self.buf[..self.len - first_len];
        (first, second)
    }

    /// Forget the held bytes (the dropped count stays).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// One VM's console: a backlog while detached, and the escape filter while attached.
#[derive(Debug, Clone)]
pub struct Console {
    backlog: RingBuffer,
    filter: EscapeFilter,
    attached: bool,
}

impl Console {
    /// A detached console that keeps at most `capacity` bytes of output (e.g. 64 KiB).
    pub fn new(capacity: usize) -> Self {
        Self { backlog: RingBuffer::new(capacity), filter: EscapeFilter::new(), attached: false }
    }

    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// The output kept while detached.
    pub fn backlog(&self) -> &RingBuffer {
        &self.backlog
    }

    /// Attach: the backlog moves to `to_user` (oldest first) and the escape filter starts at the
    /// start of a line. Returns how many bytes of output were lost while detached.
    pub fn attach(&mut self, to_user: &mut Vec<u8>) -> u64 {
        self.attached = true;
        self.filter = EscapeFilter::new();
        self.backlog.drain_into(to_user);
        self.backlog.take_dropped()
    }

    /// Detach: further output is kept in the backlog.
    pub fn detach(&mut self) {
        self.attached = false;
    }

    /// Output from the guest: to `to_user` while attached, else into the backlog.
    pub fn guest_output(&mut self, bytes: &[u8], to_user: &mut Vec<u8>) {
        if self.attached {
            to_user.extend_from_slice(bytes);
        } else {
            self.backlog.push_bytes(bytes);
        }
    }

    /// A keystroke from the user while attached; bytes for the guest go to `to_guest`. On
    /// [`EscapeAction::Detach`] the console is detached already.
    pub fn user_input(&mut self, byte: u8, to_guest: &mut Vec<u8>) -> EscapeAction {
        let action = self.filter.feed(byte, to_guest);
        if action == EscapeAction::Detach {
            self.detach();
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(r: &RingBuffer) -> Vec<u8> {
        let (a, b) = r.as_slices();
        [a, b].concat()
    }

    #[test]
    fn ring_keeps_bytes_in_order() {
        let mut r = RingBuffer::new(8);
        assert!(r.is_empty());
        r.push_bytes(b"abc");
        r.push_bytes(b"de");
        assert_eq!(r.len(), 5);
        assert_eq!(r.free(), 3);
        assert_eq!(contents(&r), b"abcde");
        assert_eq!(r.dropped(), 0);
    }

    #[test]
    fn full_ring_drops_the_oldest_and_counts() {
        let mut r = RingBuffer::new(8);
        r.push_bytes(b"abcdef");
        r.push_bytes(b"ghij");
        assert_eq!(contents(&r), b"cdefghij");
        assert_eq!(r.dropped(), 2);
        // Wrapped around: two slices.
        let (a, b) = r.as_slices();
        assert_eq!((a, b), (&b"cdefgh"[..], &b"ij"[..]));
        // A push longer than the ring keeps its tail.
        r.push_bytes(b"0123456789ABCDEF");
        assert_eq!(contents(&r), b"89ABCDEF");
        assert_eq!(r.dropped(), 2 + 8 + 8);
        assert_eq!(r.take_dropped(), 18);
        assert_eq!(r.dropped(), 0);
    }

    #[test]
    fn read_and_drain() {
        let mut r = RingBuffer::new(4);
        r.push_bytes(b"abcdef");
        let mut buf = [0u8; 3];
        assert_eq!(r.read(&mut buf), 3);
        assert_eq!(&buf, b"cde");
        r.push_bytes(b"gh");
        let mut out = b">".to_vec();
        r.drain_into(&mut out);
        assert_eq!(out, b">fgh");
        assert!(r.is_empty());
        assert_eq!(r.read(&mut buf), 0);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut r = RingBuffer::new(0);
        r.push_bytes(b"abc");
        r.push_bytes(b"");
        assert!(r.is_empty());
        assert_eq!(r.dropped(), 3);
        let mut buf = [0u8; 2];
        assert_eq!(r.read(&mut buf), 0);
        let mut out = Vec::new();
        r.drain_into(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn ring_matches_a_model() {
        // Random pushes and reads against a simple Vec model.
        let mut r = RingBuffer::new(13);
        let mut model: Vec<u8> = Vec::new();
        let mut dropped = 0u64;
        let mut x: u32 = 99;
        for step in 0..5000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (x >> 16) as usize % 20;
            if x & 1 == 0 {
                let data: Vec<u8> = (0..n).map(|i| (step as usize + i) as u8).collect();
                r.push_bytes(&data);
                model.extend_from_slice(&data);
                let excess = model.len().saturating_sub(13);
                model.drain(..excess);
                dropped += excess as u64;
            } else {
                let mut buf = alloc::vec![0u8; n];
                let got = r.read(&mut buf);
                let want = n.min(model.len());
                assert_eq!(got, want);
                assert_eq!(&buf[..got], &model[..want]);
                model.drain(..want);
            }
            assert_eq!(contents(&r), model);
            assert_eq!(r.dropped(), dropped);
        }
    }

    #[test]
    fn console_keeps_output_while_detached() {
        let mut c = Console::new(16);
        let mut user = Vec::new();
        c.guest_output(b"boot messages...", &mut user);
        c.guest_output(b"login: ", &mut user);
        assert!(user.is_empty());
        assert!(!c.is_attached());
        // 23 bytes into 16: the oldest 7 were lost.
        assert_eq!(c.attach(&mut user), 7);
        assert_eq!(user, b"ssages...login: ");
        assert!(c.is_attached());
        assert!(c.backlog().is_empty());
        user.clear();
        c.guest_output(b"root", &mut user);
        assert_eq!(user, b"root");
    }

    #[test]
    fn console_detaches_on_tilde_dot() {
        let mut c = Console::new(16);
        let mut user = Vec::new();
        c.attach(&mut user);
        let mut guest = Vec::new();
        for &b in b"ls\r" {
            assert_eq!(c.user_input(b, &mut guest), EscapeAction::Continue);
        }
        assert_eq!(c.user_input(b'~', &mut guest), EscapeAction::Continue);
        assert_eq!(c.user_input(b'.', &mut guest), EscapeAction::Detach);
        assert_eq!(guest, b"ls\r");
        assert!(!c.is_attached());
        c.guest_output(b"bye", &mut user);
        assert!(user.is_empty());
        // Reattaching starts at a line start again.
        assert_eq!(c.attach(&mut user), 0);
        assert_eq!(user, b"bye");
        c.user_input(b'x', &mut guest);
        c.detach();
        c.attach(&mut user);
        assert_eq!(c.user_input(b'~', &mut guest), EscapeAction::Continue);
        assert_eq!(c.user_input(b'.', &mut guest), EscapeAction::Detach);
    }
}
