//! Direct boot of a Linux bzImage by the x86 boot protocol, 64-bit entry: the protected-mode
//! kernel at 16 MiB, the zero page (boot_params) with the setup header copied from the image, the
//! command line, the initrd near the top of RAM, and an e820 map. The vCPU starts in long mode at
//! the kernel's 64-bit entry (load address + 0x200) with RSI = the zero page and a GDT whose
//! selectors 0x10/0x18 are flat 64-bit code and data, as the protocol requires.
//! See: Linux Documentation/arch/x86/boot.rst (boot protocol 2.15), zero-page.rst.
//!
//! Does not: run the 16-bit setup code, or support images older than protocol 2.12 (no 64-bit
//! entry).

use alloc::vec::Vec;
use core::fmt;

use keel_abi::vcpu::{dirty, seg, Segment, Table, VcpuState};
use keel_addr::Gpa;

pub const ZERO_PAGE: Gpa = Gpa(0x7000);
pub const CMDLINE_ADDR: Gpa = Gpa(0x2_0000);
pub const CMDLINE_MAX: usize = 2048;
pub const KERNEL_ADDR: Gpa = Gpa(0x100_0000);
/// e820 types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
/// Where the firmware-ish tables live (ACPI RSDP scan area): reserved in the e820 map.
pub const BIOS_AREA: (u64, u64) = (0xe_0000, 0x10_0000);

/// The GDT a 64-bit Linux entry needs (at the guestboot GDT address): 0x10 code, 0x18 data.
pub fn gdt() -> [u64; 4] {
    [0, 0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinuxError {
    NotBzImage,
    ProtocolTooOld(u16),
    No64BitEntry,
    TooLarge,
    CommandLineTooLong,
    InitrdTooLarge,
}

impl fmt::Display for LinuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBzImage => write!(f, "not a Linux bzImage (no HdrS signature)"),
            Self::ProtocolTooOld(v) => write!(f, "boot protocol {}.{} is too old (need 2.12)", v >> 8, v & 0xff),
            Self::No64BitEntry => write!(f, "the kernel has no 64-bit entry point (XLF_KERNEL_64)"),
            Self::TooLarge => write!(f, "the kernel does not fit in the VM's memory"),
            Self::CommandLineTooLong => write!(f, "the kernel command line is longer than {CMDLINE_MAX} bytes"),
            Self::InitrdTooLarge => write!(f, "the initrd does not fit in the VM's memory"),
        }
    }
}

/// What to copy where, and the start state.
pub struct LinuxPlan<'a> {
    pub kernel: &'a [u8],
    pub kernel_addr: Gpa,
    /// Bytes after the kernel image that the kernel needs zeroed (init_size - image size).
    pub zero_page: Vec<u8>,
    pub cmdline: Vec<u8>,
    pub initrd_addr: Gpa,
    /// The 64-bit entry point (RIP).
    pub entry: u64,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(b"HdrS")
}

