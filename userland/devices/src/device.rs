//! The one interface every port and MMIO device model offers the monitor ([`Device`]), what a
//! write may ask of the monitor ([`WriteEffect`]) and the clock accesses carry ([`ClockNs`]).
//! A port model that names its registers by absolute port implements [`PortDevice`] instead and
//! gets its [`Device`] from the one adapter here.
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

/// The effect of one register write of a device that latches reset requests (for its
/// `take_reset_request`): `latch` as the write left it, `earlier` what it held before (taken,
/// cleared, ahead of the write). [`WriteEffect::Reset`] if this write asked for a reset; an
/// earlier request not yet taken stays latched either way.
pub fn reset_effect(latch: &mut bool, earlier: bool) -> WriteEffect {
    let reset = *latch;
    *latch |= earlier;
    if reset {
        WriteEffect::Reset
    } else {
        WriteEffect::None
    }
}

/// A port or MMIO device model: guest accesses at an offset from the device's base.
pub trait Device {
    /// A guest read of `data.len()` bytes at `offset`, at time `now`.
    fn read(&mut self, offset: u64, data: &mut [u8], now: ClockNs);

    /// A guest write of `data` at `offset`, at time `now`; what the monitor must do about it.
    fn write(&mut self, offset: u64, data: &[u8], now: ClockNs) -> WriteEffect;
}

/// A port model whose registers are named by absolute port numbers (the PIC's 0x20 and 0x4D0, the
/// 8042's 0x60 and 0x64): its [`Device`] is the one adapter below, which turns the bus's offset
/// back into the port. The model's windows on the port bus must then be placed at `BASE` plus
/// their device offset (the board's table does so).
pub trait PortDevice {
    /// The port at device offset 0.
    const BASE: u16;

    /// A guest read of `data.len()` bytes at `port`, at time `now` (fill all of `data`).
    fn read_port(&mut self, port: u16, data: &mut [u8], now: ClockNs);

    /// A guest write of `data` at `port`, at time `now`; what the monitor must do about it.
    fn write_port(&mut self, port: u16, data: &[u8], now: ClockNs) -> WriteEffect;
}

/// Every [`PortDevice`] is a [`Device`]: an offset past the port space (which no bus produces)
/// reads as all ones and ignores writes rather than wrapping to a low port.
impl<T: PortDevice> Device for T {
    fn read(&mut self, offset: u64, data: &mut [u8], now: ClockNs) {
        match port_at(T::BASE, offset) {
            Some(port) => self.read_port(port, data, now),
            None => data.fill(0xFF),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8], now: ClockNs) -> WriteEffect {
        match port_at(T::BASE, offset) {
            Some(port) => self.write_port(port, data, now),
            None => WriteEffect::None,
        }
    }
}

/// The port `offset` bytes above `base`, if it is one (an offset past the 64 KiB port space is
/// `None` rather than a wrapped port).
fn port_at(base: u16, offset: u64) -> Option<u16> {
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

    /// The port models through the one interface: offsets from their base, and the effects their
    /// writes return (each also kept for the model's `take_*` accessor).
    #[test]
    fn port_models_by_offset_and_effect() {
        use crate::{acpi_pm, i8042, i8254, i8259, mc146818, pci, port92};
        let mut b = [0u8; 2];
        let mut pic = i8259::PicPair::new();
        assert_eq!(pic.write(0x81, &[0x5A], 0), WriteEffect::None, "slave IMR at 0xA1");
        pic.read(0x81, &mut b[..1], 0);
        assert_eq!(b[0], 0x5A);
        assert_eq!(pic.imr() >> 8, 0x5A);
        assert_eq!(pic.write(0x4B1, &[0x0E], 0), WriteEffect::None, "ELCR slave at 0x4D1");
        pic.read(0x4B1, &mut b[..1], 0);
        assert_eq!(b[0], 0x0E);
        pic.read(u64::MAX, &mut b, 0);
        assert_eq!(b, [0xFF; 2]);

        let mut pit = i8254::Pit::new(0);
        let _ = pit.write(0x21, &[0x01], 0);
        pit.read(0x21, &mut b, 0);
        assert_eq!((b[0] & 0x0F, b[1]), (0x01, 0xFF), "port 0x61 at offset 0x21");

        let mut kbc = i8042::I8042::new();
        assert_eq!(kbc.write(4, &[0xFE], 0), WriteEffect::Reset, "pulse reset at 0x64");
        assert!(kbc.take_reset_request());
        assert_eq!(kbc.write(4, &[0xAA], 0), WriteEffect::None);

        let mut p92 = port92::Port92::new();
        assert_eq!(p92.write(0, &[port92::RESET | port92::A20], 0), WriteEffect::Reset);
        assert_eq!(p92.write(0, &[port92::A20], 0), WriteEffect::None, "a reset is reported once");
        assert!(p92.take_reset_request(), "and kept for take_reset_request");
        assert_eq!(p92.write(1, &[port92::RESET], 0), WriteEffect::None);

        let mut host = pci::PciHost::new();
        assert_eq!(host.write(1, &[0x06], 0), WriteEffect::Reset, "0xCF9 at offset 1");
        assert!(host.take_reset_request());

        let mut pm = acpi_pm::AcpiPm::new(0);
        let s5 = u16::from(acpi_pm::SLP_TYP_S5) << 10 | 1 << 13;
        assert_eq!(pm.write(acpi_pm::PM1_CNT, &s5.to_le_bytes(), 0), WriteEffect::PowerOff);
        assert!(pm.take_poweroff_request());

        // The RTC shows the monitor clock plus the host epoch: 2001-09-09 01:46:40 UTC.
        let mut rtc = mc146818::Rtc::new();
        rtc.set_host_epoch(1_000_000_000 * 1_000_000_000 - 5_000_000_000);
        assert_eq!(rtc.guest_time(1_000_000_000 * 1_000_000_000), 1_000_000_000);
        let _ = rtc.write(0, &[mc146818::REG_SECONDS], 0);
        rtc.read(1, &mut b[..1], 5_000_000_000);
        assert_eq!(b[0], 0x40, "40 seconds, BCD");
    }
}
