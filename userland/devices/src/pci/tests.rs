//! Host tests for the PCI host: Linux's type 1 probe and sanity check, all access widths, BAR
//! sizing and decoding, capabilities, interrupts, firmware-style resource assignment, the reset
//! control register and a random port stream.

use super::*;
use crate::device::{ClockNs, Device, WriteEffect};
use crate::guest_memory::{GuestMemory, VecMemory};
use crate::testutil::Rng;
use keel_addr::Gpa;

/// The device offset of `port` (ports below the base wrap to offsets no port reaches).
fn at(port: u16) -> u64 {
    u64::from(port).wrapping_sub(u64::from(PORT_BASE))
}

/// A test function: BAR0 4 KiB memory (a scratch page), BAR2-3 64-bit 1 MiB, BAR4 32 bytes of
/// I/O; INTA#; counts `process` calls.
struct Dummy {
    cs: ConfigSpace,
    page: [u8; 4096],
    io: [u8; 32],
    level: bool,
    processed: u32,
}

impl Dummy {
    fn new() -> Self {
        let mut cs = ConfigSpace::new(0x1234, 0x5678, 0xFF_00_00, 7);
        assert!(cs.set_bar(0, Bar { kind: BarKind::Memory32 { prefetchable: false }, size: 4096 }));
        assert!(cs.set_bar(2, Bar { kind: BarKind::Memory64 { prefetchable: true }, size: 1 << 20 }));
        assert!(cs.set_bar(4, Bar { kind: BarKind::Io, size: 32 }));
        cs.set_interrupt_pin(1);
        cs.set_subsystem(0xAAAA, 0xBBBB);
        Self { cs, page: [0; 4096], io: [0; 32], level: false, processed: 0 }
    }
}

impl PciFunction for Dummy {
    fn config(&self) -> &ConfigSpace {
        &self.cs
    }
    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cs
    }
    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8], _now: ClockNs) {
        let src: &[u8] = if bar == 0 { &self.page } else { &self.io };
        let o = offset as usize;
        data.copy_from_slice(&src[o..o + data.len()]);
    }
    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        let o = offset as usize;
        match bar {
            0 => self.page[o..o + data.len()].copy_from_slice(data),
            4 => self.io[o..o + data.len()].copy_from_slice(data),
            _ => {}
        }
        // The I/O BAR's last byte drives the INTx line (for the level cache's test).
        if bar == 4 && o + data.len() == 32 {
            self.level = data[data.len() - 1] != 0;
        }
        WriteEffect::None
    }
    fn irq_level(&self) -> bool {
        self.level
    }
    fn process(&mut self, _mem: &mut dyn GuestMemory) {
        self.processed += 1;
        self.io[0] = self.processed as u8;
    }
}

fn addr(device: u32, function: u32, reg: u32) -> u32 {
    0x8000_0000 | device << 11 | function << 8 | reg
}

fn cfg_read(host: &mut PciHost, device: u32, reg: u32, size: usize) -> u32 {
    host.write(at(CONFIG_ADDRESS), &addr(device, 0, reg & !3).to_le_bytes(), 0);
    let mut b = [0u8; 4];
    host.read(at(CONFIG_DATA + (reg & 3) as u16), &mut b[..size], 0);
    u32::from_le_bytes(b)
}

fn cfg_write(host: &mut PciHost, device: u32, reg: u32, size: usize, value: u32) {
    host.write(at(CONFIG_ADDRESS), &addr(device, 0, reg & !3).to_le_bytes(), 0);
    host.write(at(CONFIG_DATA + (reg & 3) as u16), &value.to_le_bytes()[..size], 0);
}

fn host_with_dummy() -> PciHost {
    let mut host = PciHost::new();
    host.insert(3, 11, Box::new(Dummy::new())).unwrap();
    host
}

