//! What the shell shows of a switch: its ports with their counters, and its MAC table with the
//! age of each entry. `Display` gives the text a shell verb prints.

use alloc::vec::Vec;
use core::fmt;

use super::port::{DropReason, PortCounters, PortId};
use super::table::TableEntry;
use crate::MacAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSnapshot {
    pub id: PortId,
    pub up: bool,
    pub locked: Option<MacAddr>,
    /// Frames waiting in the port's ingress queue.
    pub queued: usize,
    pub counters: PortCounters,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchSnapshot {
    pub enabled: bool,
    pub ports: Vec<PortSnapshot>,
    /// Live entries, in address order.
    pub table: Vec<TableEntry>,
}

impl fmt::Display for SwitchSnapshot {
    /// ```text
    /// switch enabled, 2 ports, 1 address
    /// port 0 up locked fe:e1:ba:d0:00:01: in 12 frames 1180 bytes, out 3 frames 342 bytes, queued 0, dropped 1 (locked-source 1)
    /// fe:e1:ba:d0:00:01 port 0 age 3 s locked
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        writeln!(
            f,
            "switch {}, {} port{}, {} address{}",
            if self.enabled { "enabled" } else { "disabled" },
            self.ports.len(),
            plural(self.ports.len()),
            self.table.len(),
            if self.table.len() == 1 { "" } else { "es" },
        )?;
        for port in &self.ports {
            let c = &port.counters;
            write!(f, "port {} {}", port.id, if port.up { "up" } else { "down" })?;
            if let Some(mac) = port.locked {
                write!(f, " locked {mac}")?;
            }
            write!(
                f,
                ": in {} frames {} bytes, out {} frames {} bytes, queued {}, dropped {}",
                c.frames_in,
                c.bytes_in,
                c.frames_out,
                c.bytes_out,
                port.queued,
                c.dropped_total()
            )?;
            let mut reasons = DropReason::ALL.iter().filter(|&&r| c.dropped(r) != 0).peekable();
            if reasons.peek().is_some() {
                f.write_str(" (")?;
                for (i, &reason) in reasons.enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{} {}", reason.name(), c.dropped(reason))?;
                }
                f.write_str(")")?;
            }
            writeln!(f)?;
        }
        for entry in &self.table {
            write!(f, "{} port {} age {} s", entry.mac, entry.port, entry.age_ns / 1_000_000_000)?;
            writeln!(f, "{}", if entry.pinned { " locked" } else { "" })?;
        }
        Ok(())
    }
}
