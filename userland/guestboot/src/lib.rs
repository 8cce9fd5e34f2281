//! Guest boot for the monitor, as docs/guests.md specifies: recognize the image (64-bit ELF,
//! 32-bit ELF, or a firmware image), say where its segments go, build the identity page tables
//! and GDT a 64-bit guest starts with, and the initial vCPU state.
//!
//! The image comes from the boot media and the RAM size from vm.conf: both are checked (segments
//! inside RAM, above 1 MiB, no overflow). Does not: touch guest memory (the monitor copies what
//! this crate plans), or boot Linux (the Linux boot protocol comes later).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod linux;

use alloc::vec::Vec;
use core::fmt;

use keel_abi::vcpu::{dirty, seg, Segment, Table, VcpuState};
use keel_addr::Gpa;

/// The lowest address an ELF segment may load at (below: the GDT, page tables, stack, BIOS area).
pub const LOAD_MIN: Gpa = Gpa(0x10_0000);
pub const GDT_ADDR: Gpa = Gpa(0x500);
pub const PML4_ADDR: Gpa = Gpa(0x1000);
pub const PDPT_ADDR: Gpa = Gpa(0x2000);
pub const PD_ADDR: Gpa = Gpa(0x3000);
/// The initial RSP (a register value; the stack grows down from here in the identity map).
pub const STACK_TOP: u64 = 0x8_0000;
/// The smallest RAM a guest can have (page tables, stack, an image at 1 MiB).
pub const MIN_RAM: u64 = 2 << 20;
/// Where RAM below 4 GiB ends: 0xE000_0000 up to 4 GiB is the 32-bit MMIO hole (PCI BARs, the
/// test register, the I/O APIC, the local APIC, firmware), never RAM. A VM with more memory than
/// fits below it has the rest from [`HIGH_RAM_START`] (docs/guests.md).
pub const LOW_RAM_END: Gpa = Gpa(0xe000_0000);
/// Where RAM past the hole continues: 4 GiB.
pub const HIGH_RAM_START: Gpa = Gpa(1 << 32);

/// Where a VM's `memory` bytes of RAM are, as `(start, length)`: below the MMIO hole from 0, then
/// the rest from 4 GiB (length 0 when all of it fits below). The monitor maps these, and the
/// Linux e820 map lists them.
pub fn ram_ranges(memory: u64) -> [(Gpa, u64); 2] {
    let low = memory.min(LOW_RAM_END.0);
    [(Gpa(0), low), (HIGH_RAM_START, memory - low)]
}

/// GDT selectors (docs/guests.md).
pub const CODE64: u16 = 0x08;
pub const DATA: u16 = 0x10;
pub const CODE32: u16 = 0x18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Elf64,
    Elf32,
    Firmware,
}

/// One loadable piece: `data` goes at guest-physical `gpa`, followed by `zero` zero bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<'a> {
    pub gpa: Gpa,
    pub data: &'a [u8],
    pub zero: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    pub kind: Kind,
    pub entry: u64,
    pub pieces: Vec<Piece<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootError {
    TooLittleRam { ram: u64 },
    Truncated,
    NotExecutable,
    WrongMachine,
    NoSegments,
    SegmentOutsideRam { index: usize },
    EntryOutsideImage,
    FirmwareTooLarge,
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLittleRam { ram } => write!(f, "{ram} bytes of memory is too little (at least 2M)"),
            Self::Truncated => write!(f, "the ELF image is truncated"),
            Self::NotExecutable => write!(f, "the ELF image is not an executable (ET_EXEC)"),
            Self::WrongMachine => write!(f, "the ELF image is not for x86 (EM_386 or EM_X86_64)"),
            Self::NoSegments => write!(f, "the ELF image has nothing to load"),
            Self::SegmentOutsideRam { index } => {
                write!(
                    f,
                    "ELF segment {index} does not fit in the VM's memory from 1 MiB up to the MMIO hole at 3.5 GiB"
                )
            }
            Self::EntryOutsideImage => write!(f, "the ELF entry point is outside the loaded image"),
            Self::FirmwareTooLarge => write!(f, "the firmware image is larger than 16 MiB"),
        }
    }
}