/// Plan a boot of `image` with `initrd_len` bytes of initrd and `cmdline`, in `ram` bytes.
pub fn plan<'a>(image: &'a [u8], initrd_len: u64, cmdline: &str, ram: u64) -> Result<LinuxPlan<'a>, LinuxError> {
    if !is_bzimage(image) {
        return Err(LinuxError::NotBzImage);
    }
    let version = u16_at(image, 0x206);
    if version < 0x20c {
        return Err(LinuxError::ProtocolTooOld(version));
    }
    if u16_at(image, 0x236) & 1 == 0 {
        return Err(LinuxError::No64BitEntry);
    }
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let kernel_offset = (setup_sects + 1) * 512;
    let kernel = image.get(kernel_offset..).ok_or(LinuxError::NotBzImage)?;
    let init_size = u64::from(u32_at(image, 0x260)).max(kernel.len() as u64);
    // The kernel and the initrd go in the RAM below the MMIO hole (the loader's 32-bit fields
    // and the early page tables reach it); the rest of RAM is in the e820 map.
    let [(_, low_ram), (high_start, high_ram)] = crate::ram_ranges(ram);
    if KERNEL_ADDR.0 + init_size > low_ram {
        return Err(LinuxError::TooLarge);
    }
    if cmdline.len() >= CMDLINE_MAX {
        return Err(LinuxError::CommandLineTooLong);
    }
    // The initrd: as high as allowed (initrd_addr_max), page-aligned, above the kernel.
    let addr_max = u64::from(u32_at(image, 0x22c)).max(0x37ff_ffff);
    let top = low_ram.min(addr_max + 1);
    let initrd_addr = Gpa(top.checked_sub(initrd_len).map(|a| a & !0xfff).unwrap_or(0));
    if initrd_len > 0 && initrd_addr < KERNEL_ADDR + init_size {
        return Err(LinuxError::InitrdTooLarge);
    }

    // The zero page: the setup header copied at 0x1f1 (its length is 0x202 + the byte at 0x201
    // - 0x1f1), then the fields the loader fills in. See: boot.rst "The real-mode kernel header".
    let mut zp = alloc::vec![0u8; 4096];
    let header_end = (0x202 + usize::from(image[0x201])).min(image.len()).min(0x1000);
    zp[0x1f1..header_end].copy_from_slice(&image[0x1f1..header_end]);
    zp[0x210] = 0xff; // type_of_loader: undefined boot loader
    zp[0x211] |= 0x01; // loadflags: LOADED_HIGH (the kernel is at 1 MiB or above)
    zp[0x214..0x218].copy_from_slice(&(KERNEL_ADDR.0 as u32).to_le_bytes()); // code32_start
    zp[0x218..0x21c].copy_from_slice(&(initrd_addr.0 as u32).to_le_bytes()); // ramdisk_image
    zp[0x21c..0x220].copy_from_slice(&(initrd_len as u32).to_le_bytes()); // ramdisk_size
    zp[0x228..0x22c].copy_from_slice(&(CMDLINE_ADDR.0 as u32).to_le_bytes()); // cmd_line_ptr
    zp[0x238..0x23c].copy_from_slice(&(cmdline.len() as u32).to_le_bytes()); // cmdline_size
                                                                             // e820 (zero-page 0x1e8 count, 0x2d0 table of 20-byte entries).
    let mut e820: Vec<(u64, u64, u32)> = alloc::vec![
        (0, 0x9_fc00, E820_RAM),
        (0x9_fc00, 0x400, E820_RESERVED),
        (BIOS_AREA.0, BIOS_AREA.1 - BIOS_AREA.0, E820_RESERVED),
        (0x10_0000, low_ram - 0x10_0000, E820_RAM),
    ];
    if high_ram > 0 {
        e820.push((high_start.0, high_ram, E820_RAM));
    }
    zp[0x1e8] = e820.len() as u8;
    for (i, (addr, size, ty)) in e820.iter().enumerate() {
        let o = 0x2d0 + 20 * i;
        zp[o..o + 8].copy_from_slice(&addr.to_le_bytes());
        zp[o + 8..o + 16].copy_from_slice(&size.to_le_bytes());
        zp[o + 16..o + 20].copy_from_slice(&ty.to_le_bytes());
    }
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    Ok(LinuxPlan {
        kernel,
        kernel_addr: KERNEL_ADDR,
        zero_page: zp,
        cmdline: line,
        initrd_addr,
        entry: (KERNEL_ADDR + 0x200).0,
    })
}

