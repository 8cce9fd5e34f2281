//! Host tests for the boot information parser, over hand-built MBIs.

use super::*;

/// Builds a multiboot2 information structure tag by tag.
struct MbiBuilder {
    bytes: Vec<u8>,
}

impl MbiBuilder {
    fn new() -> Self {
        Self { bytes: vec![0; 8] }
    }

    fn tag(mut self, tag_type: u32, payload: &[u8]) -> Self {
        self.bytes.extend_from_slice(&tag_type.to_le_bytes());
        self.bytes.extend_from_slice(&(8 + payload.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(payload);
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
        self
    }

    fn memory_map(self, entries: &[(u64, u64, u32)]) -> Self {
        let mut p = Vec::new();
        p.extend_from_slice(&24u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        for &(start, len, ty) in entries {
            p.extend_from_slice(&start.to_le_bytes());
            p.extend_from_slice(&len.to_le_bytes());
            p.extend_from_slice(&ty.to_le_bytes());
            p.extend_from_slice(&0u32.to_le_bytes());
        }
        self.tag(TAG_MEMORY_MAP, &p)
    }

    fn finish(self) -> Vec<u8> {
        let mut b = self.tag(TAG_END, &[]).bytes;
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_le_bytes());
        b
    }
}

fn module_payload(start: u32, end: u32, name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&start.to_le_bytes());
    p.extend_from_slice(&end.to_le_bytes());
    p.extend_from_slice(name.as_bytes());
    p.push(0);
    p
}

#[test]
fn parses_all_tags_keel_uses() {
    let mut rsdp = b"RSD PTR ".to_vec();
    rsdp.resize(36, 0);
    let bytes = MbiBuilder::new()
        .tag(TAG_CMDLINE, b"log=debug\0")
        .tag(TAG_BOOTLOADER_NAME, b"GRUB 2.06\0")
        .memory_map(&[(0, 0x9fc00, 1), (0x9fc00, 0x400, 2), (0x100000, 0x1ff00000, 1), (0xfffc0000, 0x40000, 2)])
        .tag(TAG_MODULE, &module_payload(0x200000, 0x201000, "vm.conf"))
        .tag(TAG_MODULE, &module_payload(0x300000, 0x380000, "/boot/guest.bin arg"))
        .tag(TAG_ACPI_OLD, &rsdp[..20])
        .tag(TAG_ACPI_NEW, &rsdp)
        .finish();
    let info = BootInfo::parse(&bytes).unwrap();
    assert_eq!(info.command_line(), "log=debug");
    assert_eq!(info.bootloader_name(), "GRUB 2.06");
    let regions: Vec<_> = info.memory_regions().collect();
    assert_eq!(regions.len(), 4);
    assert_eq!(regions[2], MemoryRegion { start: 0x100000, len: 0x1ff00000, kind: MemoryKind::Usable });
    assert_eq!(regions[3].kind, MemoryKind::Reserved);
    let modules: Vec<_> = info.modules().collect();
    assert_eq!(modules.len(), 2);
    assert_eq!(modules[1], Module { start: 0x300000, end: 0x380000, cmdline: "/boot/guest.bin arg" });
    let r = info.rsdp().unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(&bytes[r.offset..r.offset + 8], b"RSD PTR ");
}

#[test]
fn old_rsdp_only() {
    let bytes = MbiBuilder::new().memory_map(&[(0, 4096, 1)]).tag(TAG_ACPI_OLD, &[0u8; 20]).finish();
    assert_eq!(BootInfo::parse(&bytes).unwrap().rsdp().unwrap().revision, 1);
}

#[test]
fn missing_memory_map_is_an_error() {
    let bytes = MbiBuilder::new().tag(TAG_CMDLINE, b"x\0").finish();
    assert_eq!(BootInfo::parse(&bytes).err(), Some(BootInfoError::NoMemoryMap));
}

#[test]
fn truncated_and_oversized_tags_are_rejected() {
    assert_eq!(BootInfo::parse(&[1, 0, 0]).err(), Some(BootInfoError::Truncated));
    let mut bytes = MbiBuilder::new().memory_map(&[(0, 4096, 1)]).finish();
    // Claim more than the buffer holds.
    let too_long = (bytes.len() as u32 + 8).to_le_bytes();
    bytes[0..4].copy_from_slice(&too_long);
    assert_eq!(BootInfo::parse(&bytes).err(), Some(BootInfoError::Truncated));

    // A tag whose size runs past the end.
    let mut bytes = MbiBuilder::new().tag(TAG_CMDLINE, b"abc\0").memory_map(&[(0, 4096, 1)]).finish();
    bytes[12..16].copy_from_slice(&0x1000u32.to_le_bytes());
    assert!(matches!(BootInfo::parse(&bytes), Err(BootInfoError::BadTag { offset: 8, tag_type: 1 })));

    // A tag smaller than its header would loop forever if accepted.
    let mut bytes = MbiBuilder::new().tag(TAG_CMDLINE, b"abc\0").finish();
    bytes[12..16].copy_from_slice(&4u32.to_le_bytes());
    assert!(matches!(BootInfo::parse(&bytes), Err(BootInfoError::BadTag { .. })));
}

#[test]
fn no_end_tag() {
    let mut bytes = MbiBuilder::new().memory_map(&[(0, 4096, 1)]).bytes;
    let len = bytes.len() as u32;
    bytes[0..4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(BootInfo::parse(&bytes).err(), Some(BootInfoError::MissingEndTag));
}

#[test]
fn bad_utf8_command_line_is_cut() {
    let bytes = MbiBuilder::new().tag(TAG_CMDLINE, b"log=info\xff\xfe\0").memory_map(&[(0, 4096, 1)]).finish();
    assert_eq!(BootInfo::parse(&bytes).unwrap().command_line(), "log=info");
}

#[test]
fn memory_region_end_saturates() {
    let r = MemoryRegion { start: u64::MAX - 1, len: 10, kind: MemoryKind::Usable };
    assert_eq!(r.end(), u64::MAX);
}
