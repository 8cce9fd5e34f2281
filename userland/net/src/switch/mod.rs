//! A learning Ethernet switch for vm.conf's `switch "name" { ... }`: what vmd gets from
//! bridge(4) or veb(4) on OpenBSD, as a pure state machine. Frames come in on ports (small
//! indexes, [`PortId`]); [`Switch::forward`] learns the source and says where the frame goes.
//!
//! Forwarding (IEEE 802.1D 7.7, as bridge(4)): a frame from port P is dropped when the switch or
//! P is down, when it is shorter than an Ethernet header or longer than the maximum, or when
//! its source is a group address. Otherwise its source is learned on P ([`table`]). A known
//! unicast destination goes to its port only, never back to P (learned on P: dropped,
//! `SameSegment`); broadcast, multicast and unknown unicast are flooded to every other port
//! that is up.
//!
//! `locked lladdr` (vm.conf, per interface or for a whole switch; vmd's vionet.c): a locked
//! port's frames must come from its MAC (else dropped, `LockedSource`), and it is sent only
//! unicast to its MAC, broadcast and multicast. Its MAC is pinned in the table ([`table`]).
//!
//! A port going down, or away, forgets its table entries and queued frames (bridge(4) flushes
//! a port's dynamic addresses when its link goes down).
//!
//! Fair service: [`Switch::enqueue`] and [`Switch::forward_next`] put frames through per-port
//! bounded queues served round-robin ([`queue`]), so that one flooding port cannot starve the
//! others. [`Switch::forward`] decides one frame directly, for callers that need no queue.
//!
//! The shell's view: [`Switch::snapshot`] (ports, MAC table with ages, counters).
//!
//! Does not: spanning tree, VLANs (tags are switched by address like anything else), static
//! entries other than locked ports' MACs, or deliver anything itself.

mod port;
mod queue;
mod snapshot;
mod table;

use alloc::vec::Vec;

use crate::ethernet::{self, EthernetFrame};
use crate::MacAddr;

pub use port::{DropReason, PortCounters, PortId, PortSet, MAX_PORTS};
pub use queue::FairQueue;
pub use snapshot::{PortSnapshot, SwitchSnapshot};
pub use table::{Learned, MacTable, TableEntry};

/// bridge(4)'s default ageing time (`brconfig timeout`, 240 s).
pub const DEFAULT_AGEING_NS: u64 = 240 * 1_000_000_000;
/// bridge(4)'s default table size (`brconfig maxaddr`, 100).
pub const DEFAULT_MAX_ADDRESSES: usize = 100;
/// Frames a port may have waiting: a virtio-net queue's worth (256 descriptors).
pub const DEFAULT_QUEUE_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    /// MAC table entries at most.
    pub max_addresses: usize,
    /// How long an unrefreshed entry lives; 0: for ever.
    pub ageing_ns: u64,
    /// Frames waiting per port at most ([`Switch::enqueue`]).
    pub queue_len: usize,
    /// Longest frame forwarded, without FCS.
    pub max_frame_len: usize,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            max_addresses: DEFAULT_MAX_ADDRESSES,
            ageing_ns: DEFAULT_AGEING_NS,
            queue_len: DEFAULT_QUEUE_LEN,
            max_frame_len: ethernet::MAX_FRAME_LEN,
        }
    }
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// To one port: its destination was learned there.
    Unicast(PortId),
    /// To these ports (possibly none): broadcast, multicast or unknown destination.
    Flood(PortSet),
    Drop(DropReason),
}

/// A mistake of the caller's in managing ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchError {
    /// All [`MAX_PORTS`] ports are in use.
    NoFreePort,
    NoSuchPort(PortId),
}

#[derive(Debug, Clone)]
struct Port {
    up: bool,
    /// `locked lladdr`: the only source the port may use.
    locked: Option<MacAddr>,
    counters: PortCounters,
}

impl Port {
    /// Whether a frame to `dst` may be sent out of this port.
    fn takes(&self, dst: MacAddr) -> bool {
        self.up && self.locked.is_none_or(|mine| dst.is_group() || dst == mine)
    }
}

