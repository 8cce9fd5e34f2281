//! Fair service of ingress frames: one bounded queue per port, served round-robin.
//!
//! Why: the switch process serves every port from one loop. Served first-come first-served,
//! a guest that floods fills the loop's backlog and every other guest's frames wait behind its
//! frames, or are lost. Here each port's frames wait in that port's own queue, at most
//! `capacity` of them (a full queue drops the newest frame, tail drop, counted as
//! `QueueFull` on that port only), and the loop takes one frame from each non-empty queue in
//! turn. A flooding port then gets at most its 1/N share of the switch while others have
//! frames waiting, and only its own frames are lost.
//!
//! Fairness is per frame, not per byte: a port sending only large frames gets more bytes
//! through than one sending small ones (deficit round-robin would even that out). What goes
//! out to a guest is bounded by that guest's receive queue, outside this crate.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::port::{PortId, MAX_PORTS};

#[derive(Debug, Clone)]
pub struct FairQueue<T> {
    queues: Vec<VecDeque<T>>,
    capacity: usize,
    /// The port served next, if it has anything waiting.
    next: usize,
}

impl<T> FairQueue<T> {
    /// A queue of at most `capacity` items per port.
    pub fn new(capacity: usize) -> Self {
        Self { queues: (0..MAX_PORTS).map(|_| VecDeque::new()).collect(), capacity, next: 0 }
    }

    /// Queues `item` from `port`, or gives it back if the port's queue is full.
    pub fn push(&mut self, port: PortId, item: T) -> Result<(), T> {
        let queue = &mut self.queues[port.index()];
        if queue.len() >= self.capacity {
            return Err(item);
        }
        queue.push_back(item);
        Ok(())
    }

    /// The next item in round-robin order over the ports with items waiting.
    pub fn pop(&mut self) -> Option<(PortId, T)> {
        for step in 0..MAX_PORTS {
            let index = (self.next + step) % MAX_PORTS;
            if let Some(item) = self.queues[index].pop_front() {
                self.next = (index + 1) % MAX_PORTS;
                return Some((PortId::new(index)?, item));
            }
        }
        None
    }

    pub fn len(&self, port: PortId) -> usize {
        self.queues[port.index()].len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// Drops what `port` has waiting (the port went down or away).
    pub fn clear(&mut self, port: PortId) {
        self.queues[port.index()] = VecDeque::new();
    }
}
