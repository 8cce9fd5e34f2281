//! Fuzz the PCI host and the virtio PCI transport together, as a hostile guest drives them:
//! configuration cycles through 0xCF8/0xCFC of any width (BAR sizing and moving included), MMIO
//! of any width anywhere in the BAR, the monitor's `process`, and guest RAM scribbles, plus two
//! shortcuts that reach deep states fast (a correct driver setup, and a well-formed request).
//! Checks: no panic; only IRQ 11 is ever raised; the ids survive; the reset request only follows
//! a 0xCF9 write.
#![no_main]

use keel_addr::Gpa;
use keel_devices::guest_memory::{GuestMemory, VecMemory};
use keel_devices::pci::{PciHost, CONFIG_ADDRESS, CONFIG_DATA, PORT_BASE, RESET_CONTROL};
use keel_devices::Device;
use keel_virtio::pci::{common, COMMON, NOTIFY};
use keel_virtio::{status, ChaCha20Rng, VirtioPci, VirtioRng};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 256 * 1024;
const DESC: u64 = 0x1_0000;
const AVAIL: u64 = 0x1_1000;
const USED: u64 = 0x1_2000;
const DATA: u64 = 0x2_0000;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn u64(&mut self, n: usize) -> u64 {
        (0..n).fold(0, |acc, i| acc | u64::from(self.byte().unwrap_or(0)) << (8 * i))
    }
}

fn bar0(host: &PciHost) -> u64 {
    host.function(1).and_then(|f| f.config().bar_address(0)).unwrap_or(0)
}

fn mmio_write(host: &mut PciHost, offset: u64, size: usize, value: u64) {
    let base = bar0(host);
    host.mmio_write(Gpa(base.wrapping_add(offset)), &value.to_le_bytes()[..size], 0);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut host = PciHost::new();
    let rng = VirtioPci::new(VirtioRng::new(ChaCha20Rng::from_seed([7; 32])));
    host.insert(1, 11, Box::new(rng)).unwrap();
    host.assign_resources(Gpa(0xE000_0000), 0x1000_0000, 0xC000, 0x1000).unwrap();
    let mut mem = VecMemory::new(Gpa(0), RAM);
    let mut avail_idx = 0u16;
    let mut ops = 0;
    while let Some(op) = input.byte() {
        ops += 1;
        if ops > 2048 {
            break;
        }
        let size = [1usize, 2, 4, 8, 1, 2, 4, 3][usize::from(op >> 5)];
        let mut buf = [0u8; 8];
        match op & 0x0F {
            0 => {
                let reg = input.u64(1) as u32;
                let dev = u32::from(input.byte().unwrap_or(0) % 4);
                let a = 0x8000_0000 | dev << 11 | reg;
                host.write(u64::from(CONFIG_ADDRESS - PORT_BASE), &a.to_le_bytes(), 0);
            }
            1 => host.read(u64::from(CONFIG_DATA + u16::from(op >> 5 & 3) - PORT_BASE), &mut buf[..size.min(4)], 0),
            2 => {
                let v = input.u64(4);
                host.write(u64::from(CONFIG_DATA + u16::from(op >> 5 & 3) - PORT_BASE), &v.to_le_bytes()[..size.min(4)], 0);
            }
            3 => {
                let off = input.u64(2) & 0x3FFF;
                let base = bar0(&host);
                host.mmio_read(Gpa(base.wrapping_add(off)), &mut buf[..size], 0);
            }
            4 => {
                let off = input.u64(2) & 0x3FFF;
                let v = input.u64(8);
                mmio_write(&mut host, off, size, v);
            }
            5 => host.process(&mut mem),
            6 => {
                let at = input.u64(3) % RAM as u64;
                let v = input.u64(8);
                mem.write(Gpa(at), &v.to_le_bytes()[..size]);
            }
            7 => {
                // A correct driver: reset, features, queue 0 of 16, DRIVER_OK.
                let s = |host: &mut PciHost, v: u8| mmio_write(host, COMMON + common::DEVICE_STATUS, 1, u64::from(v));
                s(&mut host, 0);
                s(&mut host, status::ACKNOWLEDGE | status::DRIVER);
                mmio_write(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
                mmio_write(&mut host, COMMON + common::DRIVER_FEATURE, 4, 1);
                s(&mut host, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
                mmio_write(&mut host, COMMON + common::QUEUE_SELECT, 2, 0);
                mmio_write(&mut host, COMMON + common::QUEUE_SIZE, 2, 16);
                mmio_write(&mut host, COMMON + common::QUEUE_DESC, 8, DESC);
                mmio_write(&mut host, COMMON + common::QUEUE_DRIVER, 8, AVAIL);
                mmio_write(&mut host, COMMON + common::QUEUE_DEVICE, 8, USED);
                mmio_write(&mut host, COMMON + common::QUEUE_ENABLE, 2, 1);
                s(&mut host, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK);
                avail_idx = 0;
                mem.write(Gpa(AVAIL + 2), &[0, 0]);
            }
            8 => {
                // A request: descriptor `d` (input-chosen) made available and notified.
                let d = u64::from(input.byte().unwrap_or(0) % 16);
                let len = input.u64(2) as u32;
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(&(DATA + d * 0x1000).to_le_bytes());
                raw[8..12].copy_from_slice(&len.to_le_bytes());
                raw[12..14].copy_from_slice(&2u16.to_le_bytes());
                mem.write(Gpa(DESC + 16 * d), &raw);
                mem.write(Gpa(AVAIL + 4 + 2 * u64::from(avail_idx % 16)), &(d as u16).to_le_bytes());
                avail_idx = avail_idx.wrapping_add(1);
                mem.write(Gpa(AVAIL + 2), &avail_idx.to_le_bytes());
                mmio_write(&mut host, NOTIFY, 2, 0);
            }
            9 => {
                let port = 0xCF8 + u16::from(op >> 5);
                if op & 0x10 != 0 {
                    let v = input.u64(4);
                    host.write(u64::from(port - PORT_BASE), &v.to_le_bytes()[..size.min(4)], 0);
                } else {
                    host.read(u64::from(port - PORT_BASE), &mut buf[..size.min(4)], 0);
                }
            }
            10 => {
                let _ = host.assign_resources(Gpa(input.u64(4)), input.u64(4), input.u64(2) as u16, input.u64(2) as u16);
            }
            _ => {
                let gpa = input.u64(8);
                host.mmio_read(Gpa(gpa), &mut buf[..size], 0);
            }
        }
        assert_eq!(host.irq_levels() & !(1 << 11), 0);
    }
    let _ = host.take_reset_request();
    host.write(u64::from(RESET_CONTROL - PORT_BASE), &[0], 0);
    assert!(!host.take_reset_request());
    let f = host.function(1).unwrap();
    assert_eq!(f.config().u32_at(0), 0x1044_1AF4);
});
