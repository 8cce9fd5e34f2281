//! Host tests: real table bytes (RSDP, XSDT/RSDT, MADT) in a buffer that plays physical memory.
#![allow(unsafe_code)]

use super::*;
use acpi::PhysicalMapping;
use core::ptr::NonNull;

const BASE: usize = 0xe0000;

/// "Physical memory" starting at BASE, backed by a leaked buffer (lives for the test process).
#[derive(Clone, Copy)]
struct FakeMemory {
    ptr: *mut u8,
    len: usize,
}

impl FakeMemory {
    fn new(bytes: Vec<u8>) -> Self {
        let leaked: &'static mut [u8] = Box::leak(bytes.into_boxed_slice());
        Self { ptr: leaked.as_mut_ptr(), len: leaked.len() }
    }
}

impl AcpiHandler for FakeMemory {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        assert!(phys >= BASE && phys + size <= BASE + self.len, "read outside fake memory: {phys:#x}+{size}");
        // SAFETY: bounds checked above: the offset stays inside the leaked buffer.
        let at = unsafe { self.ptr.add(phys - BASE) };
        // SAFETY: a pointer into the buffer (leaked, so it outlives every mapping) is not null.
        let virt = unsafe { NonNull::new_unchecked(at as *mut T) };
        // SAFETY: the region is inside the buffer and readable.
        unsafe { PhysicalMapping::new(phys, virt, size, size, *self) }
    }
    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// An SDT: 36-byte header plus body, with length and checksum filled in.
fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(signature);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum
    t.extend_from_slice(b"KEELOS");
    t.extend_from_slice(b"KEELTEST");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"KEEL");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

fn madt_body() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT
    let lapic = |uid: u8, id: u8, flags: u32| {
        let mut e = vec![0, 8, uid, id];
        e.extend_from_slice(&flags.to_le_bytes());
        e
    };
    b.extend(lapic(0, 0, 1));
    b.extend(lapic(1, 2, 1));
    b.extend(lapic(2, 4, 0)); // disabled: not started
    b.extend([1, 12, 7, 0]); // I/O APIC id 7
    b.extend_from_slice(&0xfec0_0000u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend([2, 10, 0, 0]); // ISA IRQ 0 -> GSI 2
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    let mut x2 = vec![9, 16, 0, 0];
    x2.extend_from_slice(&300u32.to_le_bytes());
    x2.extend_from_slice(&1u32.to_le_bytes());
    x2.extend_from_slice(&3u32.to_le_bytes());
    b.extend(x2);
    b
}

/// Memory with an RSDP at BASE, the root table at BASE + 0x100 and the MADT at BASE + 0x200.
fn memory(revision: u8, madt: Vec<u8>) -> FakeMemory {
    let mut mem = vec![0u8; 0x1000];
    let madt_phys = (BASE + 0x200) as u64;
    let root = if revision == 0 {
        sdt(b"RSDT", 1, &(madt_phys as u32).to_le_bytes())
    } else {
        sdt(b"XSDT", 1, &madt_phys.to_le_bytes())
    };
    let mut rsdp = Vec::new();
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0);
    rsdp.extend_from_slice(b"KEELOS");
    rsdp.push(revision);
    rsdp.extend_from_slice(&((BASE + 0x100) as u32).to_le_bytes());
    rsdp[8] = checksum(&rsdp[..20]);
    rsdp.extend_from_slice(&36u32.to_le_bytes());
    rsdp.extend_from_slice(&((BASE + 0x100) as u64).to_le_bytes());
    rsdp.extend_from_slice(&[0, 0, 0, 0]);
    rsdp[32] = checksum(&rsdp[..36]);
    mem[..rsdp.len()].copy_from_slice(&rsdp);
    mem[0x100..0x100 + root.len()].copy_from_slice(&root);
    mem[0x200..0x200 + madt.len()].copy_from_slice(&madt);
    FakeMemory::new(mem)
}

fn expected() -> Platform {
    Platform {
        apic_ids: vec![0, 2, 300],
        local_apic_address: 0xfee0_0000,
        io_apics: vec![IoApic { id: 7, address: 0xfec0_0000, gsi_base: 0 }],
        irq_overrides: vec![IrqOverride { irq: 0, gsi: 2, flags: 0 }],
    }
}

#[test]
fn acpi2_xsdt_madt() {
    let mem = memory(2, sdt(b"APIC", 3, &madt_body()));
    // SAFETY: FakeMemory maps its own buffer faithfully; BASE holds the RSDP.
    let platform = unsafe { discover(mem, BASE) }.unwrap();
    assert_eq!(platform, expected());
}

#[test]
fn acpi1_rsdt_madt() {
    let mem = memory(0, sdt(b"APIC", 1, &madt_body()));
    // SAFETY: as above.
    assert_eq!(unsafe { discover(mem, BASE) }.unwrap(), expected());
}

#[test]
fn bad_checksums_are_rejected() {
    let mut madt = sdt(b"APIC", 3, &madt_body());
    madt[9] = madt[9].wrapping_add(1);
    let mem = memory(2, madt);
    // SAFETY: as above.
    assert_eq!(unsafe { discover(mem, BASE) }, Err(AcpiSetupError::NoMadt));

    let mem = memory(2, sdt(b"APIC", 3, &madt_body()));
    // SAFETY: byte 8 (the RSDP's checksum) is inside the fake memory.
    let checksum = unsafe { mem.ptr.add(8) };
    // SAFETY: `checksum` points into the leaked buffer, which nothing else accesses now.
    let old = unsafe { checksum.read() };
    // SAFETY: as above; corrupt the RSDP's checksum.
    unsafe { checksum.write(old.wrapping_add(1)) };
    // SAFETY: as above.
    assert_eq!(unsafe { discover(mem, BASE) }, Err(AcpiSetupError::BadRootTables));
}

#[test]
fn missing_madt() {
    let mem = memory(2, sdt(b"FACP", 3, &[0u8; 16]));
    // SAFETY: as above.
    assert_eq!(unsafe { discover(mem, BASE) }, Err(AcpiSetupError::NoMadt));
}
