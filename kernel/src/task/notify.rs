//! Notifications: 64 event bits that sources set (other processes, console input, the kernel
//! log, process exits) and one thread at a time waits on, with an optional deadline. This is the
//! single wait point from which a process waits on several event sources at once.

use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::scheduler;

pub struct Notification {
    bits: AtomicU64,
    waiter: Mutex<Option<u64>>,
}

impl Notification {
    pub fn new() -> Self {
        Self { bits: AtomicU64::new(0), waiter: Mutex::new(None) }
    }

    /// Set `bits` and wake the waiter, if any.
    pub fn signal(&self, bits: u64) {
        if bits == 0 {
            return;
        }
        self.bits.fetch_or(bits, Ordering::SeqCst);
        if let Some(tid) = self.waiter.lock().take() {
            scheduler::wake(tid);
        }
    }

    /// Take the pending bits (clearing them).
    pub fn take(&self) -> u64 {
        self.bits.swap(0, Ordering::SeqCst)
    }

    /// Wait for bits or until `deadline_ns` (None: forever). Returns the bits (0 on timeout), or
    /// `None` if another thread is already waiting.
    pub fn wait(&self, deadline_ns: Option<u64>) -> Option<u64> {
        let bits = self.take();
        if bits != 0 {
            return Some(bits);
        }
        {
            let mut waiter = self.waiter.lock();
            // A waiter that died (its process was killed) no longer counts.
            if waiter.is_some_and(scheduler::is_alive) {
                return None;
            }
            *waiter = Some(scheduler::current_tid()?);
        }
        scheduler::block_current(deadline_ns);
        *self.waiter.lock() = None;
        Some(self.take())
    }
}