/// Linux's pci_check_type1 and pci_sanity_check (arch/x86/pci/direct.c).
#[test]
fn linux_type1_probe() {
    let mut host = host_with_dummy();
    host.write(at(0xCFB), &[0x01], 0);
    let mut b = [0u8; 4];
    host.read(at(CONFIG_ADDRESS), &mut b, 0);
    let saved = u32::from_le_bytes(b);
    host.write(at(CONFIG_ADDRESS), &0x8000_0000u32.to_le_bytes(), 0);
    host.read(at(CONFIG_ADDRESS), &mut b, 0);
    assert_eq!(u32::from_le_bytes(b), 0x8000_0000);
    host.write(at(CONFIG_ADDRESS), &saved.to_le_bytes(), 0);
    // Sanity check: some devfn on bus 0 has class 0x0600 (host bridge) or Intel's vendor id.
    let found = (0..256u32).any(|devfn| {
        host.write(at(CONFIG_ADDRESS), &(0x8000_0000 | devfn << 8 | 0x08).to_le_bytes(), 0);
        let mut w = [0u8; 2];
        host.read(at(CONFIG_DATA + 2), &mut w, 0);
        u16::from_le_bytes(w) == 0x0600
    });
    assert!(found);
    assert_eq!(cfg_read(&mut host, 0, 0, 4), 0x1237_8086);
    assert_eq!(cfg_read(&mut host, 0, 0x08, 4), 0x0600_0002);
    assert_eq!(cfg_read(&mut host, 0, 0x0E, 1), 0, "single-function type 0 header");
}

#[test]
fn absent_and_out_of_range_read_all_ones() {
    let mut host = host_with_dummy();
    assert_eq!(cfg_read(&mut host, 1, 0, 4), 0xFFFF_FFFF, "empty slot");
    assert_eq!(cfg_read(&mut host, 31, 0, 2), 0xFFFF);
    host.write(at(CONFIG_ADDRESS), &(addr(3, 1, 0)).to_le_bytes(), 0);
    let mut b = [0u8; 4];
    host.read(at(CONFIG_DATA), &mut b, 0);
    assert_eq!(b, [0xFF; 4], "function 1");
    host.write(at(CONFIG_ADDRESS), &(addr(3, 0, 0) | 1 << 16).to_le_bytes(), 0);
    host.read(at(CONFIG_DATA), &mut b, 0);
    assert_eq!(b, [0xFF; 4], "bus 1");
    host.write(at(CONFIG_ADDRESS), &(addr(3, 0, 0) & !0x8000_0000).to_le_bytes(), 0);
    host.read(at(CONFIG_DATA), &mut b, 0);
    assert_eq!(b, [0xFF; 4], "enable bit clear");
    // Writes there change nothing.
    host.write(at(CONFIG_DATA), &[0; 4], 0);
    assert_eq!(cfg_read(&mut host, 3, 0, 4), 0x5678_1234);
    // Address register: reserved and low bits read 0; only dword accesses reach it.
    host.write(at(CONFIG_ADDRESS), &0xFFFF_FFFFu32.to_le_bytes(), 0);
    host.read(at(CONFIG_ADDRESS), &mut b, 0);
    assert_eq!(u32::from_le_bytes(b), 0x80FF_FFFC);
    host.write(at(CONFIG_ADDRESS), &[0, 0], 0);
    host.read(at(CONFIG_ADDRESS), &mut b, 0);
    assert_eq!(u32::from_le_bytes(b), 0x80FF_FFFC);
    host.read(at(CONFIG_ADDRESS), &mut b[..2], 0);
    assert_eq!(&b[..2], &[0xFF, 0xFF]);
    // A dword read at 0xCFD: three bytes of config, then one past the data port.
    cfg_write(&mut host, 3, 0x0C, 1, 0x10);
    host.write(at(CONFIG_ADDRESS), &addr(3, 0, 0x0C).to_le_bytes(), 0);
    host.read(at(CONFIG_DATA + 1), &mut b, 0);
    assert_eq!(b, [0, 0, 0, 0xFF]);
    host.read(at(0xD00), &mut b, 0);
    assert_eq!(b, [0xFF; 4]);
}