/// Long mode at the 64-bit entry with RSI = zero page (the identity page tables of
/// `page_table_entries` and the GDT of `gdt()` must be in memory).
pub fn initial_state(plan: &LinuxPlan) -> VcpuState {
    let mut st = VcpuState { rflags: 2, dirty: dirty::ALL, ..Default::default() };
    st.rip = plan.entry;
    st.gprs[6] = ZERO_PAGE.0; // RSI
    st.gprs[4] = crate::STACK_TOP;
    let flat = |selector, attrib| Segment { selector, attrib, limit: 0xffff_ffff, base: 0 };
    st.segs[seg::CS] = flat(0x10, 0xa9b);
    for s in [seg::DS, seg::ES, seg::SS, seg::FS, seg::GS] {
        st.segs[s] = flat(0x18, 0xc93);
    }
    st.segs[seg::TR] = Segment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 };
    st.segs[seg::LDTR] = Segment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 };
    st.gdtr = Table { base: crate::GDT_ADDR.0, limit: 4 * 8 - 1, _pad: [0; 3] };
    st.cr0 = 0x8005_0033;
    st.cr4 = 0x20;
    st.cr3 = crate::PML4_ADDR.0;
    st.efer = (1 << 8) | (1 << 10);
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage() -> Vec<u8> {
        let mut b = vec![0u8; 5 * 512 + 4096];
        b[0x1f1] = 4;
        b[0x201] = 0x6a; // header end at 0x26c
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        b[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        b[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
        b[0x260..0x264].copy_from_slice(&0x80_0000u32.to_le_bytes());
        b
    }

    #[test]
    fn plans_a_boot() {
        let img = bzimage();
        let p = plan(&img, 0x10_0000, "console=ttyS0", 256 << 20).unwrap();
        assert_eq!(p.entry, KERNEL_ADDR.0 + 0x200);
        assert_eq!(p.kernel.len(), 4096);
        assert_eq!(p.initrd_addr, Gpa((256 << 20) - 0x10_0000));
        assert_eq!(&p.zero_page[0x202..0x206], b"HdrS");
        assert_eq!(p.zero_page[0x210], 0xff);
        assert_eq!(p.zero_page[0x1e8], 4);
        assert_eq!(&p.cmdline, b"console=ttyS0\0");
        let st = initial_state(&p);
        assert_eq!(st.gprs[6], ZERO_PAGE.0);
        assert_eq!(st.segs[seg::CS].selector, 0x10);
    }

    /// The e820 map of a VM larger than the RAM below the MMIO hole: the rest from 4 GiB. The
    /// initrd stays below the hole.
    #[test]
    fn e820_lists_the_ram_above_4g() {
        let img = bzimage();
        let p = plan(&img, 0x10_0000, "", 8 << 30).unwrap();
        assert_eq!(p.zero_page[0x1e8], 5);
        let entry = |i: usize| {
            let e = &p.zero_page[0x2d0 + 20 * i..][..20];
            let at = |o: usize| u64::from_le_bytes(e[o..o + 8].try_into().unwrap());
            (at(0), at(8), u32::from_le_bytes(e[16..20].try_into().unwrap()))
        };
        assert_eq!(entry(3), (0x10_0000, 0xE000_0000 - 0x10_0000, E820_RAM));
        assert_eq!(entry(4), (1 << 32, (8 << 30) - 0xE000_0000, E820_RAM));
        assert!(p.initrd_addr.0 < 0x8000_0000, "below initrd_addr_max");
    }

    #[test]
    fn rejects_bad_images() {
        assert_eq!(plan(&[0u8; 100], 0, "", 256 << 20).err(), Some(LinuxError::NotBzImage));
        let mut old = bzimage();
        old[0x206..0x208].copy_from_slice(&0x20au16.to_le_bytes());
        assert_eq!(plan(&old, 0, "", 256 << 20).err(), Some(LinuxError::ProtocolTooOld(0x20a)));
        let mut no64 = bzimage();
        no64[0x236] = 0;
        assert_eq!(plan(&no64, 0, "", 256 << 20).err(), Some(LinuxError::No64BitEntry));
        assert_eq!(plan(&bzimage(), 0, "", 16 << 20).err(), Some(LinuxError::TooLarge));
        assert_eq!(plan(&bzimage(), 250 << 20, "", 256 << 20).err(), Some(LinuxError::InitrdTooLarge));
        let long = "x".repeat(CMDLINE_MAX);
        assert_eq!(plan(&bzimage(), 0, &long, 256 << 20).err(), Some(LinuxError::CommandLineTooLong));
    }
}
