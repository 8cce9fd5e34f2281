//! Multiboot2 boot information, parsed from a byte slice with every length checked.
//!
//! The kernel hands this crate the boot information structure (MBI) that GRUB left in memory, as
//! one bounded slice (its length is the MBI's own `total_size`). Everything after that is safe
//! code: a malformed MBI gives a [`BootInfoError`], never an out-of-bounds read. The crate also
//! holds the assembly entry path (`asm/entry.S`), which the kernel assembles into its image.
//!
//! We parse the few tags Keel needs ourselves rather than through the `multiboot2` crate: that
//! crate reads through raw pointers (`BootInformation::load`), which would put unsafe code in
//! the pure, host-tested part. See: Multiboot2 specification 3.6 (boot information format).
//!
//! Not handled: framebuffer, ELF sections, EFI system table tags (Keel uses only the serial port
//! and exits boot services through GRUB).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cmdline;

use core::fmt;

/// Tag types. See: Multiboot2 specification 3.6.
const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_BOOTLOADER_NAME: u32 = 2;
const TAG_MODULE: u32 = 3;
const TAG_MEMORY_MAP: u32 = 6;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;

/// The value GRUB leaves in EAX for a multiboot2 boot.
pub const BOOTLOADER_MAGIC: u32 = 0x36d7_6289;

/// What is wrong with a boot information structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootInfoError {
    /// Shorter than its 8-byte header, or than the size it claims.
    Truncated,
    /// A tag's size runs past the end of the structure or is smaller than a tag header.
    BadTag { offset: usize, tag_type: u32 },
    /// No end tag before the end of the structure.
    MissingEndTag,
    /// No memory map tag: Keel cannot know which memory it may use.
    NoMemoryMap,
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "boot information is truncated"),
            Self::BadTag { offset, tag_type } => {
                write!(f, "boot information tag {tag_type} at offset {offset} has a bad size")
            }
            Self::MissingEndTag => write!(f, "boot information has no end tag"),
            Self::NoMemoryMap => write!(f, "the boot loader gave no memory map"),
        }
    }
}

/// The kind of a physical memory range, as the firmware reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    Usable,
    AcpiReclaimable,
    AcpiNvs,
    Defective,
    Reserved,
}

impl MemoryKind {
    fn from_multiboot(value: u32) -> Self {
        match value {
            1 => Self::Usable,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Defective,
            _ => Self::Reserved,
        }
    }
}

/// One entry of the firmware memory map: `[start, start + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub len: u64,
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last byte, saturating (a hostile or buggy map cannot overflow us).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A boot module: a file GRUB loaded at `[start, end)` with its command line (usually its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    pub start: u64,
    pub end: u64,
    pub cmdline: &'a str,
}

/// Where the ACPI RSDP copy sits inside the boot information, and which revision it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsdpCopy {
    /// Byte offset of the RSDP from the start of the boot information.
    pub offset: usize,
    /// 1 for the ACPI 1.0 RSDP (RSDT), 2 for ACPI 2.0+ (XSDT).
    pub revision: u8,
}

/// A validated multiboot2 boot information structure.
#[derive(Clone, Copy)]
pub struct BootInfo<'a> {
    bytes: &'a [u8],
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let b = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let lo = read_u32(bytes, offset)?;
    let hi = read_u32(bytes, offset.checked_add(4)?)?;
    Some(u64::from(lo) | (u64::from(hi) << 32))
}

/// A NUL-terminated string; invalid UTF-8 is cut at the first bad byte.
fn c_str(bytes: &[u8]) -> &str {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..len];
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// One tag: its type and payload (the bytes after the 8-byte tag header).
#[derive(Clone, Copy)]
struct Tag<'a> {
    offset: usize,
    tag_type: u32,
    payload: &'a [u8],
}

struct Tags<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Result<Tag<'a>, BootInfoError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.offset;
        if offset >= self.bytes.len() {
            return Some(Err(BootInfoError::MissingEndTag));
        }
        let (Some(tag_type), Some(size)) = (read_u32(self.bytes, offset), read_u32(self.bytes, offset + 4)) else {
            self.offset = usize::MAX;
            return Some(Err(BootInfoError::MissingEndTag));
        };
        let size = size as usize;
        let end = offset.checked_add(size);
        if size < 8 || end.is_none_or(|end| end > self.bytes.len()) {
            self.offset = usize::MAX;
            return Some(Err(BootInfoError::BadTag { offset, tag_type }));
        }
        if tag_type == TAG_END {
            return None;
        }
        // Tags are padded to 8 bytes. See: Multiboot2 specification 3.6.1.
        self.offset = (offset + size + 7) & !7;
        Some(Ok(Tag { offset, tag_type, payload: &self.bytes[offset + 8..offset + size] }))
    }
}

