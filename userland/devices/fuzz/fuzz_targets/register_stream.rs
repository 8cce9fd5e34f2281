//! Fuzz the device models with arbitrary register streams, the way a hostile guest and a
//! monitor would drive them together: reads and writes of any size at any offset or port, bytes
//! from the console, IRQ lines forwarded to the PIC, INTA cycles, and time moving (or not) for
//! the PIT. Checks that nothing panics and that the buffers and counts stay bounded.
#![no_main]

use keel_devices::i8254::MAX_EDGES_PER_ADVANCE;
use keel_devices::ns8250::OUTPUT_CAP;
use keel_devices::{Bus, Device, PicPair, Pit, TestDevice, Uart};
use libfuzzer_sys::fuzz_target;

#[path = "input.rs"]
mod input;
use input::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut now: u64 = input.u64(4);
    let mut uart = Uart::new();
    let mut pic = PicPair::new();
    let mut pit = Pit::new(now);
    let mut testdev = TestDevice::new();
    let mut ports = Bus::new();
    ports.insert(0x3F8, 8, 0).unwrap();
    // As the monitor's platform table: the PIC's and the PIT's windows at their device offsets.
    ports.insert_at(0x20, 2, 1, 0).unwrap();
    ports.insert_at(0xA0, 2, 1, 0x80).unwrap();
    ports.insert_at(0x4D0, 2, 1, 0x4B0).unwrap();
    ports.insert_at(0x40, 4, 2, 0).unwrap();
    ports.insert_at(0x61, 1, 2, 0x21).unwrap();
    let mut output = Vec::new();
    let mut ops = 0;
    while let Some(op) = input.byte() {
        ops += 1;
        if ops > 4096 {
            break;
        }
        let size = [1usize, 1, 2, 4, 8, 0, 3, 1][usize::from(op >> 5)];
        let mut buf = [0u8; 8];
        match op & 0x1F {
            // Port reads and writes through the bus, as the monitor dispatches them.
            0..=7 => {
                let select = input.byte().unwrap_or(0);
                let port = match (op & 7) >> 1 {
                    0 => 0x3F8 + u64::from(select % 8),
                    1 => [0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1][usize::from(select % 6)],
                    2 => 0x40 + u64::from(select % 4),
                    _ => 0x61,
                };
                let write = op & 1 == 1;
                if write {
                    for b in &mut buf[..size] {
                        *b = input.byte().unwrap_or(0);
                    }
                }
                match ports.lookup(port, size.max(1) as u64) {
                    Some((index, offset)) => {
                        let device: &mut dyn Device = match index {
                            0 => &mut uart,
                            1 => &mut pic,
                            _ => &mut pit,
                        };
                        if write {
                            let _ = device.write(offset, &buf[..size], now);
                        } else {
                            device.read(offset, &mut buf[..size], now);
                        }
                    }
                    None => keel_devices::all_ones(&mut buf[..size]),
                }
            }
            // Direct accesses with arbitrary offsets and ports.
            8 => uart.read(input.u64(2), &mut buf[..size], 0),
            9 => {
                buf[0] = input.byte().unwrap_or(0);
                uart.write(input.u64(2), &buf[..size], 0);
            }
            10 => pic.read(input.u64(2), &mut buf[..size], 0),
            11 => {
                buf[0] = input.byte().unwrap_or(0);
                pic.write(input.u64(2), &buf[..size], 0);
            }
            12 => pit.read(input.u64(2), &mut buf[..size], now),
            13 => {
                buf[0] = input.byte().unwrap_or(0);
                pit.write(input.u64(2), &buf[..size], now);
            }
            14 => testdev.read(input.u64(2), &mut buf[..size], 0),
            15 => {
                for b in &mut buf[..size] {
                    *b = input.byte().unwrap_or(0);
                }
                testdev.write(input.u64(2), &buf[..size], 0);
            }
            // The console sends a byte.
            16 | 17 => {
                let can = uart.can_receive();
                let took = uart.receive(input.byte().unwrap_or(0));
                assert_eq!(can, took);
            }
            // The monitor drains output.
            18 => {
                output.clear();
                uart.take_output(&mut output);
                assert!(output.len() <= OUTPUT_CAP);
            }
            // Time passes (sometimes a lot, sometimes backwards).
            19 => now = now.wrapping_add(input.u64(2)),
            20 => now = now.wrapping_add(input.u64(5)),
            21 => now = input.u64(8),
            // IRQ lines and INTA cycles.
            22 => {
                let irq = input.byte().unwrap_or(0);
                pic.set_irq(irq % 20, irq & 0x80 != 0);
            }
            23 => {
                let has = pic.has_interrupt();
                if let Some(vector) = pic.acknowledge() {
                    let _ = (has, vector);
                }
            }
            _ => {}
        }
        // After every exit the monitor forwards the UART line and the PIT edges.
        pic.set_irq(4, uart.irq_level());
        let edges = pit.advance(now);
        assert!(edges <= MAX_EDGES_PER_ADVANCE);
        for _ in 0..edges.min(2) {
            pic.set_irq(0, true);
            pic.set_irq(0, false);
        }
        if let Some(next) = pit.next_event_ns(now) {
            assert!(next >= now || next == u64::MAX);
        }
        assert!(uart.output_len() <= OUTPUT_CAP);
    }
});