#[test]
fn header_registers() {
    let mut host = host_with_dummy();
    assert_eq!(cfg_read(&mut host, 3, 0, 4), 0x5678_1234);
    assert_eq!(cfg_read(&mut host, 3, 0x08, 4), 0xFF00_0007);
    assert_eq!(cfg_read(&mut host, 3, 0x2C, 4), 0xBBBB_AAAA);
    assert_eq!(cfg_read(&mut host, 3, 0x3D, 1), 1, "INTA#");
    assert_eq!(cfg_read(&mut host, 3, 0x3C, 1), 0xFF, "not routed yet");
    // Read-only ids.
    cfg_write(&mut host, 3, 0, 4, 0);
    cfg_write(&mut host, 3, 0x08, 4, 0);
    cfg_write(&mut host, 3, 0x3D, 1, 3);
    assert_eq!(cfg_read(&mut host, 3, 0, 4), 0x5678_1234);
    assert_eq!(cfg_read(&mut host, 3, 0x08, 4), 0xFF00_0007);
    assert_eq!(cfg_read(&mut host, 3, 0x3D, 1), 1);
    // Command: only the defined bits stick; byte and word writes at any offset.
    cfg_write(&mut host, 3, 0x04, 2, 0xFFFF);
    assert_eq!(cfg_read(&mut host, 3, 0x04, 2), 0x0547);
    cfg_write(&mut host, 3, 0x05, 1, 0x00);
    assert_eq!(cfg_read(&mut host, 3, 0x04, 2), 0x0047);
    cfg_write(&mut host, 3, 0x3C, 1, 11);
    assert_eq!(cfg_read(&mut host, 3, 0x3C, 2), 0x010B);
    cfg_write(&mut host, 3, 0x0C, 2, 0x4010);
    assert_eq!(cfg_read(&mut host, 3, 0x0C, 4), 0x0000_4010);
    // The expansion ROM BAR and unused BARs read 0 even after sizing.
    for reg in [0x30u32, 0x24] {
        cfg_write(&mut host, 3, reg, 4, 0xFFFF_FFFF);
        assert_eq!(cfg_read(&mut host, 3, reg, 4), 0, "{reg:#x}");
    }
}

#[test]
fn bar_sizing_and_decoding() {
    let mut host = host_with_dummy();
    // Sizing: all ones in, mask and type bits out (PCI 3.0 6.2.5.1).
    cfg_write(&mut host, 3, 0x10, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut host, 3, 0x10, 4), 0xFFFF_F000);
    cfg_write(&mut host, 3, 0x18, 4, 0xFFFF_FFFF);
    cfg_write(&mut host, 3, 0x1C, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut host, 3, 0x18, 4), 0xFFF0_000C, "64-bit prefetchable");
    assert_eq!(cfg_read(&mut host, 3, 0x1C, 4), 0xFFFF_FFFF);
    cfg_write(&mut host, 3, 0x20, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut host, 3, 0x20, 4), 0xFFFF_FFE1, "I/O");
    // Program them.
    cfg_write(&mut host, 3, 0x10, 4, 0xE000_1234);
    assert_eq!(cfg_read(&mut host, 3, 0x10, 4), 0xE000_1000, "low bits masked");
    cfg_write(&mut host, 3, 0x18, 4, 0x0010_0000);
    cfg_write(&mut host, 3, 0x1C, 4, 0x1);
    cfg_write(&mut host, 3, 0x20, 4, 0xC040);
    let mut b = [0u8; 4];
    assert!(host.mmio_claim(Gpa(0xE000_1000), 4).is_none(), "memory decoding is off");
    assert!(host.mmio_write(Gpa(0xE000_1000), &[1, 2, 3, 4], 0).is_none());
    cfg_write(&mut host, 3, 0x04, 2, u32::from(CMD_MEMORY));
    assert_eq!(host.mmio_claim(Gpa(0xE000_1000), 4), Some((3, 0, 0)));
    assert_eq!(host.mmio_claim(Gpa(0xE000_1FFC), 4), Some((3, 0, 0xFFC)));
    assert_eq!(host.mmio_claim(Gpa(0xE000_1FFE), 4), None, "straddles the end");
    assert_eq!(host.mmio_claim(Gpa(0xE000_0FFF), 1), None);
    assert_eq!(host.mmio_claim(Gpa(0x1_0010_0008), 8), Some((3, 2, 8)), "64-bit BAR above 4 GiB");
    assert!(host.mmio_write(Gpa(0xE000_1010), &[1, 2, 3, 4], 0).is_some());
    assert!(host.mmio_read(Gpa(0xE000_1010), &mut b, 0));
    assert_eq!(b, [1, 2, 3, 4]);
    assert!(host.io_write(0xC040, &[5], 0).is_none(), "I/O decoding is off");
    cfg_write(&mut host, 3, 0x04, 2, u32::from(CMD_MEMORY | CMD_IO));
    assert!(host.io_write(0xC05F, &[5], 0).is_some());
    assert!(host.io_read(0xC05F, &mut b[..1], 0));
    assert_eq!(b[0], 5);
    assert!(!host.io_read(0xC060, &mut b[..1], 0));
    assert_eq!(host.io_claim(0xC040, 2), Some((3, 4, 0)));
    // Base 0 is unassigned: never decoded.
    cfg_write(&mut host, 3, 0x10, 4, 0);
    assert!(host.mmio_claim(Gpa(0), 4).is_none());
    assert!(host.mmio_claim(Gpa(0x10), 4).is_none());
    assert!(host.mmio_claim(Gpa(u64::MAX), 4).is_none());
    assert!(host.mmio_claim(Gpa(0xE000_1000), 0).is_none());
}

