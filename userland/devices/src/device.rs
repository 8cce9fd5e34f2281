//! The one interface every port and MMIO device model offers the monitor ([`Device`]), what a
//! write may ask of the monitor ([`WriteEffect`]) and the clock accesses carry ([`ClockNs`]).
//!
//! Offsets are relative to the device's base: the monitor's bus subtracts the base of the range
//! it registered (see [`crate::bus::Bus::insert_at`] for devices with several windows, such as the
//! PIC's 0x20, 0xA0 and 0x4D0). Port and MMIO devices share the signature; the bus they sit on
//! is the platform's choice, not the model's. Reads fill all of `data` (bytes a register does not
//! cover get the model's documented filler); `data` is 1 to 8 bytes on the exit path, but a model
//! must accept any length, including 0, without panicking (the guest is hostile).
//!
//! Does not: own a bus, route interrupt lines (each model has its own level accessors, which the
//! monitor reads), or reach guest memory (PCI functions do that in `PciFunction::process`).

/// The monitor's clock in nanoseconds (the kernel's `ClockNs`, as `VcpuRun` returns it at the
/// exit): the time of the access. Monotonic, never wall time; a model that shows wall time (the
/// RTC) keeps its own offset to it.
pub type ClockNs = u64;

/// What a guest write asks of the monitor beyond the device's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum WriteEffect {
    /// Nothing.
    None,
    /// Stop the VM with this exit status (the debug-exit port).
    Exit(u8),
    /// Reset the machine (the 8042's pulse, port 0xCF9, port 0x92 bit 0).
    Reset,
    /// Enter S5, soft off (ACPI PM1 control).
    PowerOff,
    /// An EOI of this level-triggered vector, for the I/O APIC (the local APIC's EOI broadcast).
    LevelEoi(u8),
    /// The guest sent itself an NMI through the local APIC's ICR.
    Nmi,
}

/// A port or MMIO device model: guest accesses at an offset from the device's base.
pub trait Device {
    /// A guest read of `data.len()` bytes at `offset`, at time `now`.
    fn read(&mut self, offset: u64, data: &mut [u8], now: ClockNs);

    /// A guest write of `data` at `offset`, at time `now`; what the monitor must do about it.
    fn write(&mut self, offset: u64, data: &[u8], now: ClockNs) -> WriteEffect;
}

/// The port `offset` bytes above `base`, if it is one (an offset past the 64 KiB port space,
/// which no bus produces, is `None` rather than a wrapped port).
pub fn port_at(base: u16, offset: u64) -> Option<u16> {
    u16::try_from(offset).ok().and_then(|o| base.checked_add(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_at_checks_the_range() {
        assert_eq!(port_at(0x20, 0), Some(0x20));
        assert_eq!(port_at(0x20, 0x4B1), Some(0x4D1));
        assert_eq!(port_at(0xFFFF, 1), None);
        assert_eq!(port_at(0, 1 << 16), None);
        assert_eq!(port_at(0x20, u64::MAX), None);
    }
}