fn get<const N: usize>(b: &[u8], off: u64) -> Result<[u8; N], BootError> {
    let off = usize::try_from(off).map_err(|_| BootError::Truncated)?;
    let s = b.get(off..off.checked_add(N).ok_or(BootError::Truncated)?).ok_or(BootError::Truncated)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}
fn u16_at(b: &[u8], off: u64) -> Result<u64, BootError> {
    Ok(u64::from(u16::from_le_bytes(get(b, off)?)))
}
fn u32_at(b: &[u8], off: u64) -> Result<u64, BootError> {
    Ok(u64::from(u32::from_le_bytes(get(b, off)?)))
}
fn u64_at(b: &[u8], off: u64) -> Result<u64, BootError> {
    Ok(u64::from_le_bytes(get(b, off)?))
}

/// Plan how to load `image` into a VM with `ram` bytes of memory. ELF segments go in the RAM
/// below the MMIO hole (the only RAM the initial page tables map).
pub fn plan(image: &[u8], ram: u64) -> Result<Plan<'_>, BootError> {
    if ram < MIN_RAM {
        return Err(BootError::TooLittleRam { ram });
    }
    let [(_, low_ram), _] = ram_ranges(ram);
    if image.get(0..4) != Some(b"\x7fELF") {
        if image.len() > 16 << 20 {
            return Err(BootError::FirmwareTooLarge);
        }
        // The firmware ends at 4 GiB; the monitor maps it there (and aliases its tail below 1 MiB).
        let gpa = Gpa((1u64 << 32) - image.len() as u64);
        return Ok(Plan {
            kind: Kind::Firmware,
            entry: 0xfff0,
            pieces: alloc::vec![Piece { gpa, data: image, zero: 0 }],
        });
    }
    let class64 = match image.get(4) {
        Some(2) => true,
        Some(1) => false,
        _ => return Err(BootError::WrongMachine),
    };
    if u16_at(image, 16)? != 2 {
        return Err(BootError::NotExecutable);
    }
    let machine = u16_at(image, 18)?;
    if (class64 && machine != 62) || (!class64 && machine != 3) {
        return Err(BootError::WrongMachine);
    }
    let (entry, phoff, phentsize, phnum) = if class64 {
        (u64_at(image, 24)?, u64_at(image, 32)?, u16_at(image, 54)?, u16_at(image, 56)?)
    } else {
        (u32_at(image, 24)?, u32_at(image, 28)?, u16_at(image, 42)?, u16_at(image, 44)?)
    };
    let mut pieces = Vec::new();
    let mut entry_ok = false;
    for i in 0..phnum {
        let ph =
            phoff.checked_add(i.checked_mul(phentsize).ok_or(BootError::Truncated)?).ok_or(BootError::Truncated)?;
        if u32_at(image, ph)? != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr, filesz, memsz) = if class64 {
            (u64_at(image, ph + 8)?, u64_at(image, ph + 24)?, u64_at(image, ph + 32)?, u64_at(image, ph + 40)?)
        } else {
            (u32_at(image, ph + 4)?, u32_at(image, ph + 12)?, u32_at(image, ph + 16)?, u32_at(image, ph + 20)?)
        };
        if memsz == 0 {
            continue;
        }
        let bad = BootError::SegmentOutsideRam { index: i as usize };
        let end = paddr.checked_add(memsz).ok_or(bad)?;
        if filesz > memsz || paddr < LOAD_MIN.0 || end > low_ram {
            return Err(bad);
        }
        let file_end = offset.checked_add(filesz).ok_or(BootError::Truncated)?;
        let data = image.get(offset as usize..file_end as usize).ok_or(BootError::Truncated)?;
        if (paddr..end).contains(&entry) {
            entry_ok = true;
        }
        pieces.push(Piece { gpa: Gpa(paddr), data, zero: memsz - filesz });
    }
    if pieces.is_empty() {
        return Err(BootError::NoSegments);
    }
    if !entry_ok {
        return Err(BootError::EntryOutsideImage);
    }
    Ok(Plan { kind: if class64 { Kind::Elf64 } else { Kind::Elf32 }, entry, pieces })
}