#[test]
fn interrupts() {
    let mut host = host_with_dummy();
    assert_eq!(host.irq_levels(), 0);
    dummy_level(&mut host, true);
    assert_eq!(host.irq_levels(), 1 << 11);
    assert_eq!(cfg_read(&mut host, 3, 0x06, 2) & u32::from(STS_INTERRUPT), u32::from(STS_INTERRUPT));
    cfg_write(&mut host, 3, 0x04, 2, u32::from(CMD_INTX_DISABLE));
    assert_eq!(host.irq_levels(), 0, "interrupt disable");
    assert_eq!(
        cfg_read(&mut host, 3, 0x06, 2) & u32::from(STS_INTERRUPT),
        u32::from(STS_INTERRUPT),
        "status still shows it"
    );
    cfg_write(&mut host, 3, 0x04, 2, 0);
    dummy_level(&mut host, false);
    assert_eq!(host.irq_levels(), 0);
    assert_eq!(cfg_read(&mut host, 3, 0x06, 2) & u32::from(STS_INTERRUPT), 0);
    assert_eq!(host.slot_irq(3), Some(11));
    assert_eq!(host.slot_irq(4), None);
}

/// The host asks a function its level again only after it was reached, and `process` gives only
/// the functions reached their turn.
#[test]
fn levels_and_processing_follow_the_functions_reached() {
    let mut host = PciHost::new();
    host.insert(3, 11, Box::new(Dummy::new())).unwrap();
    host.insert(5, 9, Box::new(Dummy::new())).unwrap();
    host.assign_resources(Gpa(0xE000_0000), 0x1000_0000, 0xC000, 0x4000).unwrap();
    let io = |host: &PciHost, slot: usize| host.function(slot).unwrap().config().bar_address(4).unwrap() as u16;
    let (io3, io5) = (io(&host, 3), io(&host, 5));
    assert_eq!(host.irq_levels(), 0);
    assert!(host.io_write(io5 + 31, &[1], 0).is_some());
    assert_eq!(host.irq_levels(), 1 << 9);
    assert!(host.io_write(io3 + 31, &[1], 0).is_some());
    assert_eq!(host.irq_levels(), 1 << 9 | 1 << 11);
    let mut mem = VecMemory::new(Gpa(0), 4096);
    host.process(&mut mem);
    host.process(&mut mem);
    assert!(host.io_write(io5 + 31, &[0], 0).is_some());
    assert_eq!(host.irq_levels(), 1 << 11);
    host.process(&mut mem);
    // The dummy counts its turns in its I/O BAR's first byte.
    let mut turns = |port: u16| {
        let mut b = [0u8];
        assert!(host.io_read(port, &mut b, 0));
        b[0]
    };
    assert_eq!((turns(io3), turns(io5)), (1, 2), "each once per call after it was reached");
    // Interrupt disable through configuration space drops the line.
    cfg_write(&mut host, 3, 0x04, 2, u32::from(CMD_INTX_DISABLE | CMD_IO | CMD_MEMORY));
    assert_eq!(host.irq_levels(), 0);
}

