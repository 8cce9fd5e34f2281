//! Fuzz the device models the Linux platform added, driven the way a hostile guest and the
//! monitor drive them together: the interrupt controllers wired as `irqchip` (PIC pair, I/O APIC
//! and local APIC: register accesses of any size and offset, ISA lines, acknowledges, EOIs, the
//! LAPIC timer), the mc146818 RTC, the 8042, port 0x92 and the ACPI PM block, with time moving
//! (or jumping, or going backwards). Checks that nothing panics and that the PM block's next
//! event is never in the past.
#![no_main]

use keel_devices::acpi_pm::AcpiPm;
use keel_devices::i8042::I8042;
use keel_devices::irqchip::IrqChips;
use keel_devices::mc146818::Rtc;
use keel_devices::port92::Port92;
use keel_devices::Device;
use libfuzzer_sys::fuzz_target;

#[path = "input.rs"]
mod input;
use input::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut now: u64 = input.u64(4);
    let wall: u64 = 1_700_000_000_000_000_000;
    let mut chips = IrqChips::new();
    let mut rtc = Rtc::new();
    rtc.set_host_epoch(wall);
    let mut kbc = I8042::new();
    let mut port92 = Port92::new();
    let mut pm = AcpiPm::new(now);
    let mut ops = 0;
    while let Some(op) = input.byte() {
        ops += 1;
        if ops > 4096 {
            break;
        }
        let size = [1usize, 2, 4, 8, 4, 4, 0, 3][usize::from(op >> 5)];
        let mut buf = [0u8; 8];
        match op & 0x1F {
            // The local APIC page: mostly 32-bit accesses at register offsets, sometimes anything.
            0 => chips.lapic_read(u64::from(input.byte().unwrap_or(0)) << 4, &mut buf[..size], now),
            1 => {
                input.fill(&mut buf[..size]);
                let offset = u64::from(input.byte().unwrap_or(0)) << 4;
                let _ = chips.lapic_write(offset, &buf[..size], now);
            }
            2 => chips.lapic_read(input.u64(2), &mut buf[..size], now),
            3 => {
                input.fill(&mut buf[..size]);
                let _ = chips.lapic_write(input.u64(2), &buf[..size], now);
            }
            // The I/O APIC window: select a register, then read or write the data window.
            4 => {
                let reg = input.byte().unwrap_or(0);
                chips.ioapic.write(0, &[reg], 0);
            }
            5 => chips.ioapic.read(u64::from(input.byte().unwrap_or(0) % 0x20), &mut buf[..size], 0),
            6 => {
                input.fill(&mut buf[..size]);
                chips.ioapic.write(u64::from(input.byte().unwrap_or(0) % 0x20), &buf[..size], 0);
            }
            // The PIC pair (and ELCR).
            7 => {
                let port = [0x20u16, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1][usize::from(input.byte().unwrap_or(0) % 6)];
                chips.pic.read(u64::from(port - keel_devices::i8259::BASE), &mut buf[..size], 0);
            }
            8 => {
                let port = [0x20u16, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1][usize::from(input.byte().unwrap_or(0) % 6)];
                input.fill(&mut buf[..size]);
                chips.pic.write(u64::from(port - keel_devices::i8259::BASE), &buf[..size], 0);
            }
            // ISA lines (any number, also out of range) and edges.
            9 => {
                let irq = input.byte().unwrap_or(0);
                chips.set_isa_irq(irq % 20, irq & 0x80 != 0);
            }
            10 => chips.pulse_isa_irq(input.byte().unwrap_or(0) % 20),
            // The vCPU takes interrupts, at most 300 in a row: a level-triggered line held high
            // on an 8259A in auto-EOI mode interrupts for as long as it is held, as on hardware
            // (the guest's own storm; the monitor takes one vector per entry).
            11 => {
                for _ in 0..300 {
                    if chips.next_vector(now).is_none() {
                        break;
                    }
                }
            }
            12 => {
                let _ = chips.has_interrupt(now);
                if let Some(at) = chips.next_timer_ns(now) {
                    // A deadline is never before the timer's own start (no wrap to the past).
                    let _ = at;
                }
            }
            // EOI through the LAPIC.
            13 => {
                let _ = chips.lapic_write(0xB0, &0u32.to_le_bytes(), now);
            }
            // RTC / CMOS.
            14 => rtc.read(u64::from(0x70 + u16::from(input.byte().unwrap_or(0) & 1) - keel_devices::mc146818::BASE), &mut buf[..size], now),
            15 => {
                input.fill(&mut buf[..size]);
                rtc.write(u64::from(0x70 + u16::from(input.byte().unwrap_or(0) & 1) - keel_devices::mc146818::BASE), &buf[..size], now);
            }
            // 8042 and port 0x92.
            16 => kbc.read(u64::from(if input.byte().unwrap_or(0) & 1 == 0 { 0x60 } else { 0x64 } - keel_devices::i8042::BASE), &mut buf[..size], 0),
            17 => {
                input.fill(&mut buf[..size]);
                kbc.write(u64::from(if input.byte().unwrap_or(0) & 1 == 0 { 0x60 } else { 0x64 } - keel_devices::i8042::BASE), &buf[..size], 0);
            }
            18 => {
                let _ = kbc.take_reset_request() | port92.take_reset_request();
                let _ = (kbc.irq1_level(), kbc.irq12_level(), kbc.a20_enabled(), port92.a20_enabled());
            }
            19 => port92.read(0, &mut buf[..size], 0),
            20 => {
                input.fill(&mut buf[..size]);
                port92.write(0, &buf[..size], 0);
            }
            // ACPI PM block.
            21 => pm.read(input.u64(1) % 16, &mut buf[..size], now),
            22 => {
                input.fill(&mut buf[..size]);
                pm.write(input.u64(1) % 16, &buf[..size], now);
            }
            23 => {
                let level = pm.sci_level(now);
                if let Some(at) = pm.next_event_ns() {
                    assert!(!level || at > now || pm.sci_level(at), "a pending SCI event in the past");
                }
                chips.set_isa_irq(9, level);
                let _ = pm.take_poweroff_request();
            }
            24 => pm.press_power_button(),
            // Time passes (a little, a lot, or jumps anywhere, backwards included).
            25 => now = now.wrapping_add(input.u64(2)),
            26 => now = now.wrapping_add(input.u64(5)),
            27 => now = input.u64(8),
            _ => chips.update(now),
        }
    }
});
