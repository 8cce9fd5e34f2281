//! The ACPI tables a Keel VM's monitor copies into guest memory before the guest starts: one blob
//! holding the RSDP (revision 2), FACS, RSDT, XSDT, FADT (revision 6.5) and a DSDT, built by
//! [`build`] for the address the blob will live at.
//!
//! Where: at [`RSDP_ADDR`] (0xE0000) by default. Linux on a PC without EFI finds the RSDP by
//! scanning 0xE0000-0xFFFFF on 16-byte boundaries, and the e820 map marks that area reserved, so
//! the guest leaves the tables alone. The RSDP is the blob's first 36 bytes.
//!
//! What the tables describe (a legacy PC, not hardware-reduced; [`Layout`] has the numbers):
//! - FADT: SCI on IRQ 9; PM1a event block (4 bytes), PM1a control block (2 bytes) and optionally
//!   the 24-bit PM timer in the I/O block keel-devices' `acpi_pm` models (0x600: event, 0x604:
//!   control, 0x608: timer); no SMI command port (always in ACPI mode), no GPE blocks; the reset
//!   register (I/O 0xCF9, value 6: the PIIX reset control register, RESET_REG_SUP set); RTC
//!   century at CMOS 0x32; boot flags: legacy devices, no VGA, no MSI (no device offers it), and
//!   the 8042 only if asked; power button as a fixed feature, no sleep button.
//! - DSDT: `\_S5` = Package {5, 5, 0, 0} (SLP_TYP 5 for soft off, matching `acpi_pm`), and when
//!   PCI is present a PCI root bridge `\_SB.PCI0` (PNP0A03) with `_CRS` (bus 0-255, the 0xCF8
//!   config ports, I/O 0-0xCF7 and 0xD00-0xFFFF, the MMIO window) and a `_PRT` that wires every
//!   pin of each listed slot straight to its PIC IRQ (in PIC mode a GSI is an ISA IRQ).
//! - The MADT is built by [`madt::madt`] and passed in [`Layout::extra_tables`], like any other
//!   extra table (made with [`sdt`]): it goes into the blob and both root tables.
//!
//! Checksums: the RSDP's two, and every SDT's, sum to zero; the FACS has none.
//!
//! Does not: write guest memory (the monitor copies the blob), or produce SSDTs, control methods,
//! or sleep states other than S5.
//!
//! See: ACPI 6.5 sections 5.2.5.3 (RSDP), 5.2.6 (SDT header), 5.2.7 (RSDT), 5.2.8 (XSDT), 5.2.9
//! (FADT, Tables 5.9-5.11), 5.2.10 (FACS), 5.2.11.1 (DSDT), 5.2.3.2 (Generic Address Structure),
//! 7.4.2 (`\_Sx`), 6.2.13 (`_PRT`), 6.4 (resource descriptors); PCI Firmware Specification 3.2,
//! 4.1.1 (PNP0A03 host bridges).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod aml;
pub mod madt;

use alloc::vec::Vec;
use core::fmt;

use keel_addr::Gpa;

pub use aml::AmlError;

/// Where the monitor should put the blob (and so the RSDP): the start of the BIOS area.
pub const RSDP_ADDR: Gpa = Gpa(0xE_0000);
/// The end of the area Linux scans for the RSDP (the blob must also fit below it to be found
/// there).
pub const BIOS_AREA_END: Gpa = Gpa(0x10_0000);

/// Size of an SDT header (5.2.6).
pub const SDT_HEADER_LEN: usize = 36;
/// Size of a revision 2 RSDP.
pub const RSDP_LEN: usize = 36;
/// Size of the FADT (revision 6).
pub const FADT_LEN: usize = 276;
/// Size of the FACS.
pub const FACS_LEN: usize = 64;

/// SLP_TYP for S5, as the DSDT's `\_S5` gives it (keel-devices `acpi_pm::SLP_TYP_S5`).
pub const SLP_TYP_S5: u8 = 5;