/// Sets the dummy's INTx line through a fresh box (the host only holds trait objects), as
/// `function_mut` would (which makes the host forget the levels it knew).
fn dummy_level(host: &mut PciHost, level: bool) {
    host.function_mut(3);
    let old = host.slots[3].take().unwrap();
    let cs = old.function.config().clone();
    let mut d = Dummy::new();
    d.cs = cs;
    d.level = level;
    host.slots[3] = Some(Slot { function: Box::new(d), irq: old.irq });
}

#[test]
fn insert_errors_and_process() {
    let mut host = PciHost::new();
    assert_eq!(host.insert(0, 11, Box::new(Dummy::new())), Err(PciError::BadSlot));
    assert_eq!(host.insert(32, 11, Box::new(Dummy::new())), Err(PciError::BadSlot));
    assert_eq!(host.insert(1, 16, Box::new(Dummy::new())), Err(PciError::BadIrq));
    host.insert(1, 10, Box::new(Dummy::new())).unwrap();
    assert_eq!(host.insert(1, 10, Box::new(Dummy::new())), Err(PciError::SlotTaken));
    assert!(host.function(1).is_some());
    assert!(host.function(2).is_none());
    assert!(host.function(99).is_none());
    let mut mem = VecMemory::new(Gpa(0), 16);
    host.process(&mut mem);
    host.process(&mut mem);
    assert!(format!("{host:?}").contains("[1]"));
    assert_eq!(PciError::WindowFull.to_string(), "PCI BARs do not fit in the address window");
}

#[test]
fn firmware_assignment() {
    let mut host = PciHost::new();
    host.insert(1, 11, Box::new(Dummy::new())).unwrap();
    host.insert(2, 10, Box::new(Dummy::new())).unwrap();
    host.assign_resources(Gpa(0xE000_0000), 0x1000_0000, 0xC000, 0x4000).unwrap();
    let mut seen = Vec::new();
    for slot in [1usize, 2] {
        let cs = host.function(slot).unwrap().config();
        assert_eq!(cs.command() & (CMD_MEMORY | CMD_IO), CMD_MEMORY | CMD_IO);
        assert_eq!(cs.interrupt_line(), if slot == 1 { 11 } else { 10 });
        for index in [0, 2, 4] {
            let bar = cs.bar(index).unwrap();
            let at = cs.bar_address(index).unwrap();
            assert_eq!(at % bar.size, 0, "naturally aligned");
            if bar.kind == BarKind::Io {
                assert!((0xC000..0x10000).contains(&at));
            } else {
                assert!(at >= 0xE000_0000 && at + bar.size <= 0xF000_0000);
            }
            seen.push((at, bar.size, bar.kind == BarKind::Io));
        }
    }
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            assert!(a.2 != b.2 || a.0 + a.1 <= b.0 || b.0 + b.1 <= a.0, "overlap {a:?} {b:?}");
        }
    }
    // The two 1 MiB BARs come first, then the pages.
    assert_eq!(host.function(1).unwrap().config().bar_address(2), Some(0xE000_0000));
    assert_eq!(host.mmio_claim(Gpa(0xE020_0000), 4), Some((1, 0, 0)));
    // Too small a window fails and changes nothing.
    let mut host = PciHost::new();
    host.insert(1, 11, Box::new(Dummy::new())).unwrap();
    assert_eq!(host.assign_resources(Gpa(0xE000_0000), 0x10_0000, 0xC000, 0x100), Err(PciError::WindowFull));
    assert_eq!(host.function(1).unwrap().config().bar_address(0), Some(0));
    assert_eq!(host.assign_resources(Gpa(u64::MAX - 0xFFF), 0x1000, 0xC000, 0x100), Err(PciError::WindowFull));
}