/// The GDT (at GDT_ADDR): null, 64-bit code, data, 32-bit code.
pub fn gdt() -> [u64; 4] {
    [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0x00cf_9a00_0000_ffff]
}

/// The identity map of 0-4 GiB with 2 MiB pages: (where the entry goes, the entry) pairs.
pub fn page_table_entries() -> Vec<(Gpa, u64)> {
    let mut e = Vec::with_capacity(2 + 4 + 2048);
    e.push((PML4_ADDR, PDPT_ADDR.0 | 0x3));
    for i in 0..4u64 {
        e.push((PDPT_ADDR + 8 * i, (PD_ADDR + 0x1000 * i).0 | 0x3));
    }
    for i in 0..2048u64 {
        e.push((PD_ADDR + 8 * i, (i << 21) | 0x83));
    }
    e
}

/// The segment as the VMCB/vCPU page describes it: attributes type | S | DPL | P | L | D/B | G.
fn segment(selector: u16, attrib: u16) -> Segment {
    Segment { selector, attrib, limit: 0xffff_ffff, base: 0 }
}

/// The initial vCPU state for `plan` with `ram` bytes (docs/guests.md), all marked dirty.
pub fn initial_state(plan: &Plan, ram: u64) -> VcpuState {
    let mut st = VcpuState { rflags: 2, dirty: dirty::ALL, ..Default::default() };
    match plan.kind {
        Kind::Firmware => {
            // Real mode at F000:FFF0 with CS base FFFF0000. See: SDM Vol 3A 10.1.4.
            st.cr0 = 0x6000_0010;
            st.rip = 0xfff0;
            st.segs[seg::CS] = Segment { selector: 0xf000, attrib: 0x9b, limit: 0xffff, base: 0xffff_0000 };
            for s in [seg::DS, seg::ES, seg::SS, seg::FS, seg::GS] {
                st.segs[s] = Segment { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
            }
            st.gdtr = Table { base: 0, limit: 0xffff, _pad: [0; 3] };
            st.idtr = Table { base: 0, limit: 0xffff, _pad: [0; 3] };
        }
        Kind::Elf64 | Kind::Elf32 => {
            let long = plan.kind == Kind::Elf64;
            st.rip = plan.entry;
            st.gprs[4] = STACK_TOP;
            // The RAM from 0 up, below the MMIO hole (a 32-bit value: the hole starts below 4 GiB).
            let [(_, low_ram), _] = ram_ranges(ram);
            st.gprs[7] = low_ram;
            // Data: type 3 (read/write, accessed), S, P, D/B, G = 0xc93.
            for s in [seg::DS, seg::ES, seg::SS, seg::FS, seg::GS] {
                st.segs[s] = segment(DATA, 0xc93);
            }
            st.gdtr = Table { base: GDT_ADDR.0, limit: 4 * 8 - 1, _pad: [0; 3] };
            st.idtr = Table { base: 0, limit: 0, _pad: [0; 3] };
            st.segs[seg::TR] = Segment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 };
            st.segs[seg::LDTR] = Segment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 };
            if long {
                // Code: type 0xb, S, P, L, G = 0xa9b. CR0 PE|MP|ET|NE|WP|PG, CR4 PAE, EFER LME|LMA.
                st.segs[seg::CS] = segment(CODE64, 0xa9b);
                st.cr0 = 0x8005_0033;
                st.cr4 = 0x20;
                st.cr3 = PML4_ADDR.0;
                st.efer = (1 << 8) | (1 << 10);
            } else {
                st.segs[seg::CS] = segment(CODE32, 0xc9b);
                st.cr0 = 0x31;
            }
        }
    }
    st
}

#[cfg(test)]
mod tests;
