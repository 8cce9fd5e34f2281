//! The switch's MAC table: which port each source address was last seen on, bounded and aged.
//!
//! - Ageing: an entry not refreshed for the ageing time is gone, as in bridge(4) (default 240 s,
//!   `brconfig timeout`); 0 means never. Time is the caller's monotonic nanoseconds; a clock
//!   that steps back makes entries younger, never older.
//! - Bound: at most `capacity` entries (bridge(4)'s `maxaddr`, default 100). bridge(4) stops
//!   learning when full, which lets one guest that sends from many source addresses keep every
//!   other guest's address out for good (their traffic is then flooded to everyone). Here a new
//!   address always gets in, and the entry it displaces is the oldest one of the port that holds
//!   the most entries (the learning port's own when it ties for most). A flooding port therefore
//!   only ever displaces its own entries once it holds more than anyone else, and a port holding
//!   no more than `capacity / ports` entries never loses one to another port.
//! - Pinned entries: a port with `locked lladdr` has its MAC pinned to it. A pinned entry does
//!   not age, is never displaced, and does not move: a frame from another port with that
//!   source address is refused ([`Learned::Spoofed`]), so an unlocked guest cannot draw a locked
//!   guest's traffic. Unpinned addresses move to the port they were last seen on, as in bridge(4).
//!   Pins always get in, so the table may exceed its bound by the number of locked ports (at most
//!   [`MAX_PORTS`]). Two ports locked to one MAC: the last one locked holds it.
//!
//! Cost: lookups are O(log n); displacing an entry scans the table (only when it is full).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::port::{PortId, MAX_PORTS};
use crate::MacAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    port: PortId,
    last_seen_ns: u64,
    pinned: bool,
}

/// What learning a source address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// New, refreshed or moved here.
    Yes,
    /// Pinned to another port: the frame is a spoof.
    Spoofed,
    /// No room and nothing to displace (every entry pinned, or capacity 0).
    NoRoom,
}

/// One entry as the snapshot shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableEntry {
    pub mac: MacAddr,
    pub port: PortId,
    pub age_ns: u64,
    pub pinned: bool,
}

#[derive(Debug, Clone)]
pub struct MacTable {
    entries: BTreeMap<MacAddr, Entry>,
    /// Unpinned entries per port, to find the largest holder without a scan.
    unpinned_per_port: [usize; MAX_PORTS],
    capacity: usize,
    ageing_ns: u64,
}

impl MacTable {
    pub fn new(capacity: usize, ageing_ns: u64) -> Self {
        Self { entries: BTreeMap::new(), unpinned_per_port: [0; MAX_PORTS], capacity, ageing_ns }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expired(&self, entry: &Entry, now_ns: u64) -> bool {
        !entry.pinned && self.ageing_ns != 0 && now_ns.saturating_sub(entry.last_seen_ns) >= self.ageing_ns
    }

    /// The port `mac` was last seen on, unless that has aged out.
    pub fn lookup(&self, mac: MacAddr, now_ns: u64) -> Option<PortId> {
        self.entries.get(&mac).filter(|e| !self.expired(e, now_ns)).map(|e| e.port)
    }

    /// `mac` was seen as a source on `port`.
    pub fn learn(&mut self, mac: MacAddr, port: PortId, now_ns: u64) -> Learned {
        if let Some(entry) = self.entries.get(&mac).copied() {
            if entry.pinned {
                return if entry.port == port { Learned::Yes } else { Learned::Spoofed };
            }
            self.unpinned_per_port[entry.port.index()] -= 1;
            self.unpinned_per_port[port.index()] += 1;
            self.entries.insert(mac, Entry { port, last_seen_ns: now_ns, pinned: false });
            return Learned::Yes;
        }
        if self.entries.len() >= self.capacity && !self.make_room(port, now_ns) {
            return Learned::NoRoom;
        }
        self.unpinned_per_port[port.index()] += 1;
        self.entries.insert(mac, Entry { port, last_seen_ns: now_ns, pinned: false });
        Learned::Yes
    }

    /// Pins `mac` to `port` (a locked port's own address), displacing an entry if full.
    pub fn pin(&mut self, mac: MacAddr, port: PortId, now_ns: u64) {
        if let Some(old) = self.entries.remove(&mac) {
            if !old.pinned {
                self.unpinned_per_port[old.port.index()] -= 1;
            }
        } else if self.entries.len() >= self.capacity {
            self.make_room(port, now_ns);
        }
        self.entries.insert(mac, Entry { port, last_seen_ns: now_ns, pinned: true });
    }

    /// Forgets every entry of `port`, pinned or not (the port went down or away, or its lock
    /// changed).
    pub fn flush_port(&mut self, port: PortId) {
        self.entries.retain(|_, e| e.port != port);
        self.unpinned_per_port[port.index()] = 0;
    }

    /// Forgets aged entries.
    pub fn expire(&mut self, now_ns: u64) {
        let stale: Vec<MacAddr> =
            self.entries.iter().filter(|(_, e)| self.expired(e, now_ns)).map(|(mac, _)| *mac).collect();
        for mac in stale {
            self.remove(mac);
        }
    }

    fn remove(&mut self, mac: MacAddr) {
        if let Some(old) = self.entries.remove(&mac) {
            if !old.pinned {
                self.unpinned_per_port[old.port.index()] -= 1;
            }
        }
    }

    /// Frees one entry for `learner`: aged ones first, else the oldest of the largest holder.
    fn make_room(&mut self, learner: PortId, now_ns: u64) -> bool {
        self.expire(now_ns);
        if self.entries.len() < self.capacity {
            return true;
        }
        let most = self.unpinned_per_port.iter().copied().max().unwrap_or(0);
        if most == 0 {
            return false;
        }
        let victim_port = if self.unpinned_per_port[learner.index()] == most {
            learner
        } else {
            let index = self.unpinned_per_port.iter().position(|&n| n == most).unwrap_or(0);
            PortId::new(index).unwrap_or(learner)
        };
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.port == victim_port && !e.pinned)
            .min_by_key(|(_, e)| e.last_seen_ns)
            .map(|(mac, _)| *mac);
        match oldest {
            Some(mac) => {
                self.remove(mac);
                true
            }
            None => false,
        }
    }

    /// Every live entry, in address order.
    pub fn entries(&self, now_ns: u64) -> Vec<TableEntry> {
        self.entries
            .iter()
            .filter(|(_, e)| !self.expired(e, now_ns))
            .map(|(mac, e)| TableEntry {
                mac: *mac,
                port: e.port,
                age_ns: now_ns.saturating_sub(e.last_seen_ns),
                pinned: e.pinned,
            })
            .collect()
    }
}