#[test]
fn config_space_rules() {
    let mut cs = ConfigSpace::new(1, 2, 0x02_00_00, 0);
    let mem = |size| Bar { kind: BarKind::Memory32 { prefetchable: false }, size };
    assert!(!cs.set_bar(6, mem(4096)));
    assert!(!cs.set_bar(usize::MAX, mem(4096)));
    assert!(!cs.set_bar(0, mem(3000)), "not a power of two");
    assert!(!cs.set_bar(0, mem(8)), "too small");
    assert!(!cs.set_bar(0, Bar { kind: BarKind::Io, size: 512 }), "I/O BARs are at most 256 bytes");
    assert!(!cs.set_bar(5, Bar { kind: BarKind::Memory64 { prefetchable: false }, size: 4096 }), "no room");
    assert!(cs.set_bar(4, Bar { kind: BarKind::Memory64 { prefetchable: false }, size: 1 << 33 }));
    assert!(!cs.set_bar(5, mem(4096)), "upper half taken");
    assert!(!cs.set_bar(4, mem(4096)));
    assert!(cs.set_bar(0, mem(1 << 31)));
    assert!(cs.bar(5).is_none());
    assert!(!cs.set_bar_address(5, 0));
    cs.write(0x20, &[0xFF; 8]);
    assert_eq!(cs.u32_at(0x20), 0x0000_0004, "8 GiB BAR: no low address bits");
    assert_eq!(cs.u32_at(0x24), 0xFFFF_FFFE);
    // Capabilities chain from 0x34, dword aligned, and set the status bit.
    assert_eq!(cs.u16_at(STATUS) & STS_CAP_LIST, 0);
    assert_eq!(cs.add_capability(0x09, &[1, 2, 3]), Some(0x40));
    assert_eq!(cs.add_capability(0x05, &[0; 10]), Some(0x48));
    assert_eq!(cs.u8_at(CAPABILITIES_POINTER), 0x40);
    assert_eq!(cs.u8_at(0x41), 0x48);
    assert_eq!(cs.u8_at(0x49), 0);
    assert_ne!(cs.u16_at(STATUS) & STS_CAP_LIST, 0);
    assert_eq!(cs.add_capability(0x10, &[0; 200]), None, "does not fit");
    assert_eq!(cs.add_capability(0x10, &[0; 0x100 - 0x54 - 2]), Some(0x54));
    assert_eq!(cs.add_capability(0x10, &[]), None);
    cs.write(0x40, &[0; 8]);
    assert_eq!(cs.u8_at(0x40), 0x09, "capabilities are read-only");
    cs.set_writable(0x42, &[0xFF]);
    cs.write(0x42, &[0xAB]);
    assert_eq!(cs.u8_at(0x42), 0xAB);
    let mut b = [0u8; 4];
    cs.read(0xFE, &mut b);
    assert_eq!(b, [0, 0, 0xFF, 0xFF]);
    cs.read(usize::MAX, &mut b);
    cs.write(usize::MAX, &[1, 2]);
    cs.set_bytes(usize::MAX, &[1, 2]);
    cs.set_writable(usize::MAX, &[1, 2]);
    assert_eq!(cs.u8_at(0x100), 0xFF);
}