#[derive(Debug, Clone)]
pub struct Switch {
    config: SwitchConfig,
    enabled: bool,
    ports: Vec<Option<Port>>,
    table: MacTable,
    queue: FairQueue<Vec<u8>>,
}

impl Switch {
    /// An enabled switch without ports.
    pub fn new(config: SwitchConfig) -> Self {
        Self {
            config,
            enabled: true,
            ports: (0..MAX_PORTS).map(|_| None).collect(),
            table: MacTable::new(config.max_addresses, config.ageing_ns),
            queue: FairQueue::new(config.queue_len),
        }
    }

    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    /// vm.conf `enable`/`up` (true) and `disable`/`down` (false): a disabled switch forwards
    /// nothing; its table and counters stay.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Adds a port, up, locked to `locked` if given, at the lowest free index.
    pub fn add_port(&mut self, locked: Option<MacAddr>, now_ns: u64) -> Result<PortId, SwitchError> {
        let index = self.ports.iter().position(Option::is_none).ok_or(SwitchError::NoFreePort)?;
        let id = PortId::new(index).ok_or(SwitchError::NoFreePort)?;
        self.ports[index] = Some(Port { up: true, locked: None, counters: PortCounters::default() });
        self.set_port_locked(id, locked, now_ns)?;
        Ok(id)
    }

    /// Removes a port with its table entries and queued frames; its index may be reused.
    pub fn remove_port(&mut self, id: PortId) -> Result<(), SwitchError> {
        self.port_mut(id)?;
        self.ports[id.index()] = None;
        self.table.flush_port(id);
        self.queue.clear(id);
        Ok(())
    }

    /// vm.conf `up` / `down` for an interface. Going down forgets the port's table entries and
    /// queued frames; coming up pins a locked MAC again. Setting the state it has changes nothing.
    pub fn set_port_up(&mut self, id: PortId, up: bool, now_ns: u64) -> Result<(), SwitchError> {
        let port = self.port_mut(id)?;
        if port.up == up {
            return Ok(());
        }
        port.up = up;
        let locked = port.locked;
        self.table.flush_port(id);
        if !up {
            self.queue.clear(id);
        } else if let Some(mac) = locked {
            self.table.pin(mac, id, now_ns);
        }
        Ok(())
    }

    /// `locked lladdr MAC` (Some) or not (None) for a port; the port's table entries are
    /// forgotten and a locked MAC pinned to it.
    pub fn set_port_locked(&mut self, id: PortId, locked: Option<MacAddr>, now_ns: u64) -> Result<(), SwitchError> {
        let port = self.port_mut(id)?;
        port.locked = locked;
        let up = port.up;
        self.table.flush_port(id);
        if let Some(mac) = locked.filter(|_| up) {
            self.table.pin(mac, id, now_ns);
        }
        Ok(())
    }

    fn port_mut(&mut self, id: PortId) -> Result<&mut Port, SwitchError> {
        self.ports.get_mut(id.index()).and_then(Option::as_mut).ok_or(SwitchError::NoSuchPort(id))
    }

    pub fn counters(&self, id: PortId) -> Option<&PortCounters> {
        self.ports.get(id.index())?.as_ref().map(|p| &p.counters)
    }

    /// Where the switch would send a frame to `mac` now (None: flooded).
    pub fn lookup(&self, mac: MacAddr, now_ns: u64) -> Option<PortId> {
        self.table.lookup(mac, now_ns)
    }

    /// Forgets aged table entries (lookups ignore them anyway; this frees their room).
    pub fn expire(&mut self, now_ns: u64) {
        self.table.expire(now_ns);
    }

    /// One frame from port `from` at `now_ns`: learns its source, decides where it goes and
    /// counts it. An unknown port gets `Drop(PortDown)`, counted nowhere.
    pub fn forward(&mut self, from: PortId, frame: &[u8], now_ns: u64) -> Forward {
        let Ok(port) = self.port_mut(from) else { return Forward::Drop(DropReason::PortDown) };
        port.counters.count_in(frame.len());
        let decision = self.decide(from, frame, now_ns);
        self.count(from, frame.len(), decision);
        decision
    }

