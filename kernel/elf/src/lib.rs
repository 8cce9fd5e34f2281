//! The loadable segments of a static x86-64 ELF executable, for the kernel's process loader.
//!
//! A program comes from the boot media, so the bytes are checked as if hostile: header fields,
//! every program header's bounds, segments inside user space and page-aligned consistently, no
//! overlaps, no segment both writable and executable (W^X), and an entry point inside an
//! executable segment. Does not: relocate (programs are linked static, non-PIE), load dynamic or
//! TLS segments (refused), or read section headers. See: System V ABI, ELF-64 Object File Format.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

pub const PAGE: u64 = 4096;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
/// At most this many loadable segments (typical programs have 3-4).
pub const MAX_SEGMENTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Not64BitLittleEndianX86,
    NotExecutable,
    Truncated,
    Dynamic,
    TooManySegments,
    BadSegment { index: usize, why: &'static str },
    EntryNotExecutable,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf => write!(f, "not an ELF file"),
            Self::Not64BitLittleEndianX86 => write!(f, "not a 64-bit little-endian x86-64 ELF"),
            Self::NotExecutable => write!(f, "not an executable (ET_EXEC)"),
            Self::Truncated => write!(f, "truncated ELF file"),
            Self::Dynamic => write!(f, "dynamically linked or TLS programs are not supported"),
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} loadable segments"),
            Self::BadSegment { index, why } => write!(f, "segment {index}: {why}"),
            Self::EntryNotExecutable => write!(f, "entry point is not in an executable segment"),
        }
    }
}

/// One PT_LOAD segment: `mem_size` bytes at `vaddr`, the first `file_size` from `file_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
}

impl Segment {
    /// The page-aligned range the segment occupies.
    pub fn pages(&self) -> (u64, u64) {
        (self.vaddr / PAGE * PAGE, (self.vaddr + self.mem_size).div_ceil(PAGE) * PAGE)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

/// A page-aligned range to map with one set of rights (segments sharing pages merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub writable: bool,
    pub executable: bool,
}

impl Program {
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }

    /// The page ranges to map: each segment's pages, merged where segments with the same rights
    /// share a page (e.g. .data and .bss). Sorted by address, never overlapping.
    pub fn regions(&self) -> ([Region; MAX_SEGMENTS], usize) {
        let mut segs = self.segments;
        let segs = &mut segs[..self.count];
        segs.sort_unstable_by_key(|s| s.vaddr);
        let mut out = [Region::default(); MAX_SEGMENTS];
        let mut n = 0;
        for s in segs.iter() {
            let (start, end) = s.pages();
            if n > 0 && out[n - 1].end > start {
                out[n - 1].end = out[n - 1].end.max(end);
                continue;
            }
            out[n] = Region { start, end, writable: s.writable, executable: s.executable };
            n += 1;
        }
        (out, n)
    }
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, ElfError> {
    b.get(off..off + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or(ElfError::Truncated)
}
fn u32_at(b: &[u8], off: usize) -> Result<u32, ElfError> {
    b.get(off..off + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or(ElfError::Truncated)
}
fn u64_at(b: &[u8], off: usize) -> Result<u64, ElfError> {
    Ok(u64::from(u32_at(b, off)?) | (u64::from(u32_at(b, off + 4)?) << 32))
}

/// Parse and check `bytes`; every segment lies in `[user_start, user_end)`.
pub fn parse(bytes: &[u8], user_start: u64, user_end: u64) -> Result<Program, ElfError> {
    if bytes.get(0..4) != Some(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little-endian, e_machine 62 = x86-64.
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) || u16_at(bytes, 18)? != 62 {
        return Err(ElfError::Not64BitLittleEndianX86);
    }
    if u16_at(bytes, 16)? != 2 {
        return Err(ElfError::NotExecutable);
    }
    let entry = u64_at(bytes, 24)?;
    let phoff = u64_at(bytes, 32)?;
    let phentsize = u64::from(u16_at(bytes, 54)?);
    let phnum = u64::from(u16_at(bytes, 56)?);
    if phentsize < 56 {
        return Err(ElfError::Truncated);
    }
    let mut program = Program { entry, segments: [Segment::default(); MAX_SEGMENTS], count: 0 };
    for i in 0..phnum {
        let off = phoff.checked_add(i * phentsize).ok_or(ElfError::Truncated)?;
        let off = usize::try_from(off).map_err(|_| ElfError::Truncated)?;
        let p_type = u32_at(bytes, off)?;
        if matches!(p_type, PT_DYNAMIC | PT_INTERP | PT_TLS) {
            return Err(ElfError::Dynamic);
        }
        if p_type != PT_LOAD {
            continue;
        }
        let flags = u32_at(bytes, off + 4)?;
        let seg = Segment {
            file_offset: u64_at(bytes, off + 8)?,
            vaddr: u64_at(bytes, off + 16)?,
            file_size: u64_at(bytes, off + 32)?,
            mem_size: u64_at(bytes, off + 40)?,
            readable: flags & PF_R != 0,
            writable: flags & PF_W != 0,
            executable: flags & PF_X != 0,
        };
        let index = program.count;
        let bad = |why| ElfError::BadSegment { index, why };
        if seg.mem_size == 0 {
            continue;
        }
        if seg.file_size > seg.mem_size {
            return Err(bad("file size larger than memory size"));
        }
        let file_end = seg.file_offset.checked_add(seg.file_size).ok_or(bad("file range overflows"))?;
        if file_end > bytes.len() as u64 {
            return Err(bad("file range past the end of the file"));
        }
        let end = seg.vaddr.checked_add(seg.mem_size).ok_or(bad("address range overflows"))?;
        if seg.vaddr < user_start || end > user_end {
            return Err(bad("outside user space"));
        }
        if seg.writable && seg.executable {
            return Err(bad("writable and executable (W^X)"));
        }
        let (start_page, end_page) = seg.pages();
        let same_rights =
            |s: &Segment| (s.readable, s.writable, s.executable) == (seg.readable, seg.writable, seg.executable);
        if program.segments().iter().any(|s| {
            let (s0, s1) = s.pages();
            let pages_overlap = start_page < s1 && s0 < end_page;
            let bytes_overlap = seg.vaddr < s.vaddr + s.mem_size && s.vaddr < end;
            bytes_overlap || (pages_overlap && !same_rights(s))
        }) {
            return Err(bad("overlaps another segment, or shares a page with one that has other rights"));
        }
        if program.count == MAX_SEGMENTS {
            return Err(ElfError::TooManySegments);
        }
        program.segments[program.count] = seg;
        program.count += 1;
    }
    let entry_ok = program.segments().iter().any(|s| s.executable && entry >= s.vaddr && entry < s.vaddr + s.mem_size);
    if !entry_ok {
        return Err(ElfError::EntryNotExecutable);
    }
    Ok(program)
}

#[cfg(test)]
mod tests;
