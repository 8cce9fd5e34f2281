//! The kernel log ring buffer: every log record lands here (64 KiB, oldest bytes overwritten),
//! and on the serial port too until vmd claims the console. vmd reads it by absolute byte
//! position (`dmesg`, and to show new lines at its prompt).
//!
//! Waking vmd is deferred (a flag checked on the timer tick, at syscall exit and in the idle loop)
//! because records are written from places that hold the scheduler lock.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use crate::task::notify::Notification;

const CAPACITY: usize = 64 * 1024;

struct Ring {
    buf: [u8; CAPACITY],
    /// Total bytes ever written: the position one past the newest byte.
    end: u64,
}

static RING: Mutex<Ring> = Mutex::new(Ring { buf: [0; CAPACITY], end: 0 });
static CLAIMED: AtomicBool = AtomicBool::new(false);
static PENDING: AtomicBool = AtomicBool::new(false);
static LISTENER: Mutex<Option<(Arc<Notification>, u64)>> = Mutex::new(None);

pub fn write(bytes: &[u8]) {
    {
        let mut ring = RING.lock();
        for &b in bytes {
            let at = (ring.end % CAPACITY as u64) as usize;
            ring.buf[at] = b;
            ring.end += 1;
        }
    }
    PENDING.store(true, Ordering::Release);
}

/// Copy bytes from position `from` (or the oldest kept, if `from` was overwritten) into `out`.
/// Returns (bytes copied, position after them).
pub fn read(from: u64, out: &mut [u8]) -> (usize, u64) {
    let ring = RING.lock();
    let start = from.max(ring.end.saturating_sub(CAPACITY as u64)).min(ring.end);
    let n = ((ring.end - start) as usize).min(out.len());
    for (i, byte) in out.iter_mut().take(n).enumerate() {
        *byte = ring.buf[((start + i as u64) % CAPACITY as u64) as usize];
    }
    (n, start + n as u64)
}

/// Whether log records still go to the serial port (until vmd claims it).
pub fn serial_echo() -> bool {
    !CLAIMED.load(Ordering::Relaxed)
}

pub fn claim() {
    CLAIMED.store(true, Ordering::SeqCst);
}

pub fn bind(notification: Arc<Notification>, bits: u64) {
    *LISTENER.lock() = Some((notification, bits));
    PENDING.store(true, Ordering::Release);
}

/// Wake the listener if records arrived since the last call. Call only where the scheduler lock
/// is not held.
pub fn flush_signal() {
    if PENDING.swap(false, Ordering::AcqRel) {
        let listener = LISTENER.lock().clone();
        if let Some((n, bits)) = listener {
            n.signal(bits);
        }
    }
}
