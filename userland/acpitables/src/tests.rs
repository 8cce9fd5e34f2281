//! Host tests: the blob's structure and checksums, the FADT's fields, and the DSDT decoded by a
//! small AML reader (independent of the encoder) back into names and values.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The SDT at guest address `gpa` in a blob placed at `base`.
fn table(blob: &[u8], base: Gpa, gpa: u64) -> &[u8] {
    let off = (gpa - base.0) as usize;
    let len = u32_at(blob, off + 4) as usize;
    &blob[off..off + len]
}

/// The tables Linux would see, after checking every checksum: (RSDT entries, XSDT entries).
fn roots(blob: &[u8], base: Gpa) -> (Vec<u64>, Vec<u64>) {
    let rsdp = &blob[..RSDP_LEN];
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert!(sums_to_zero(&rsdp[..20]), "ACPI 1.0 checksum");
    assert!(sums_to_zero(rsdp), "extended checksum");
    assert_eq!(rsdp[15], 2);
    assert_eq!(u32_at(rsdp, 20), 36);
    let rsdt = table(blob, base, u64::from(u32_at(rsdp, 16)));
    let xsdt = table(blob, base, u64_at(rsdp, 24));
    assert_eq!(&rsdt[..4], b"RSDT");
    assert_eq!(&xsdt[..4], b"XSDT");
    assert!(sums_to_zero(rsdt) && sums_to_zero(xsdt));
    let r: Vec<u64> = rsdt[36..].chunks(4).map(|c| u64::from(u32_at(c, 0))).collect();
    let x: Vec<u64> = xsdt[36..].chunks(8).map(|c| u64_at(c, 0)).collect();
    assert_eq!(r, x);
    for &p in &x {
        assert!(sums_to_zero(table(blob, base, p)), "table at {p:#x}");
        assert_eq!(p % 8, 0);
    }
    (r, x)
}

fn fadt_of(blob: &[u8], base: Gpa) -> &[u8] {
    let (_, x) = roots(blob, base);
    let fadt = table(blob, base, x[0]);
    assert_eq!(&fadt[..4], b"FACP");
    fadt
}

/// AML data objects and terms the reader understands.
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Int(u64),
    Pkg(Vec<Obj>),
    Buf(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Name(String, Obj),
    Scope(String, Vec<Term>),
    Device(String, Vec<Term>),
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let v = self.b[self.at];
        self.at += 1;
        v
    }

    /// A PkgLength; returns the end offset of the object.
    fn pkg_end(&mut self) -> usize {
        let start = self.at;
        let lead = self.byte();
        let extra = usize::from(lead >> 6);
        let mut len = if extra == 0 { usize::from(lead & 0x3F) } else { usize::from(lead & 0x0F) };
        if extra > 0 {
            assert_eq!(lead & 0x30, 0, "reserved bits");
        }
        for i in 0..extra {
            len |= usize::from(self.byte()) << (4 + 8 * i);
        }
        // The shortest encoding was used.
        assert_eq!(aml::pkg_length(len - 1 - extra).unwrap().len(), 1 + extra);
        start + len
    }

    fn name(&mut self) -> String {
        let mut s = String::new();
        if self.b[self.at] == b'\\' {
            s.push('\\');
            self.at += 1;
        }
        let count = match self.b[self.at] {
            0x2E => {
                self.at += 1;
                2
            }
            0x2F => {
                self.at += 1;
                usize::from(self.byte())
            }
            _ => 1,
        };
        for i in 0..count {
            if i > 0 {
                s.push('.');
            }
            s.push_str(core::str::from_utf8(&self.b[self.at..self.at + 4]).unwrap());
            self.at += 4;
        }
        s
    }

    fn obj(&mut self) -> Obj {
        match self.byte() {
            0x00 => Obj::Int(0),
            0x01 => Obj::Int(1),
            0x0A => Obj::Int(u64::from(self.byte())),
            0x0B => {
                let v = u16_at(self.b, self.at);
                self.at += 2;
                Obj::Int(u64::from(v))
            }
            0x0C => {
                let v = u32_at(self.b, self.at);
                self.at += 4;
                Obj::Int(u64::from(v))
            }
            0x0E => {
                let v = u64_at(self.b, self.at);
                self.at += 8;
                Obj::Int(v)
            }
            0x12 => {
                let end = self.pkg_end();
                let n = self.byte();
                let items = (0..n).map(|_| self.obj()).collect();
                assert_eq!(self.at, end, "package length");
                Obj::Pkg(items)
            }
            0x11 => {
                let end = self.pkg_end();
                let Obj::Int(n) = self.obj() else { panic!("buffer size") };
                let data = self.b[self.at..end].to_vec();
                assert_eq!(data.len() as u64, n, "buffer size");
                self.at = end;
                Obj::Buf(data)
            }
            op => panic!("unexpected opcode {op:#x} at {}", self.at - 1),
        }
    }

    fn terms(&mut self, end: usize) -> Vec<Term> {
        let mut out = Vec::new();
        while self.at < end {
            match self.byte() {
                0x08 => {
                    let n = self.name();
                    out.push(Term::Name(n, self.obj()));
                }
                0x10 => {
                    let e = self.pkg_end();
                    let n = self.name();
                    out.push(Term::Scope(n, self.terms(e)));
                }
                0x5B => {
                    assert_eq!(self.byte(), 0x82, "DeviceOp");
                    let e = self.pkg_end();
                    let n = self.name();
                    out.push(Term::Device(n, self.terms(e)));
                }
                op => panic!("unexpected term {op:#x}"),
            }
        }
        assert_eq!(self.at, end, "term list length");
        out
    }
}

