//! Translating a guest-virtual address through the guest's own page tables, to fetch the bytes of
//! an instruction that faulted on MMIO (SVM without decode assists does not provide them).
//!
//! Supports paging off, 32-bit paging (with 4 MiB pages), PAE and 4-level long mode paging.
//! Guest tables are read through `read_u64(gpa)` (the kernel's bounds-checked guest-memory
//! read, or the monitor's RAM view); a bad table gives `None`, never a panic. Access rights are not checked: the hardware
//! already allowed the fetch. See: SDM Vol 3A 5.3-5.5.

use keel_addr::Gpa;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    Off,
    Legacy32,
    Pae,
    Long4,
}

/// Which paging mode CR0/CR4/EFER select.
pub fn paging_mode(cr0: u64, cr4: u64, efer: u64) -> Paging {
    use crate::x86::{cr0::PG as CR0_PG, cr4::PAE as CR4_PAE, efer::LMA as EFER_LMA};
    if cr0 & CR0_PG == 0 {
        Paging::Off
    } else if efer & EFER_LMA != 0 {
        Paging::Long4
    } else if cr4 & CR4_PAE != 0 {
        Paging::Pae
    } else {
        Paging::Legacy32
    }
}

const P: u64 = 1;
const PS: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// The guest-physical address of `va`, or None if it is not mapped. `cr3` is the register's
/// value (flag bits and all); the table addresses computed from it and from the entries are
/// guest-physical, and read through `read_u64`.
pub fn translate(mode: Paging, cr3: u64, va: u64, mut read_u64: impl FnMut(Gpa) -> Option<u64>) -> Option<Gpa> {
    walk(mode, cr3, va, |a| read_u64(Gpa(a))).map(Gpa)
}

/// [`translate`] over plain numbers: entries hold addresses among flag bits, so the arithmetic is
/// on `u64`s until the result.
fn walk(mode: Paging, cr3: u64, va: u64, mut read_u64: impl FnMut(u64) -> Option<u64>) -> Option<u64> {
    match mode {
        Paging::Off => Some(va & 0xffff_ffff),
        Paging::Legacy32 => {
            let va = va & 0xffff_ffff;
            let pde_addr = (cr3 & 0xffff_f000) + ((va >> 22) & 0x3ff) * 4;
            let pde = read_u64(pde_addr)? & 0xffff_ffff;
            if pde & P == 0 {
                return None;
            }
            if pde & PS != 0 {
                return Some((pde & 0xffc0_0000) | (va & 0x3f_ffff));
            }
            let pte = read_u64((pde & 0xffff_f000) + ((va >> 12) & 0x3ff) * 4)? & 0xffff_ffff;
            if pte & P == 0 {
                return None;
            }
            Some((pte & 0xffff_f000) | (va & 0xfff))
        }
        Paging::Pae => {
            let va = va & 0xffff_ffff;
            let pdpte = read_u64((cr3 & 0xffff_ffe0) + ((va >> 30) & 3) * 8)?;
            walk_levels(pdpte, va, 2, &mut read_u64)
        }
        Paging::Long4 => {
            let pml4e = read_u64((cr3 & ADDR) + ((va >> 39) & 0x1ff) * 8)?;
            walk_levels(pml4e, va, 4, &mut read_u64)
        }
    }
}

/// Walk from an entry at `level` (4 = PML4E, 3 = PDPTE, 2 = PDE) down to the page.
fn walk_levels(mut entry: u64, va: u64, mut level: u32, read_u64: &mut impl FnMut(u64) -> Option<u64>) -> Option<u64> {
    loop {
        if entry & P == 0 {
            return None;
        }
        if level == 1 {
            return Some((entry & ADDR) | (va & 0xfff));
        }
        if level <= 3 && entry & PS != 0 {
            let size = 1u64 << (12 + 9 * (level - 1));
            return Some((entry & ADDR & !(size - 1)) | (va & (size - 1)));
        }
        level -= 1;
        let index = (va >> (12 + 9 * (level - 1))) & 0x1ff;
        entry = read_u64((entry & ADDR) + index * 8)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn long_mode_2m_and_4k() {
        let mut mem = HashMap::new();
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000: entry 0 a 2 MiB page at 0, entry 1 -> PT 0x4000.
        mem.insert(0x1000, 0x2003);
        mem.insert(0x2000, 0x3003);
        mem.insert(0x3000, 0x83);
        mem.insert(0x3008, 0x4003);
        mem.insert(0x4000 + 5 * 8, 0x9_9000 | 3);
        let read = |a: Gpa| mem.get(&a.0).copied().or(Some(0));
        assert_eq!(translate(Paging::Long4, 0x1000, 0x12_3456, read), Some(Gpa(0x12_3456)));
        assert_eq!(translate(Paging::Long4, 0x1000, 0x20_5abc, read), Some(Gpa(0x9_9abc)));
        assert_eq!(translate(Paging::Long4, 0x1000, 0x20_6000, read), None);
        assert_eq!(translate(Paging::Long4, 0x1000, 0x8000_0000_0000, read), None);
    }

    #[test]
    fn other_modes() {
        assert_eq!(translate(Paging::Off, 0, 0x1_0000_1234, |_| None), Some(Gpa(0x1234)));
        let mut mem = HashMap::new();
        mem.insert(0x1000 + 4, 0x40_0083u64); // 4 MiB page at 4 MiB
        let read = |a: Gpa| mem.get(&a.0).copied().or(Some(0));
        assert_eq!(translate(Paging::Legacy32, 0x1000, 0x41_2345, read), Some(Gpa(0x41_2345)));
        assert_eq!(paging_mode(0x8000_0011, 0x20, 0x500), Paging::Long4);
        assert_eq!(paging_mode(0x8000_0011, 0x20, 0), Paging::Pae);
        assert_eq!(paging_mode(0x8000_0011, 0, 0), Paging::Legacy32);
        assert_eq!(paging_mode(0x11, 0, 0), Paging::Off);
        // Unreadable tables: None.
        assert_eq!(translate(Paging::Long4, 0x1000, 0, |_| None), None);
    }
}