    fn decide(&mut self, from: PortId, frame: &[u8], now_ns: u64) -> Forward {
        let Some(Some(port)) = self.ports.get(from.index()) else { return Forward::Drop(DropReason::PortDown) };
        if !self.enabled {
            return Forward::Drop(DropReason::SwitchDown);
        }
        if !port.up {
            return Forward::Drop(DropReason::PortDown);
        }
        let Ok(eth) = EthernetFrame::parse(frame) else { return Forward::Drop(DropReason::Runt) };
        if frame.len() > self.config.max_frame_len {
            return Forward::Drop(DropReason::Oversize);
        }
        let (src, dst) = (eth.src(), eth.dst());
        if src.is_group() {
            return Forward::Drop(DropReason::GroupSource);
        }
        if port.locked.is_some_and(|mine| src != mine) {
            return Forward::Drop(DropReason::LockedSource);
        }
        if self.table.learn(src, from, now_ns) == Learned::Spoofed {
            return Forward::Drop(DropReason::SpoofedSource);
        }
        if !dst.is_group() {
            if let Some(to) = self.table.lookup(dst, now_ns) {
                let takes = self.ports.get(to.index()).and_then(Option::as_ref).is_some_and(|p| p.takes(dst));
                if to == from {
                    return Forward::Drop(DropReason::SameSegment);
                }
                if !takes {
                    return Forward::Drop(DropReason::Filtered);
                }
                return Forward::Unicast(to);
            }
        }
        let mut flood = PortSet::EMPTY;
        for (index, other) in self.ports.iter().enumerate() {
            let Some(id) = PortId::new(index) else { continue };
            if id != from && other.as_ref().is_some_and(|p| p.takes(dst)) {
                flood.insert(id);
            }
        }
        Forward::Flood(flood)
    }

    fn count(&mut self, from: PortId, len: usize, decision: Forward) {
        let targets = match decision {
            Forward::Drop(reason) => {
                if let Ok(port) = self.port_mut(from) {
                    port.counters.count_drop(reason);
                }
                return;
            }
            Forward::Unicast(to) => {
                let mut set = PortSet::EMPTY;
                set.insert(to);
                set
            }
            Forward::Flood(set) => set,
        };
        for to in targets.iter() {
            if let Ok(port) = self.port_mut(to) {
                port.counters.count_out(len);
            }
        }
    }

    /// Queues a frame from `from` for [`Self::forward_next`]. False if it was dropped: unknown
    /// or down port, or its queue full (counted as `QueueFull`).
    pub fn enqueue(&mut self, from: PortId, frame: Vec<u8>) -> bool {
        let Ok(port) = self.port_mut(from) else { return false };
        if !port.up {
            port.counters.count_in(frame.len());
            port.counters.count_drop(DropReason::PortDown);
            return false;
        }
        let len = frame.len();
        if self.queue.push(from, frame).is_err() {
            if let Ok(port) = self.port_mut(from) {
                port.counters.count_in(len);
                port.counters.count_drop(DropReason::QueueFull);
            }
            return false;
        }
        true
    }

    /// The next queued frame, round-robin over the ports, with where it goes.
    pub fn forward_next(&mut self, now_ns: u64) -> Option<(PortId, Vec<u8>, Forward)> {
        let (from, frame) = self.queue.pop()?;
        let decision = self.forward(from, &frame, now_ns);
        Some((from, frame, decision))
    }

    /// Ports, table and counters, for the shell.
    pub fn snapshot(&self, now_ns: u64) -> SwitchSnapshot {
        let ports = self
            .ports
            .iter()
            .enumerate()
            .filter_map(|(index, port)| {
                let port = port.as_ref()?;
                let id = PortId::new(index)?;
                Some(PortSnapshot {
                    id,
                    up: port.up,
                    locked: port.locked,
                    queued: self.queue.len(id),
                    counters: port.counters,
                })
            })
            .collect();
        SwitchSnapshot { enabled: self.enabled, ports, table: self.table.entries(now_ns) }
    }
}