fn dsdt_terms(blob: &[u8], base: Gpa) -> Vec<Term> {
    let fadt = fadt_of(blob, base);
    let dsdt = table(blob, base, u64_at(fadt, 140));
    assert_eq!(&dsdt[..4], b"DSDT");
    assert_eq!(dsdt[8], 2, "revision 2: 64-bit integers");
    assert!(sums_to_zero(dsdt));
    let mut r = Reader { b: &dsdt[36..], at: 0 };
    r.terms(dsdt.len() - 36)
}

fn find<'t>(terms: &'t [Term], name: &str) -> Option<&'t Obj> {
    terms.iter().find_map(|t| match t {
        Term::Name(n, o) if n == name => Some(o),
        _ => None,
    })
}

#[test]
fn default_layout_blob() {
    let blob = build(RSDP_ADDR, &Layout::default()).unwrap();
    assert!(RSDP_ADDR + blob.len() as u64 <= BIOS_AREA_END);
    let (r, _) = roots(&blob, RSDP_ADDR);
    assert_eq!(r.len(), 1, "FADT only: no MADT");
    let fadt = fadt_of(&blob, RSDP_ADDR);
    assert_eq!(fadt.len(), FADT_LEN);
    assert_eq!((fadt[8], fadt[131]), (6, 5), "FADT 6.5");
    // FACS and DSDT, 32- and 64-bit pointers agreeing.
    let facs = u64::from(u32_at(fadt, 36));
    assert_eq!(u64_at(fadt, 132), facs);
    assert_eq!(facs % 64, 0);
    let f = &blob[(facs - RSDP_ADDR.0) as usize..][..64];
    assert_eq!(&f[..4], b"FACS");
    assert_eq!(u32_at(f, 4), 64);
    assert_eq!(u64::from(u32_at(fadt, 40)), u64_at(fadt, 140));
    assert_eq!(u16_at(fadt, 46), 9, "SCI");
    assert_eq!(u32_at(fadt, 48), 0, "no SMI_CMD");
    assert_eq!(u32_at(fadt, 56), 0x600);
    assert_eq!(u32_at(fadt, 64), 0x604);
    assert_eq!(u32_at(fadt, 76), 0x608);
    assert_eq!(u32_at(fadt, 80), 0, "no GPE0");
    assert_eq!((fadt[88], fadt[89], fadt[90], fadt[91], fadt[92]), (4, 2, 0, 4, 0));
    assert_eq!(fadt[108], 0x32, "century");
    let boot = u16_at(fadt, 109);
    assert_eq!(boot, BOOT_LEGACY_DEVICES | BOOT_VGA_NOT_PRESENT | BOOT_MSI_NOT_SUPPORTED);
    let flags = u32_at(fadt, 112);
    assert_ne!(flags & FLAG_RESET_REG_SUP, 0);
    assert_eq!(flags & (FLAG_HW_REDUCED_ACPI | FLAG_TMR_VAL_EXT | FLAG_PWR_BUTTON), 0);
    assert_eq!(&fadt[116..128], &[1, 8, 0, 1, 0xF9, 0x0C, 0, 0, 0, 0, 0, 0], "reset register");
    assert_eq!(fadt[128], 6);
    assert_eq!(&fadt[148..160], &[1, 32, 0, 2, 0x00, 0x06, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&fadt[160..172], &[0; 12], "no PM1b");
    assert_eq!(&fadt[172..184], &[1, 16, 0, 2, 0x04, 0x06, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&fadt[208..220], &[1, 32, 0, 3, 0x08, 0x06, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&fadt[220..268], &[0; 48], "no GPE blocks or sleep registers");
}

#[test]
fn linux_finds_the_rsdp() {
    // The legacy scan: 16-byte steps over 0xE0000-0xFFFFF, signature and 20-byte checksum.
    let blob = build(RSDP_ADDR, &Layout::default()).unwrap();
    let mut area = alloc::vec![0u8; (BIOS_AREA_END.0 - RSDP_ADDR.0) as usize];
    area[..blob.len()].copy_from_slice(&blob);
    let found = (0..area.len())
        .step_by(16)
        .find(|&off| &area[off..off + 8] == b"RSD PTR " && sums_to_zero(&area[off..off + 20]));
    assert_eq!(found, Some(0));
}

#[test]
fn dsdt_contents() {
    let mut layout = Layout::default();
    layout.pci.as_mut().unwrap().slot_irqs = alloc::vec![(1, 11), (2, 10)];
    let blob = build(RSDP_ADDR, &layout).unwrap();
    let terms = dsdt_terms(&blob, RSDP_ADDR);
    assert_eq!(
        find(&terms, "\\_S5_"),
        Some(&Obj::Pkg(alloc::vec![Obj::Int(5), Obj::Int(5), Obj::Int(0), Obj::Int(0)]))
    );
    assert_eq!(u64::from(SLP_TYP_S5), 5);
    let Some(Term::Scope(sb, sb_terms)) = terms.get(1) else { panic!("no \\_SB scope: {terms:?}") };
    assert_eq!(sb, "\\_SB_");
    let Some(Term::Device(pci0, dev)) = sb_terms.first() else { panic!("no device") };
    assert_eq!(pci0, "PCI0");
    assert_eq!(find(dev, "_HID"), Some(&Obj::Int(0x030A_D041)), "PNP0A03");
    assert_eq!(find(dev, "_UID"), Some(&Obj::Int(0)));
    assert_eq!(find(dev, "_ADR"), None, "a device has _HID or _ADR, not both");
    let Some(Obj::Pkg(prt)) = find(dev, "_PRT") else { panic!("no _PRT") };
    assert_eq!(prt.len(), 8);
    for (i, entry) in prt.iter().enumerate() {
        let (slot, irq) = if i < 4 { (1u64, 11u64) } else { (2, 10) };
        let expect =
            Obj::Pkg(alloc::vec![Obj::Int(slot << 16 | 0xFFFF), Obj::Int(i as u64 % 4), Obj::Int(0), Obj::Int(irq)]);
        assert_eq!(entry, &expect);
    }
    let Some(Obj::Buf(crs)) = find(dev, "_CRS") else { panic!("no _CRS") };
    // Walk the resource descriptors: small (tag, len in bits 2:0) and large (tag, u16 len).
    let mut at = 0;
    let mut tags = Vec::new();
    while at < crs.len() {
        let tag = crs[at];
        tags.push(tag);
        if tag == 0x79 {
            assert_eq!(at + 2, crs.len(), "end tag last");
            break;
        }
        at += if tag & 0x80 != 0 { 3 + usize::from(u16_at(crs, at + 1)) } else { 1 + usize::from(tag & 7) };
    }
    assert_eq!(tags, [0x88, 0x47, 0x88, 0x88, 0x87, 0x79]);
    let mem = &crs[crs.len() - 2 - 26..crs.len() - 2];
    assert_eq!((u32_at(mem, 10), u32_at(mem, 14), u32_at(mem, 22)), (0xE000_0000, 0xEFFF_FFFF, 0x1000_0000));
}

#[test]
fn without_pci_or_timer() {
    let layout = Layout { pci: None, pm_timer: false, i8042: true, ..Layout::default() };
    let blob = build(RSDP_ADDR, &layout).unwrap();
    let terms = dsdt_terms(&blob, RSDP_ADDR);
    assert_eq!(terms.len(), 1, "only \\_S5");
    let fadt = fadt_of(&blob, RSDP_ADDR);
    assert_eq!((u32_at(fadt, 76), fadt[91]), (0, 0));
    assert_eq!(&fadt[208..220], &[0; 12]);
    assert_ne!(u16_at(fadt, 109) & BOOT_8042, 0);
}

#[test]
fn high_mmio_window_uses_qword() {
    let mut layout = Layout::default();
    layout.pci.as_mut().unwrap().mmio_base = 0x8_0000_0000;
    let blob = build(RSDP_ADDR, &layout).unwrap();
    let terms = dsdt_terms(&blob, RSDP_ADDR);
    let Some(Term::Scope(_, sb)) = terms.get(1) else { panic!() };
    let Some(Term::Device(_, dev)) = sb.first() else { panic!() };
    let Some(Obj::Buf(crs)) = find(dev, "_CRS") else { panic!() };
    assert_eq!(crs[crs.len() - 2 - 46], 0x8A);
}

#[test]
fn extra_tables_are_linked() {
    let madt_body = [0u8; 8]; // local APIC address and flags only
    let madt = sdt(b"APIC", 5, b"KEEL  ", &madt_body);
    assert!(sums_to_zero(&madt));
    let layout = Layout { extra_tables: alloc::vec![madt.clone()], ..Layout::default() };
    let base = Gpa(0x9_0000);
    let blob = build(base, &layout).unwrap();
    let (r, x) = roots(&blob, base);
    assert_eq!(r.len(), 2);
    assert_eq!(table(&blob, base, x[1]), &madt[..]);
}

#[test]
fn errors() {
    let d = Layout::default();
    assert_eq!(build(RSDP_ADDR + 16, &d), Err(BuildError::Misaligned));
    assert_eq!(build(Gpa((1 << 32) - 64), &d), Err(BuildError::Above4G));
    assert_eq!(build(Gpa(!63), &d), Err(BuildError::Above4G));
    let bad_slot = |slot_irqs| Layout { pci: Some(PciRoot { slot_irqs, ..d.pci.clone().unwrap() }), ..d.clone() };
    assert_eq!(build(RSDP_ADDR, &bad_slot(alloc::vec![(0, 11)])), Err(BuildError::BadPciRouting));
    assert_eq!(build(RSDP_ADDR, &bad_slot(alloc::vec![(32, 11)])), Err(BuildError::BadPciRouting));
    assert_eq!(build(RSDP_ADDR, &bad_slot(alloc::vec![(1, 16)])), Err(BuildError::BadPciRouting));
    assert_eq!(build(RSDP_ADDR, &bad_slot(alloc::vec![(1, 11); 64])), Err(BuildError::BadPciRouting));
    assert!(build(RSDP_ADDR, &bad_slot(alloc::vec![(1, 11); 63])).is_ok(), "252 _PRT entries fit a package");
    let window = |mmio_base, mmio_len| Layout {
        pci: Some(PciRoot { mmio_base, mmio_len, slot_irqs: alloc::vec![] }),
        ..d.clone()
    };
    assert_eq!(build(RSDP_ADDR, &window(0xE000_0000, 0)), Err(BuildError::BadWindow));
    assert_eq!(build(RSDP_ADDR, &window(u64::MAX, 2)), Err(BuildError::BadWindow));
    assert!(build(RSDP_ADDR, &window(u64::MAX, 1)).is_ok());
    let mut bad = sdt(b"APIC", 5, b"KEEL  ", &[1, 2, 3]);
    bad[20] ^= 1;
    let extra = |t: Vec<u8>| Layout { extra_tables: alloc::vec![t], ..d.clone() };
    assert_eq!(build(RSDP_ADDR, &extra(bad)), Err(BuildError::BadExtraTable));
    assert_eq!(build(RSDP_ADDR, &extra(alloc::vec![0; 10])), Err(BuildError::BadExtraTable));
    let mut short = sdt(b"APIC", 5, b"KEEL  ", &[1, 2, 3]);
    short.pop();
    assert_eq!(build(RSDP_ADDR, &extra(short)), Err(BuildError::BadExtraTable));
    assert_eq!(BuildError::Above4G.to_string(), "ACPI tables must lie below 4 GiB");
    assert_eq!(BuildError::from(AmlError::BadName), BuildError::Aml(AmlError::BadName));
}
