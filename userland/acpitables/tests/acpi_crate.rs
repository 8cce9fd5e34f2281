//! The tables as another parser sees them: the `acpi` crate (the one the Keel kernel uses to read
//! the host's tables) walks the RSDP, XSDT and FADT that `build` made, checking signatures,
//! revisions and checksums on the way. The blob sits in a buffer that plays guest memory.

use core::ptr::NonNull;

use acpi::address::{AccessSize, AddressSpace};
use acpi::fadt::Fadt;
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use keel_acpitables::{build, Layout, BIOS_AREA_END, RSDP_ADDR};

/// Guest memory 0xE0000-0xFFFFF, backed by a leaked buffer (it lives as long as the test process).
#[derive(Clone, Copy)]
struct BiosArea {
    ptr: *mut u8,
    len: usize,
}

impl BiosArea {
    fn new(blob: &[u8]) -> Self {
        let mut area = vec![0u8; (BIOS_AREA_END.0 - RSDP_ADDR.0) as usize];
        area[..blob.len()].copy_from_slice(blob);
        let leaked: &'static mut [u8] = Box::leak(area.into_boxed_slice());
        Self { ptr: leaked.as_mut_ptr(), len: leaked.len() }
    }
}

impl AcpiHandler for BiosArea {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        let base = RSDP_ADDR.0 as usize;
        assert!(phys >= base && phys + size <= base + self.len, "read outside the BIOS area: {phys:#x}+{size}");
        // SAFETY: the range is inside the leaked buffer (checked above).
        let at = unsafe { self.ptr.add(phys - base) };
        // SAFETY: a pointer into the buffer (leaked, never freed) is not null.
        let virt = unsafe { NonNull::new_unchecked(at as *mut T) };
        // SAFETY: the region is inside the buffer, readable and lives for the whole process.
        unsafe { PhysicalMapping::new(phys, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

fn tables(layout: &Layout) -> AcpiTables<BiosArea> {
    let blob = build(RSDP_ADDR, layout).unwrap();
    // SAFETY: the handler maps only the leaked buffer, and RSDP_ADDR is where the blob starts.
    unsafe { AcpiTables::from_rsdp(BiosArea::new(&blob), RSDP_ADDR.0 as usize) }.expect("valid RSDP and XSDT")
}

#[test]
fn the_acpi_crate_reads_the_fadt() {
    let tables = tables(&Layout::default());
    let fadt = tables.find_table::<Fadt>().expect("FADT present with a good checksum");
    fadt.validate().unwrap();
    let sci = fadt.sci_interrupt;
    assert_eq!(sci, 9);
    let pm1a_evt = fadt.pm1a_event_block().unwrap();
    assert_eq!(pm1a_evt.address_space, AddressSpace::SystemIo);
    assert_eq!((pm1a_evt.address, pm1a_evt.bit_width), (0x600, 32));
    let pm1a_cnt = fadt.pm1a_control_block().unwrap();
    assert_eq!((pm1a_cnt.address, pm1a_cnt.bit_width), (0x604, 16));
    assert!(fadt.pm1b_event_block().unwrap().is_none());
    let tmr = fadt.pm_timer_block().unwrap().expect("PM timer");
    assert_eq!((tmr.address, tmr.access_size), (0x608, AccessSize::DWordAccess));
    assert!(fadt.gpe0_block().unwrap().is_none());
    let reset = fadt.reset_register().unwrap();
    assert_eq!((reset.address_space, reset.address, reset.bit_width), (AddressSpace::SystemIo, 0xCF9, 8));
    let reset_value = fadt.reset_value;
    assert_eq!(reset_value, 6);
    let flags = fadt.flags;
    assert!(!flags.pm_timer_is_32_bit());
    assert!(flags.supports_system_reset_via_fadt());
    assert!(!flags.system_is_hw_reduced_acpi());
    assert!(!flags.power_button_is_control_method());
    assert!(flags.sleep_button_is_control_method());
    let boot = fadt.iapc_boot_arch;
    assert!(boot.legacy_devices_are_accessible());
    assert!(!boot.motherboard_implements_8042());
    assert!(boot.dont_probe_vga() && boot.dont_enable_msi());
    let century = fadt.century;
    assert_eq!(century, 0x32);
    let facs = fadt.facs_address().unwrap();
    assert_eq!(facs % 64, 0);
    let dsdt = tables.dsdt().expect("DSDT");
    assert_eq!(dsdt.address, fadt.dsdt_address().unwrap() + 36);
    assert!(dsdt.length > 14);
    let signatures: Vec<String> = tables.headers().map(|h| h.signature.as_str().to_string()).collect();
    assert_eq!(signatures, ["FACP"]);
}

#[test]
fn the_acpi_crate_sees_an_added_madt() {
    let madt = keel_acpitables::sdt(b"APIC", 5, b"KEEL  ", &[0, 0, 0xE0, 0xFE, 1, 0, 0, 0]);
    let tables = tables(&Layout { extra_tables: vec![madt], ..Layout::default() });
    let signatures: Vec<String> = tables.headers().map(|h| h.signature.as_str().to_string()).collect();
    assert_eq!(signatures, ["FACP", "APIC"]);
    assert!(tables.find_table::<acpi::madt::Madt>().is_ok());
}
