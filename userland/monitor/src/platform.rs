//! The emulated platform (docs/guests.md): COM1, the PIC pair, the PIT, the debug-exit port and
//! the test MMIO register, behind a port bus and an MMIO bus. Unclaimed ports read as all ones
//! and ignore writes; unclaimed MMIO too; each is logged once per VM.

use alloc::string::String;
use alloc::vec::Vec;

use keel_devices::bus::{all_ones, Bus};
use keel_devices::i8254::Pit;
use keel_devices::i8259::PicPair;
use keel_devices::ns8250::Uart;
use keel_devices::testdev::TestDevice;
use keel_rt::io::debug;

const PORT_UART: usize = 0;
const PORT_PIC: usize = 1;
const PORT_PIT: usize = 2;
const PORT_61: usize = 3;
const PORT_EXIT: usize = 4;
const MMIO_TEST: usize = 0;

pub const TEST_MMIO_BASE: u64 = 0xfeb0_0000;

/// What a port write asks of the monitor beyond device state.
pub enum PortEffect {
    None,
    /// The guest wrote to the debug-exit port: stop with this status.
    Exit(u8),
    /// The guest asked for a reset (keyboard controller pulse, port 0xcf9, port 0x92 bit 0).
    Reset,
}

pub struct Platform {
    pub name: String,
    pub uart: Uart,
    pub pic: PicPair,
    pub pit: Pit,
    testdev: TestDevice,
    ports: Bus,
    mmio: Bus,
    /// Unclaimed ports and MMIO pages already logged (bounded).
    logged: Vec<u64>,
    logged_overflow: bool,
}

impl Platform {
    pub fn new(name: String) -> Platform {
        let mut ports = Bus::default();
        let mut mmio = Bus::default();
        // These fixed ranges cannot overlap; a failure would be a programming error caught in tests.
        let _ = ports.insert(0x3f8, 8, PORT_UART);
        let _ = ports.insert(0x20, 2, PORT_PIC);
        let _ = ports.insert(0xa0, 2, PORT_PIC);
        let _ = ports.insert(0x40, 4, PORT_PIT);
        let _ = ports.insert(0x61, 1, PORT_61);
        let _ = ports.insert(0xf4, 1, PORT_EXIT);
        let _ = mmio.insert(TEST_MMIO_BASE, 0x1000, MMIO_TEST);
        Platform {
            name,
            uart: Uart::new(),
            pic: PicPair::new(),
            pit: Pit::new(keel_rt::sys::clock_ns()),
            testdev: TestDevice::new(),
            ports,
            mmio,
            logged: Vec::new(),
            logged_overflow: false,
        }
    }

    fn log_once(&mut self, key: u64, what: &str) {
        if self.logged.contains(&key) {
            return;
        }
        if self.logged.len() >= 64 {
            if !self.logged_overflow {
                self.logged_overflow = true;
                debug(format_args!("vm {}: more unclaimed accesses; no longer logging them", self.name));
            }
            return;
        }
        self.logged.push(key);
        debug(format_args!("vm {}: {what} (logged once)", self.name));
    }

    pub fn port_read(&mut self, port: u16, data: &mut [u8]) {
        match self.ports.lookup(u64::from(port), data.len() as u64) {
            Some((PORT_UART, off)) => self.uart.read(off, data),
            Some((PORT_PIC, _)) => self.pic.read(port, data),
            Some((PORT_PIT, _)) => self.pit.read(port, keel_rt::sys::clock_ns(), data),
            Some((PORT_61, _)) => {
                all_ones(data);
                data[0] = self.pit.read_port61(keel_rt::sys::clock_ns());
            }
            _ => {
                all_ones(data);
                self.log_once(u64::from(port), &alloc::format!("read from unclaimed port {port:#x} gives all ones"));
            }
        }
    }

    pub fn port_write(&mut self, port: u16, data: &[u8]) -> PortEffect {
        match self.ports.lookup(u64::from(port), data.len() as u64) {
            Some((PORT_UART, off)) => self.uart.write(off, data),
            Some((PORT_PIC, _)) => self.pic.write(port, data),
            Some((PORT_PIT, _)) => self.pit.write(port, keel_rt::sys::clock_ns(), data),
            Some((PORT_61, _)) => self.pit.write_port61(keel_rt::sys::clock_ns(), data[0]),
            Some((PORT_EXIT, _)) => return PortEffect::Exit(data[0]),
            // The PC's reset paths, as Linux's reboot uses them: the 8042's pulse-reset command,
            // the chipset reset control register, fast reset through system control port A.
            // See: Linux arch/x86/kernel/reboot.c (BOOT_KBD, BOOT_CF9_FORCE).
            _ if port == 0x64 && data[0] == 0xfe => return PortEffect::Reset,
            _ if port == 0xcf9 && data[0] & 0x04 != 0 => return PortEffect::Reset,
            _ if port == 0x92 && data[0] & 0x01 != 0 => return PortEffect::Reset,
            _ => self.log_once(u64::from(port), &alloc::format!("write to unclaimed port {port:#x} ignored")),
        }
        PortEffect::None
    }

    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) {
        match self.mmio.lookup(gpa, data.len() as u64) {
            Some((MMIO_TEST, off)) => self.testdev.read(off, data),
            _ => {
                all_ones(data);
                self.log_once(
                    gpa & !0xfff | (1 << 63),
                    &alloc::format!("read from unclaimed MMIO {gpa:#x} gives all ones"),
                );
            }
        }
    }

    pub fn mmio_write(&mut self, gpa: u64, data: &[u8]) {
        match self.mmio.lookup(gpa, data.len() as u64) {
            Some((MMIO_TEST, off)) => self.testdev.write(off, data),
            _ => self.log_once(gpa & !0xfff | (1 << 63), &alloc::format!("write to unclaimed MMIO {gpa:#x} dropped")),
        }
    }
}

impl keel_x86emu::Mmio for Platform {
    fn read(&mut self, gpa: u64, data: &mut [u8]) {
        self.mmio_read(gpa, data);
    }
    fn write(&mut self, gpa: u64, data: &[u8]) {
        self.mmio_write(gpa, data);
    }
}
