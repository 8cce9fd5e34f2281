//! Port identities, sets of ports, and what the switch counts per port.

use core::fmt;

/// The most ports one switch has: a [`PortSet`] is a 64-bit mask.
pub const MAX_PORTS: usize = 64;

/// A port of a switch: a small index, below [`MAX_PORTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(u8);

impl PortId {
    pub fn new(index: usize) -> Option<PortId> {
        u8::try_from(index).ok().filter(|&i| usize::from(i) < MAX_PORTS).map(PortId)
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A set of ports, for flooding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortSet(u64);

impl PortSet {
    pub const EMPTY: PortSet = PortSet(0);

    pub fn insert(&mut self, port: PortId) {
        self.0 |= 1 << port.index();
    }

    pub fn contains(self, port: PortId) -> bool {
        self.0 & (1 << port.index()) != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ports in index order.
    pub fn iter(self) -> impl Iterator<Item = PortId> {
        (0..MAX_PORTS).filter_map(PortId::new).filter(move |&p| self.contains(p))
    }
}

/// Why the switch dropped a frame, counted on the port it came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The switch is disabled or down (vm.conf `disable`, `down`).
    SwitchDown,
    /// The ingress port is down.
    PortDown,
    /// Shorter than an Ethernet header.
    Runt,
    /// Longer than the switch's maximum frame.
    Oversize,
    /// A broadcast or multicast source address (IEEE 802.3: never a valid source).
    GroupSource,
    /// `locked lladdr`: the source is not the port's MAC (vmd's vionet.c drops these).
    LockedSource,
    /// The source is a locked port's MAC, seen on another port: a spoof.
    SpoofedSource,
    /// The destination was learned on the ingress port: it is already there (bridge(4)).
    SameSegment,
    /// The destination's port is locked to another MAC and does not take this frame.
    Filtered,
    /// The port's ingress queue was full.
    QueueFull,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        Self::SwitchDown,
        Self::PortDown,
        Self::Runt,
        Self::Oversize,
        Self::GroupSource,
        Self::LockedSource,
        Self::SpoofedSource,
        Self::SameSegment,
        Self::Filtered,
        Self::QueueFull,
    ];

    fn slot(self) -> usize {
        self as usize
    }

    /// A short name for counters in the shell.
    pub fn name(self) -> &'static str {
        match self {
            Self::SwitchDown => "switch-down",
            Self::PortDown => "port-down",
            Self::Runt => "runt",
            Self::Oversize => "oversize",
            Self::GroupSource => "group-source",
            Self::LockedSource => "locked-source",
            Self::SpoofedSource => "spoofed-source",
            Self::SameSegment => "same-segment",
            Self::Filtered => "filtered",
            Self::QueueFull => "queue-full",
        }
    }
}

/// One port's traffic. Frames "in" are every frame the port sent into the switch (dropped
/// ones too); "out" are copies the switch decided to deliver to the port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl PortCounters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.slot()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(super) fn count_in(&mut self, len: usize) {
        self.frames_in += 1;
        self.bytes_in += len as u64;
    }

    pub(super) fn count_out(&mut self, len: usize) {
        self.frames_out += 1;
        self.bytes_out += len as u64;
    }

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason.slot()] += 1;
    }
}
