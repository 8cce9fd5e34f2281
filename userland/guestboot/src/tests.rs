use super::*;

fn elf64(entry: u64, segs: &[(u64, u64, u64)]) -> Vec<u8> {
    let mut b = vec![0u8; 64 + 56 * segs.len()];
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[16] = 2;
    b[18] = 62;
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54] = 56;
    b[56] = segs.len() as u8;
    let mut off = b.len() as u64;
    let mut data = Vec::new();
    for (i, &(paddr, filesz, memsz)) in segs.iter().enumerate() {
        let o = 64 + 56 * i;
        b[o] = 1;
        b[o + 8..o + 16].copy_from_slice(&off.to_le_bytes());
        b[o + 24..o + 32].copy_from_slice(&paddr.to_le_bytes());
        b[o + 32..o + 40].copy_from_slice(&filesz.to_le_bytes());
        b[o + 40..o + 48].copy_from_slice(&memsz.to_le_bytes());
        data.extend(std::iter::repeat_n(0xaa, filesz as usize));
        off += filesz;
    }
    b.extend(data);
    b
}

fn elf32(entry: u32, paddr: u32, filesz: u32) -> Vec<u8> {
    let mut b = vec![0u8; 52 + 32];
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 1;
    b[5] = 1;
    b[16] = 2;
    b[18] = 3;
    b[24..28].copy_from_slice(&entry.to_le_bytes());
    b[28..32].copy_from_slice(&52u32.to_le_bytes());
    b[42] = 32;
    b[44] = 1;
    b[52] = 1;
    b[56..60].copy_from_slice(&84u32.to_le_bytes());
    b[60..64].copy_from_slice(&paddr.to_le_bytes()); // p_vaddr
    b[64..68].copy_from_slice(&paddr.to_le_bytes()); // p_paddr
    b[68..72].copy_from_slice(&filesz.to_le_bytes());
    b[72..76].copy_from_slice(&filesz.to_le_bytes());
    b.extend(std::iter::repeat_n(0x90, filesz as usize));
    b
}

const MB: u64 = 1 << 20;

#[test]
fn elf64_plan_and_state() {
    let img = elf64(0x10_0000, &[(0x10_0000, 0x100, 0x100), (0x10_2000, 0x10, 0x1000)]);
    let p = plan(&img, 16 * MB).unwrap();
    assert_eq!(p.kind, Kind::Elf64);
    assert_eq!(p.pieces.len(), 2);
    assert_eq!(p.pieces[1].zero, 0x1000 - 0x10);
    let st = initial_state(&p, 16 * MB);
    assert_eq!(st.rip, 0x10_0000);
    assert_eq!(st.gprs[7], 16 * MB);
    assert_eq!(st.gprs[4], STACK_TOP);
    assert_eq!(st.efer, 0x500);
    assert_eq!(st.cr3, PML4_ADDR.0);
    assert_eq!(st.segs[seg::CS].selector, CODE64);
    assert_eq!(st.segs[seg::CS].attrib & (1 << 9), 1 << 9, "L bit");
    assert_eq!(st.dirty, dirty::ALL);
}

#[test]
fn elf32_and_firmware() {
    let img = elf32(0x10_0000, 0x10_0000, 64);
    let p = plan(&img, 8 * MB).unwrap();
    assert_eq!(p.kind, Kind::Elf32);
    let st = initial_state(&p, 8 * MB);
    assert_eq!(st.segs[seg::CS].selector, CODE32);
    assert_eq!(st.cr0 & (1 << 31), 0, "paging off");
    assert_eq!(st.efer, 0);
    let fw = vec![0xf4u8; 64 * 1024];
    let p = plan(&fw, 8 * MB).unwrap();
    assert_eq!(p.kind, Kind::Firmware);
    assert_eq!(p.pieces[0].gpa, Gpa((1 << 32) - 64 * 1024));
    let st = initial_state(&p, 8 * MB);
    assert_eq!((st.segs[seg::CS].selector, st.segs[seg::CS].base, st.rip), (0xf000, 0xffff_0000, 0xfff0));
}

#[test]
fn rejections() {
    let img = elf64(0x10_0000, &[(0x10_0000, 0x100, 0x100)]);
    assert_eq!(plan(&img, MB), Err(BootError::TooLittleRam { ram: MB }));
    let low = elf64(0x1000, &[(0x1000, 0x100, 0x100)]);
    assert_eq!(plan(&low, 16 * MB), Err(BootError::SegmentOutsideRam { index: 0 }));
    let big = elf64(0x10_0000, &[(0x10_0000, 0x100, 64 * MB)]);
    assert_eq!(plan(&big, 16 * MB), Err(BootError::SegmentOutsideRam { index: 0 }));
    let wrap = elf64(0x10_0000, &[(u64::MAX - 10, 0, 0x100)]);
    assert_eq!(plan(&wrap, 16 * MB), Err(BootError::SegmentOutsideRam { index: 0 }));
    let entry = elf64(0x90_0000, &[(0x10_0000, 0x100, 0x100)]);
    assert_eq!(plan(&entry, 16 * MB), Err(BootError::EntryOutsideImage));
    for n in 0..img.len() {
        let _ = plan(&img[..n], 16 * MB);
    }
    let mut wrong = img.clone();
    wrong[18] = 40;
    assert_eq!(plan(&wrong, 16 * MB), Err(BootError::WrongMachine));
}

/// RAM below the MMIO hole first, the rest from 4 GiB; ELF guests load and learn (RDI) only the
/// part below the hole.
#[test]
fn ram_around_the_mmio_hole() {
    const GB: u64 = 1 << 30;
    assert_eq!(ram_ranges(16 * MB), [(Gpa(0), 16 * MB), (HIGH_RAM_START, 0)]);
    assert_eq!(ram_ranges(LOW_RAM_END.0), [(Gpa(0), LOW_RAM_END.0), (HIGH_RAM_START, 0)]);
    assert_eq!(ram_ranges(8 * GB), [(Gpa(0), 0xE000_0000), (Gpa(4 * GB), 8 * GB - 0xE000_0000)]);
    let [_, (start, len)] = ram_ranges(128 * GB);
    assert_eq!(start.0 + len, 128 * GB + 0x2000_0000, "the hole's 512 MiB move above 4 GiB");
    let img = elf64(0x10_0000, &[(0x10_0000, 0x100, 0x100)]);
    let st = initial_state(&plan(&img, 8 * GB).unwrap(), 8 * GB);
    assert_eq!(st.gprs[7], 0xE000_0000, "RDI: the RAM below the hole");
    let high = elf64(0xE000_0000, &[(0xE000_0000, 0x100, 0x100)]);
    assert_eq!(plan(&high, 8 * GB), Err(BootError::SegmentOutsideRam { index: 0 }), "in the hole");
}

#[test]
fn page_tables_identity_map_4g() {
    let e = page_table_entries();
    assert_eq!(e[0], (PML4_ADDR, PDPT_ADDR.0 | 3));
    assert!(e.contains(&(PD_ADDR + 8 * 2047, (2047u64 << 21) | 0x83)));
    assert!(e.iter().all(|&(a, _)| (PML4_ADDR..PD_ADDR + 0x4000).contains(&a)));
    assert_eq!(gdt()[1] >> 53 & 1, 1, "L bit in the 64-bit code descriptor");
}