/// IAPC_BOOT_ARCH flags (5.2.9.3, Table 5.11).
pub const BOOT_LEGACY_DEVICES: u16 = 1 << 0;
pub const BOOT_8042: u16 = 1 << 1;
pub const BOOT_VGA_NOT_PRESENT: u16 = 1 << 2;
pub const BOOT_MSI_NOT_SUPPORTED: u16 = 1 << 3;
pub const BOOT_CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

/// FADT flags (5.2.9, Table 5.10).
pub const FLAG_WBINVD: u32 = 1 << 0;
pub const FLAG_PROC_C1: u32 = 1 << 2;
pub const FLAG_PWR_BUTTON: u32 = 1 << 4;
pub const FLAG_SLP_BUTTON: u32 = 1 << 5;
pub const FLAG_FIX_RTC: u32 = 1 << 6;
pub const FLAG_TMR_VAL_EXT: u32 = 1 << 8;
pub const FLAG_RESET_REG_SUP: u32 = 1 << 10;
pub const FLAG_HW_REDUCED_ACPI: u32 = 1 << 20;

/// A PCI root bridge for the DSDT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciRoot {
    /// The MMIO window for BARs, `[base, base + len)` (the range firmware-style BAR assignment
    /// uses, e.g. keel-devices `PciHost::assign_resources`).
    pub mmio_base: u64,
    pub mmio_len: u64,
    /// `(slot, irq)`: device `slot` (1-31) has all four INTx pins on PIC IRQ `irq` (0-15).
    pub slot_irqs: Vec<(u8, u8)>,
}

/// What the tables describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The PM I/O block: PM1a_EVT at `pm_base`, PM1a_CNT at `pm_base + 4`, PM_TMR at
    /// `pm_base + 8`.
    pub pm_base: u16,
    /// Whether the PM timer exists (the monitor must then emulate it).
    pub pm_timer: bool,
    /// The SCI's IRQ.
    pub sci_irq: u8,
    /// The reset register: an I/O port and the value to write.
    pub reset_port: u16,
    pub reset_value: u8,
    /// CMOS index of the RTC century byte (0: none).
    pub century: u8,
    /// Whether the FADT says an 8042 keyboard controller is present (guests then probe it).
    pub i8042: bool,
    /// The PCI root bridge, if there is a PCI bus.
    pub pci: Option<PciRoot>,
    /// Complete SDTs (e.g. a MADT made with [`sdt`]) to include and list in the RSDT and XSDT.
    pub extra_tables: Vec<Vec<u8>>,
    /// OEM ID in every header.
    pub oem_id: [u8; 6],
}

impl Default for Layout {
    /// The Keel platform: PM block at 0x600 with the timer, SCI 9, reset through 0xCF9, century
    /// at 0x32, no 8042 advertised, PCI with an MMIO window at 0xE000_0000 (256 MiB) and slot 1
    /// on IRQ 11.
    fn default() -> Self {
        Self {
            pm_base: 0x600,
            pm_timer: true,
            sci_irq: 9,
            reset_port: 0xCF9,
            reset_value: 0x06,
            century: 0x32,
            i8042: false,
            pci: Some(PciRoot { mmio_base: 0xE000_0000, mmio_len: 0x1000_0000, slot_irqs: alloc::vec![(1, 11)] }),
            extra_tables: Vec::new(),
            oem_id: *b"KEEL  ",
        }
    }
}

/// Why [`build`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The base is not 64-byte aligned (the RSDP needs 16, the FACS 64).
    Misaligned,
    /// Some table would end above 4 GiB (the RSDT and FADT hold 32-bit pointers).
    Above4G,
    /// A `_PRT` slot outside 1-31 or an IRQ above 15, or more than 63 slots.
    BadPciRouting,
    /// An empty or wrapping PCI MMIO window.
    BadWindow,
    /// An extra table shorter than its header, with a wrong length field or a bad checksum.
    BadExtraTable,
    /// The DSDT could not be encoded.
    Aml(AmlError),
}