impl<'a> BootInfo<'a> {
    /// The MBI's `total_size` field, read from its first four bytes, so that the caller knows how
    /// long a slice to hand to [`BootInfo::parse`].
    pub fn total_size(header: [u8; 8]) -> usize {
        u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize
    }

    /// Check every tag's bounds and the presence of a memory map.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BootInfoError> {
        let total = read_u32(bytes, 0).ok_or(BootInfoError::Truncated)? as usize;
        if total < 8 || total > bytes.len() {
            return Err(BootInfoError::Truncated);
        }
        let info = Self { bytes: &bytes[..total] };
        let mut has_memory_map = false;
        for tag in info.tags() {
            let tag = tag?;
            if tag.tag_type == TAG_MEMORY_MAP {
                let entry_size = read_u32(tag.payload, 0).unwrap_or(0);
                if entry_size < 24 {
                    return Err(BootInfoError::BadTag { offset: tag.offset, tag_type: tag.tag_type });
                }
                has_memory_map = true;
            }
        }
        if !has_memory_map {
            return Err(BootInfoError::NoMemoryMap);
        }
        Ok(info)
    }

    fn tags(&self) -> Tags<'a> {
        Tags { bytes: self.bytes, offset: 8 }
    }

    /// Tags that passed [`BootInfo::parse`]; parse already rejected every error.
    fn valid_tags(&self) -> impl Iterator<Item = Tag<'a>> + 'a {
        self.tags().map_while(Result::ok)
    }

    /// Length of the whole structure in bytes (to reserve it before handing out frames).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true for a parsed structure; here for clippy's len-without-is-empty rule.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn command_line(&self) -> &'a str {
        self.valid_tags().find(|t| t.tag_type == TAG_CMDLINE).map(|t| c_str(t.payload)).unwrap_or("")
    }

    pub fn bootloader_name(&self) -> &'a str {
        self.valid_tags().find(|t| t.tag_type == TAG_BOOTLOADER_NAME).map(|t| c_str(t.payload)).unwrap_or("")
    }

    /// The firmware memory map, in the order the boot loader gave it.
    pub fn memory_regions(&self) -> impl Iterator<Item = MemoryRegion> + 'a {
        self.valid_tags().filter(|t| t.tag_type == TAG_MEMORY_MAP).flat_map(|tag| {
            let entry_size = read_u32(tag.payload, 0).unwrap_or(24).max(24) as usize;
            let entries = tag.payload.get(8..).unwrap_or(&[]);
            entries.chunks_exact(entry_size).map(|e| MemoryRegion {
                start: read_u64(e, 0).unwrap_or(0),
                len: read_u64(e, 8).unwrap_or(0),
                kind: MemoryKind::from_multiboot(read_u32(e, 16).unwrap_or(0)),
            })
        })
    }

    /// The boot modules (userland programs, vm.conf, guest images in later issues).
    pub fn modules(&self) -> impl Iterator<Item = Module<'a>> + 'a {
        self.valid_tags().filter(|t| t.tag_type == TAG_MODULE && t.payload.len() >= 8).map(|t| Module {
            start: u64::from(read_u32(t.payload, 0).unwrap_or(0)),
            end: u64::from(read_u32(t.payload, 4).unwrap_or(0)),
            cmdline: c_str(&t.payload[8..]),
        })
    }

    /// The ACPI RSDP copy, preferring the ACPI 2.0+ one (it leads to the XSDT).
    pub fn rsdp(&self) -> Option<RsdpCopy> {
        let find = |ty, revision| {
            self.valid_tags()
                .find(|t| t.tag_type == ty && t.payload.len() >= 20)
                .map(|t| RsdpCopy { offset: t.offset + 8, revision })
        };
        find(TAG_ACPI_NEW, 2).or_else(|| find(TAG_ACPI_OLD, 1))
    }
}

#[cfg(test)]
mod tests;
