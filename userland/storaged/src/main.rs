//! storaged: Keel's storage service, a ring-3 process that vmd starts with the hardware handle
//! (handle 1). It drives the machine's disk controllers (virtio-blk, AHCI, NVMe) with the host
//! drivers in `drivers/`, reads their partition tables and mounts the datastores on them.
//!
//! This first step finds the disk controllers on the PCI bus and reports them on the kernel log;
//! the drivers, the datastores and the file service to vmd and the monitors come next
//! (docs/architecture.md, "Host storage"). It forbids nothing but holds its unsafe code to
//! hal.rs (registers, ports, DMA).
#![no_std]
#![no_main]

extern crate alloc;

mod hal;
mod pci_config;

use keel_drv_hal::Registers;
use keel_rt::io::debug;

keel_rt::entry!(run);

/// What a PCI class code (class, subclass, programming interface) says a storage function is.
fn storage_kind(vendor: u16, device: u16, class: u32) -> Option<&'static str> {
    match (vendor, device, class >> 8) {
        // Transitional (0x1001) and modern (0x1042) virtio-blk. See: virtio 1.2 4.1.2.
        (0x1af4, 0x1001 | 0x1042, _) => Some("virtio-blk"),
        (_, _, 0x01_06_01) => Some("AHCI"),
        (_, _, 0x01_08_02) => Some("NVMe"),
        _ => None,
    }
}

fn run() -> i32 {
    let mut config = match pci_config::ConfigPorts::open() {
        Ok(c) => c,
        Err(e) => {
            debug(format_args!("storaged: no access to PCI configuration space: {e}"));
            return 1;
        }
    };
    let mut found = 0;
    for bus in 0..=255u8 {
        for device in 0..32u8 {
            for function in 0..8u8 {
                let id = config.read32(bus, device, function, 0);
                if id == u32::MAX || id == 0 {
                    if function == 0 {
                        break;
                    }
                    continue;
                }
                let (vendor, product) = (id as u16, (id >> 16) as u16);
                let class = config.read32(bus, device, function, 8);
                if let Some(kind) = storage_kind(vendor, product, class) {
                    found += 1;
                    debug(format_args!(
                        "storaged: {bus:02x}:{device:02x}.{function} {kind} ({vendor:04x}:{product:04x})"
                    ));
                    if kind == "NVMe" {
                        report_nvme_version(&mut config, bus, device, function);
                    }
                }
                let header = config.read32(bus, device, function, 0xc) >> 16;
                if function == 0 && header & 0x80 == 0 {
                    break;
                }
            }
        }
    }
    debug(format_args!("storaged: {found} disk controller(s)"));
    if found > 0 {
        report_dma_and_interrupts();
    }
    0
}

/// The drivers' other two resources, DMA memory and a message-signalled interrupt: take one of
/// each and say what the kernel gave.
fn report_dma_and_interrupts() {
    use keel_drv_hal::{Dma, Platform};
    let mut machine = match hal::Machine::new() {
        Ok(m) => m,
        Err(e) => return debug(format_args!("storaged: no notification: {e}")),
    };
    match machine.alloc_dma(4096) {
        Ok(buffer) => debug(format_args!("storaged: DMA memory at {:#x}", buffer.phys())),
        Err(e) => debug(format_args!("storaged: no DMA memory: {e}")),
    }
    match machine.msi() {
        Ok(message) => {
            debug(format_args!("storaged: MSI address {:#x} data {:#x}", message >> 32, message & 0xffff_ffff))
        }
        Err(e) => debug(format_args!("storaged: no MSI vector: {e}")),
    }
}

/// Map an NVMe controller's BAR0 and read its version register (NVMe 1.4 3.1.2: VS at 0x08).
fn report_nvme_version(config: &mut pci_config::ConfigPorts, bus: u8, device: u8, function: u8) {
    let low = config.read32(bus, device, function, 0x10);
    let high = config.read32(bus, device, function, 0x14);
    let phys = (u64::from(high) << 32) | u64::from(low & !0xf);
    // Memory decode on (command register bit 1), so the BAR answers.
    let command = config.read32(bus, device, function, 4);
    config.write32(bus, device, function, 4, command | 0b10);
    match hal::Mmio::map(phys, 0x1000) {
        Ok(mut regs) => {
            let vs = regs.read32(0x08);
            debug(format_args!("storaged: NVMe version {}.{} (BAR0 at {phys:#x})", vs >> 16, (vs >> 8) & 0xff));
        }
        Err(e) => debug(format_args!("storaged: NVMe BAR0 at {phys:#x}: {e}")),
    }
}
