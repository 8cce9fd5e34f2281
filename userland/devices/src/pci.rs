//! PCI: a host bridge with configuration mechanism #1 (ports 0xCF8-0xCFF), bus 0 only
//! ([`PciHost`], in `pci/host.rs`), and the standard type 0 configuration header that every
//! function on it shares ([`ConfigSpace`], in `pci/config.rs`). Adding a PCI device is writing a
//! [`PciFunction`] and giving it a slot in the monitor's PCI table.
//!
//! Ports (the host is a [`crate::Device`] at offsets from 0xCF8, [`PORT_BASE`]): CONFIG_ADDRESS
//! (0xCF8) latches and reads back only on 32-bit accesses (bits 1:0 and the reserved bits 30:24
//! read 0); CONFIG_DATA (0xCFC-0xCFF) reaches the register the address selects, at byte offset
//! `port - 0xCFC`, for 1-, 2- and 4-byte accesses (bytes past 0xCFF read as all ones). A byte
//! access to 0xCF9 is the PIIX reset control register: writing bit 2 (reset CPU) asks for a
//! system reset (the write returns [`crate::WriteEffect::Reset`]; also kept for
//! [`PciHost::take_reset_request`]). Other non-dword accesses to 0xCF8-0xCFB are ignored (so
//! Linux's mechanism #2 probe, a byte write to 0xCFB, is harmless).
//!
//! Devices: device 0 is the host bridge (Intel 82441FX, 8086:1237, class 06 00 00, as in a PC
//! with an i440FX); slots 1-31 hold up to 31 boxed [`PciFunction`]s, each single-function
//! (function 0 only). Everything else (an absent slot, functions 1-7, buses 1-255, config cycles
//! with the enable bit clear) reads as all ones and ignores writes.
//!
//! The header ([`ConfigSpace`], PCI 3.0 section 6.1): vendor, device, revision, class, header
//! type, subsystem ids, capability pointer and interrupt pin are read-only; the command register
//! keeps I/O space, memory space, bus master, parity error response, SERR# and interrupt disable;
//! cache line size, latency timer and interrupt line are read/write; BARs keep only their address
//! bits, so writing all ones and reading back gives the size mask with the type bits (PCI 3.0
//! 6.2.5.1); unimplemented BARs and the expansion ROM BAR read 0. Status bit 3 (interrupt status)
//! follows the function's INTx line; status bit 4 is set once a capability is added.
//!
//! Address decoding for the monitor: [`PciHost::mmio_read`]/[`PciHost::mmio_write`] (and the I/O
//! versions; guest-physical addresses or ports, the exit clock, and a write's effect) find the BAR that holds the whole access, among the BARs the guest programmed,
//! counting a BAR only while its function's command register enables that space and its base is
//! not 0 (unassigned). Overlapping BARs: the lowest slot wins. [`PciHost::assign_resources`] does
//! what firmware does before an OS boots: places every BAR in a window, enables decoding and fills
//! the interrupt line.
//!
//! INTx: each slot is wired to one PIC IRQ chosen when the function is inserted (all four pins of
//! a slot share it); [`PciHost::irq_levels`] ORs the levels of the functions whose interrupt
//! disable bit is clear. The lines are level-triggered and shareable: the guest must set the PIC's
//! ELCR for them (Linux does when ACPI's `_PRT` or the interrupt line says so).
//!
//! Does not: emulate PCI-to-PCI bridges or other buses, multi-function devices, the extended (PCIe)
//! configuration space or ECAM, MSI/MSI-X, expansion ROMs, or the i440FX's PAM/SMRAM registers.
//! Holds no buffers; the slot table is fixed at 32 entries.
//!
//! See: PCI Local Bus Specification 3.0 (cited as "PCI 3.0"), 3.2.2.3.2 (configuration mechanism
//! #1), 6.1-6.2 (configuration header), 6.7 (capabilities list); Intel 82371AB PIIX4 datasheet,
//! "RC—Reset Control Register (I/O Address 0CF9h)"; Intel 82441FX PMC datasheet (ids).

mod config;
mod host;

pub use config::*;
pub use host::*;

#[cfg(test)]
mod tests;