#[test]
fn reset_control_register() {
    let mut host = PciHost::new();
    // Linux's BOOT_CF9_FORCE: hard reset requested (0x02), then 0x06.
    let mut b = [0u8];
    host.read(at(RESET_CONTROL), &mut b, 0);
    assert_eq!(b[0], 0);
    host.write(at(RESET_CONTROL), &[0x02], 0);
    assert!(!host.take_reset_request());
    host.read(at(RESET_CONTROL), &mut b, 0);
    assert_eq!(b[0], 0x02);
    host.write(at(RESET_CONTROL), &[0x06], 0);
    assert!(host.take_reset_request());
    assert!(!host.take_reset_request());
    // Not through a word access, nor through the address register.
    host.write(at(CONFIG_ADDRESS), &0x0400u32.to_le_bytes(), 0);
    host.write(at(RESET_CONTROL), &[0x04, 0], 0);
    assert!(!host.take_reset_request());
}

#[test]
fn random_port_stream() {
    let mut rng = Rng::new(0x0C_F8);
    let mut host = host_with_dummy();
    for _ in 0..200_000 {
        let port = 0xCF7 + rng.below(10) as u16;
        let size = [1, 2, 4, 0, 3][rng.below(5) as usize];
        let mut data = [0u8; 4];
        if rng.below(3) == 0 {
            // Aim at real devices often.
            let a = 0x8000_0000 | (rng.below(5) as u32) << 11 | (rng.below(2) as u32) << 8 | rng.below(256) as u32;
            host.write(at(CONFIG_ADDRESS), &a.to_le_bytes(), 0);
        }
        if rng.below(2) == 0 {
            for b in &mut data[..size] {
                *b = rng.byte();
            }
            host.write(at(port), &data[..size], 0);
        } else {
            host.read(at(port), &mut data[..size], 0);
        }
        let gpa = rng.next_u64() >> rng.below(64);
        let mut m = [0u8; 8];
        let len = rng.below(9) as usize;
        let _ = host.mmio_read(Gpa(gpa), &mut m[..len], 0);
        let _ = host.mmio_write(Gpa(gpa), &m[..len], 0);
        let _ = host.io_read(gpa as u16, &mut m[..len], 0);
        let _ = host.irq_levels();
        let _ = host.take_reset_request();
    }
    // The ids survived.
    assert_eq!(cfg_read(&mut host, 3, 0, 4), 0x5678_1234);
    assert_eq!(cfg_read(&mut host, 0, 0, 4), 0x1237_8086);
}

/// What a walk of every slot's BARs decodes (the definition the decoder cache must match).
fn walk(host: &PciHost, addr: u64, len: u64, io: bool) -> Option<(usize, usize, u64)> {
    host.slots.iter().enumerate().find_map(|(slot, s)| {
        let (bar, offset) = s.as_ref()?.function.config().decode(addr, len, io)?;
        Some((slot, bar, offset))
    })
}

#[test]
fn the_decoder_cache_matches_a_walk_of_the_bars() {
    let mut rng = Rng::new(0xBA5E);
    let mut host = host_with_dummy();
    host.assign_resources(Gpa(0xE000_0000), 0x1000_0000, 0xC000, 0x1000).unwrap();
    for _ in 0..20_000 {
        // Rewrite a BAR or the command register of the dummy (slot 3), sometimes sizing a BAR.
        let reg = [0x04, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24][rng.below(7) as usize];
        let value = match rng.below(4) {
            0 => u32::MAX,
            1 => rng.next_u64() as u32 & 0xFFFF_FFF0,
            2 => 0xE000_0000 + (rng.below(16) as u32) * 0x1000,
            _ => rng.below(8) as u32,
        };
        cfg_write(&mut host, 3, reg, 4, value);
        // Probe around every BAR base and at random addresses.
        let mut probes = alloc::vec::Vec::new();
        for bar in [0x10, 0x14, 0x18, 0x1C, 0x20, 0x24] {
            let base = u64::from(cfg_read(&mut host, 3, bar, 4) & !0xF);
            probes.extend([base.wrapping_sub(1), base, base + 1, base + 0xFFF, base + 0x1000]);
        }
        probes.push(rng.next_u64() >> rng.below(64));
        for addr in probes {
            for len in [1, 2, 4, 8] {
                for io in [false, true] {
                    assert_eq!(host.claim(addr, len, io), walk(&host, addr, len, io), "{addr:#x}+{len} io={io}");
                }
            }
        }
    }
}