impl From<AmlError> for BuildError {
    fn from(e: AmlError) -> Self {
        Self::Aml(e)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned => f.write_str("ACPI tables need a 64-byte aligned base"),
            Self::Above4G => f.write_str("ACPI tables must lie below 4 GiB"),
            Self::BadPciRouting => f.write_str("PCI interrupt routing needs slots 1-31 and IRQs 0-15"),
            Self::BadWindow => f.write_str("the PCI MMIO window is empty or wraps"),
            Self::BadExtraTable => f.write_str("an extra ACPI table has a bad length or checksum"),
            Self::Aml(e) => write!(f, "DSDT encoding failed: {e:?}"),
        }
    }
}

/// The byte that makes `bytes` sum to zero (modulo 256).
pub fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
}

/// Whether `bytes` sum to zero.
pub fn sums_to_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

/// A complete SDT: the 36-byte header (5.2.6) with `signature`, `revision`, `oem_id`, OEM table
/// ID "KEELVM", creator "KEEL", length and checksum filled in, then `body`.
pub fn sdt(signature: &[u8; 4], revision: u8, oem_id: &[u8; 6], body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(SDT_HEADER_LEN + body.len());
    t.extend_from_slice(signature);
    t.extend_from_slice(&((SDT_HEADER_LEN + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum, below
    t.extend_from_slice(oem_id);
    t.extend_from_slice(b"KEELVM  ");
    t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    t.extend_from_slice(b"KEEL"); // creator ID
    t.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

/// A Generic Address Structure (5.2.3.2) for `bit_width` bits of system I/O at `port`.
fn gas_io(port: u16, bit_width: u8, access_size: u8) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = 1; // System I/O
    g[1] = bit_width;
    g[3] = access_size;
    g[4..].copy_from_slice(&u64::from(port).to_le_bytes());
    g
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The FADT (5.2.9, Table 5.9), revision 6.5.
fn fadt(layout: &Layout, facs: u64, dsdt: u64) -> Vec<u8> {
    let mut b = [0u8; FADT_LEN - SDT_HEADER_LEN];
    // Offsets are the table's (Table 5.9), minus the header. Fields left 0: the PM profile
    // (unspecified), SMI_CMD, ACPI_ENABLE and ACPI_DISABLE (no SMI: always in ACPI mode),
    // PM1b, PM2, the GPE blocks, the sleep control and status registers.
    let at = |offset: usize| offset - SDT_HEADER_LEN;
    let evt = layout.pm_base;
    let cnt = layout.pm_base.wrapping_add(4);
    let tmr = layout.pm_base.wrapping_add(8);
    let mut boot = BOOT_LEGACY_DEVICES | BOOT_VGA_NOT_PRESENT | BOOT_MSI_NOT_SUPPORTED;
    if layout.i8042 {
        boot |= BOOT_8042;
    }
    let flags = FLAG_WBINVD | FLAG_PROC_C1 | FLAG_SLP_BUTTON | FLAG_FIX_RTC | FLAG_RESET_REG_SUP;
    let fields: [(usize, &[u8]); 17] = [
        (36, &(facs as u32).to_le_bytes()),             // FIRMWARE_CTRL
        (40, &(dsdt as u32).to_le_bytes()),             // DSDT
        (46, &u16::from(layout.sci_irq).to_le_bytes()), // SCI_INT
        (56, &u32::from(evt).to_le_bytes()),            // PM1a_EVT_BLK
        (64, &u32::from(cnt).to_le_bytes()),            // PM1a_CNT_BLK
        (88, &[4, 2]),                                  // PM1_EVT_LEN, PM1_CNT_LEN
        (96, &101u16.to_le_bytes()),                    // P_LVL2_LAT > 100: no C2
        (98, &1001u16.to_le_bytes()),                   // P_LVL3_LAT > 1000: no C3
        (108, &[layout.century]),                       // CENTURY
        (109, &boot.to_le_bytes()),                     // IAPC_BOOT_ARCH
        (112, &flags.to_le_bytes()),                    // Flags
        (116, &gas_io(layout.reset_port, 8, 1)),        // RESET_REG
        (128, &[layout.reset_value]),                   // RESET_VALUE
        (131, &[5]),                                    // FADT minor version (6.5)
        (132, &facs.to_le_bytes()),                     // X_FIRMWARE_CTRL
        (140, &dsdt.to_le_bytes()),                     // X_DSDT
        (268, b"KeelKeel"),                             // hypervisor vendor identity
    ];
    for (offset, bytes) in fields {
        put(&mut b, at(offset), bytes);
    }
    put(&mut b, at(148), &gas_io(evt, 32, 2)); // X_PM1a_EVT_BLK
    put(&mut b, at(172), &gas_io(cnt, 16, 2)); // X_PM1a_CNT_BLK
    if layout.pm_timer {
        put(&mut b, at(76), &u32::from(tmr).to_le_bytes()); // PM_TMR_BLK
        b[at(91)] = 4; // PM_TMR_LEN
        put(&mut b, at(208), &gas_io(tmr, 32, 3)); // X_PM_TMR_BLK
    }
    sdt(b"FACP", 6, &layout.oem_id, &b)
}

/// The FACS (5.2.10, Table 5.14): no waking vector, no global lock owner, no S4BIOS.
fn facs() -> [u8; FACS_LEN] {
    let mut f = [0u8; FACS_LEN];
    put(&mut f, 0, b"FACS");
    put(&mut f, 4, &(FACS_LEN as u32).to_le_bytes());
    f[32] = 2; // version
    f
}

/// The DSDT's AML.
fn dsdt_aml(layout: &Layout) -> Result<Vec<u8>, BuildError> {
    use aml::{device, dword, eisa_id, integer, name, package, resource, scope};
    let mut aml = name("\\_S5", &package(&[integer(5), integer(5), integer(0), integer(0)])?)?;
    if let Some(pci) = &layout.pci {
        if pci.slot_irqs.len() > 63 || pci.slot_irqs.iter().any(|&(slot, irq)| !(1..=31).contains(&slot) || irq > 15) {
            return Err(BuildError::BadPciRouting);
        }
        let last = pci
            .mmio_len
            .checked_sub(1)
            .and_then(|span| pci.mmio_base.checked_add(span))
            .ok_or(BuildError::BadWindow)?;
        let mut crs = resource::word_bus_number(0, 0xFF);
        crs.extend(resource::io(0xCF8, 0xCF8, 1, 8));
        crs.extend(resource::word_io(0, 0xCF7));
        crs.extend(resource::word_io(0xD00, 0xFFFF));
        match (u32::try_from(pci.mmio_base), u32::try_from(last)) {
            (Ok(min), Ok(max)) => crs.extend(resource::dword_memory(min, max)),
            _ => crs.extend(resource::qword_memory(pci.mmio_base, last)),
        }
        crs.extend(resource::end());
        let mut prt = Vec::new();
        for &(slot, irq) in &pci.slot_irqs {
            for pin in 0..4 {
                // Address: device in the high word, any function (0xFFFF); source 0: the last
                // field is a GSI, which in PIC mode is the ISA IRQ (6.2.13).
                let address = u64::from(slot) << 16 | 0xFFFF;
                prt.push(package(&[integer(address), integer(pin), integer(0), integer(u64::from(irq))])?);
            }
        }
        let mut body = name("_HID", &dword(eisa_id("PNP0A03")?))?;
        body.extend(name("_UID", &integer(0))?);
        body.extend(name("_CRS", &aml::buffer(&crs)?)?);
        body.extend(name("_PRT", &package(&prt)?)?);
        aml.extend(scope("\\_SB", &device("PCI0", &body)?)?);
    }
    Ok(aml)
}

/// Offset of the next `align`-aligned position at or after `len`.
fn align_up(len: usize, align: usize) -> usize {
    len.div_ceil(align) * align
}

/// Builds the tables to be copied to guest-physical `base_gpa` (64-byte aligned; the RSDP is at
/// the start, so `base_gpa` is the RSDP's address).
pub fn build(base_gpa: Gpa, layout: &Layout) -> Result<Vec<u8>, BuildError> {
    let Gpa(base_gpa) = base_gpa;
    if !base_gpa.is_multiple_of(64) {
        return Err(BuildError::Misaligned);
    }
    for t in &layout.extra_tables {
        let ok = t.len() >= SDT_HEADER_LEN
            && u32::from_le_bytes([t[4], t[5], t[6], t[7]]) as usize == t.len()
            && sums_to_zero(t);
        if !ok {
            return Err(BuildError::BadExtraTable);
        }
    }
    let dsdt = sdt(b"DSDT", 2, &layout.oem_id, &dsdt_aml(layout)?);

    // Offsets in the blob.
    let facs_off = 64;
    let rsdt_off = facs_off + FACS_LEN;
    let entries = 1 + layout.extra_tables.len();
    let rsdt_len = SDT_HEADER_LEN + 4 * entries;
    let xsdt_off = align_up(rsdt_off + rsdt_len, 8);
    let xsdt_len = SDT_HEADER_LEN + 8 * entries;
    let fadt_off = align_up(xsdt_off + xsdt_len, 8);
    let dsdt_off = align_up(fadt_off + FADT_LEN, 8);
    let mut extra_offs = Vec::with_capacity(layout.extra_tables.len());
    let mut end = dsdt_off + dsdt.len();
    for t in &layout.extra_tables {
        let off = align_up(end, 8);
        extra_offs.push(off);
        end = off + t.len();
    }
    let addr = |off: usize| base_gpa + off as u64;
    match base_gpa.checked_add(end as u64) {
        Some(last) if last <= 1 << 32 => {}
        _ => return Err(BuildError::Above4G),
    }

    let mut blob = alloc::vec![0u8; end];
    let fadt = fadt(layout, addr(facs_off), addr(dsdt_off));
    let mut pointers: Vec<u64> = alloc::vec![addr(fadt_off)];
    pointers.extend(extra_offs.iter().map(|&off| addr(off)));
    let rsdt_body: Vec<u8> = pointers.iter().flat_map(|&p| (p as u32).to_le_bytes()).collect();
    let xsdt_body: Vec<u8> = pointers.iter().flat_map(|&p| p.to_le_bytes()).collect();
    put(&mut blob, rsdt_off, &sdt(b"RSDT", 1, &layout.oem_id, &rsdt_body));
    put(&mut blob, xsdt_off, &sdt(b"XSDT", 1, &layout.oem_id, &xsdt_body));
    put(&mut blob, facs_off, &facs());
    put(&mut blob, fadt_off, &fadt);
    put(&mut blob, dsdt_off, &dsdt);
    for (t, &off) in layout.extra_tables.iter().zip(&extra_offs) {
        put(&mut blob, off, t);
    }

    // RSDP (5.2.5.3).
    let mut rsdp = [0u8; RSDP_LEN];
    put(&mut rsdp, 0, b"RSD PTR ");
    put(&mut rsdp, 9, &layout.oem_id);
    rsdp[15] = 2; // revision: ACPI 2.0+
    put(&mut rsdp, 16, &(addr(rsdt_off) as u32).to_le_bytes());
    put(&mut rsdp, 20, &(RSDP_LEN as u32).to_le_bytes());
    put(&mut rsdp, 24, &addr(xsdt_off).to_le_bytes());
    rsdp[8] = checksum(&rsdp[..20]);
    rsdp[32] = checksum(&rsdp);
    put(&mut blob, 0, &rsdp);
    Ok(blob)
}

#[cfg(test)]
mod tests;
