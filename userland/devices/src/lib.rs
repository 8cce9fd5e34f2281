//! Device models for the per-VM monitor: the PC platform a Keel guest sees (docs/guests.md).
//!
//! Each model is pure register state. The monitor decodes a VM exit (port I/O or MMIO), finds the
//! device on a [`Bus`] and calls its [`Device`] `read`/`write` with the offset from the device's
//! base, the data and the exit's clock; a write returns a [`WriteEffect`] (reset, power off, ...).
//! Interrupt lines are plain levels or edge counts that the monitor forwards to the [`PicPair`];
//! time is a `now_ns` the monitor passes in. The guest is hostile: no model panics on any access,
//! and every buffer a guest can fill is bounded (each module says how).
//!
//! Does not: talk to the kernel, inject interrupts or keep time (the monitor does those), or
//! allocate on the access path beyond the UART's output queue growing up to its bound.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi_pm;
pub mod bus;
pub mod debug_exit;
pub mod device;
pub mod guest_memory;
pub mod i8042;
pub mod i8254;
pub mod i8259;
pub mod ioapic;
pub mod irqchip;
pub mod lapic;
pub mod mc146818;
pub mod ns8250;
pub mod pci;
pub mod port92;
pub mod testdev;

#[cfg(test)]
mod testutil;

pub use bus::{all_ones, Bus, BusError};
pub use device::{ClockNs, Device, WriteEffect};
pub use i8254::Pit;
pub use i8259::PicPair;
pub use ns8250::Uart;
pub use testdev::TestDevice;
