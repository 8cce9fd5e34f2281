//! The fixed records `KernelInfo` writes: the kernel fills them with numbers (and fixed, padded
//! byte fields), userland decodes and formats them. Every field is little-endian at a fixed
//! offset; docs/abi.md gives the layouts.
//!
//! Does not: format text (vmd does), or say how the virtualization verdict reads (keel-virtcaps's
//! `Verdict::from_code` decodes [`CpuRecord::virt`]).

/// What `KernelInfo` reports, and the record it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum InfoKind {
    /// One [`VersionRecord`].
    Version = 0,
    /// One [`CpuRecord`] per CPU the firmware listed, in CPU-index order.
    Cpus = 1,
    /// One [`MemoryRecord`].
    Memory = 2,
    /// One [`ProcessRecord`] per process, in pid order.
    Processes = 3,
    /// One [`StatsRecord`]: counters for benchmarks.
    Stats = 4,
    /// One [`ClockRecord`]: how to read the clock without a system call.
    Clock = 5,
}

impl InfoKind {
    pub const ALL: [InfoKind; 6] =
        [InfoKind::Version, InfoKind::Cpus, InfoKind::Memory, InfoKind::Processes, InfoKind::Stats, InfoKind::Clock];

    pub fn from_code(code: u64) -> Option<InfoKind> {
        InfoKind::ALL.iter().copied().find(|k| *k as u64 == code)
    }
}

/// A fixed-size record, as bytes.
pub trait Record: Sized {
    const SIZE: usize;
    /// Write the record into the first `SIZE` bytes of `out` (which must hold them).
    fn write(&self, out: &mut [u8]);
    /// The record in `bytes` (at least `SIZE` long; more is ignored), or None if it is shorter.
    fn read(bytes: &[u8]) -> Option<Self>;
}

/// The whole records in `bytes` (a partial record at the end is left out).
pub fn records<'a, R: Record + 'a>(bytes: &'a [u8]) -> impl Iterator<Item = R> + 'a {
    bytes.chunks_exact(R::SIZE).filter_map(R::read)
}

fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A text field: `text`'s bytes, cut to the field, the rest zero.
pub fn fixed_text<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [0u8; N];
    let n = text.len().min(N);
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
    field
}

/// The text of a zero-padded field, up to its first zero byte (invalid UTF-8 reads as "?").
pub fn field_text(field: &[u8]) -> &str {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..end]).unwrap_or("?")
}

/// The kernel's release and the git revision it was built from. 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRecord {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// `git rev-parse --short HEAD` at build time, zero-padded.
    pub git_rev: [u8; 32],
}

impl Record for VersionRecord {
    const SIZE: usize = 48;
    fn write(&self, out: &mut [u8]) {
        out.fill(0);
        put_u32(out, 0, self.major);
        put_u32(out, 4, self.minor);
        put_u32(out, 8, self.patch);
        out[16..48].copy_from_slice(&self.git_rev);
    }
    fn read(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::SIZE)?;
        let mut git_rev = [0u8; 32];
        git_rev.copy_from_slice(&b[16..48]);
        Some(VersionRecord { major: get_u32(b, 0), minor: get_u32(b, 4), patch: get_u32(b, 8), git_rev })
    }
}

/// One CPU. 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuRecord {
    /// Keel's CPU index (0 is the boot CPU).
    pub index: u32,
    pub apic_id: u32,
    /// [`cpu_flags`] bits.
    pub flags: u32,
    /// The virtualization verdict as keel-virtcaps's `Verdict::code` ([0, 0]: not checked).
    pub virt: [u32; 2],
    /// Timer interrupts this CPU has taken.
    pub ticks: u64,
}

/// Bits of [`CpuRecord::flags`].
pub mod cpu_flags {
    pub const ONLINE: u32 = 1 << 0;
    pub const BOOT: u32 = 1 << 1;
}

impl Record for CpuRecord {
    const SIZE: usize = 32;
    fn write(&self, out: &mut [u8]) {
        out.fill(0);
        put_u32(out, 0, self.index);
        put_u32(out, 4, self.apic_id);
        put_u32(out, 8, self.flags);
        put_u32(out, 12, self.virt[0]);
        put_u32(out, 16, self.virt[1]);
        put_u64(out, 24, self.ticks);
    }
    fn read(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::SIZE)?;
        Some(CpuRecord {
            index: get_u32(b, 0),
            apic_id: get_u32(b, 4),
            flags: get_u32(b, 8),
            virt: [get_u32(b, 12), get_u32(b, 16)],
            ticks: get_u64(b, 24),
        })
    }
}

/// Physical memory and the kernel heap, in bytes. 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRecord {
    pub usable_bytes: u64,
    pub free_bytes: u64,
    pub heap_size: u64,
    pub heap_used: u64,
}

impl Record for MemoryRecord {
    const SIZE: usize = 32;
    fn write(&self, out: &mut [u8]) {
        put_u64(out, 0, self.usable_bytes);
        put_u64(out, 8, self.free_bytes);
        put_u64(out, 16, self.heap_size);
        put_u64(out, 24, self.heap_used);
    }
    fn read(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::SIZE)?;
        Some(MemoryRecord {
            usable_bytes: get_u64(b, 0),
            free_bytes: get_u64(b, 8),
            heap_size: get_u64(b, 16),
            heap_used: get_u64(b, 24),
        })
    }
}

/// One process. 88 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRecord {
    pub pid: u64,
    /// User pages mapped.
    pub pages: u64,
    /// 0 running, 1 exiting (ended, not yet reaped).
    pub state: u32,
    /// The program's name, zero-padded.
    pub name: [u8; 64],
}

impl Record for ProcessRecord {
    const SIZE: usize = 88;
    fn write(&self, out: &mut [u8]) {
        out.fill(0);
        put_u64(out, 0, self.pid);
        put_u64(out, 8, self.pages);
        put_u32(out, 16, self.state);
        out[24..88].copy_from_slice(&self.name);
    }
    fn read(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::SIZE)?;
        let mut name = [0u8; 64];
        name.copy_from_slice(&b[24..88]);
        Some(ProcessRecord { pid: get_u64(b, 0), pages: get_u64(b, 8), state: get_u32(b, 16), name })
    }
}

/// Counters for benchmarks. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRecord {
    /// The TSC at the kernel's first instruction (under QEMU's -icount it counts instructions).
    pub boot_tsc: u64,
    /// TSC ticks every CPU spent halted in its idle loop, added up. Under -icount an idle CPU's
    /// clock jumps ahead to the next event (a device's completion, a timer), so a benchmark
    /// subtracts this to count only the instructions Keel executed.
    pub idle_tsc: u64,
}

impl Record for StatsRecord {
    const SIZE: usize = 16;
    fn write(&self, out: &mut [u8]) {
        put_u64(out, 0, self.boot_tsc);
        put_u64(out, 8, self.idle_tsc);
    }
    fn read(b: &[u8]) -> Option<Self> {
        let b = b.get(..Self::SIZE)?;
        Some(StatsRecord { boot_tsc: get_u64(b, 0), idle_tsc: get_u64(b, 8) })
    }
}

/// The clock `ClockNs` reads, for a program to read it itself: nanoseconds since boot are
/// `(tsc * ns_per_tick_fp32) >> 32` (a 128-bit product), exactly what the kernel computes. The
/// factor is fixed at boot. 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRecord {
    /// Nanoseconds per TSC tick, 32.32 fixed point.
    pub ns_per_tick_fp32: u64,
}

impl ClockRecord {
    /// Nanoseconds since boot at TSC `tsc`.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        ((u128::from(tsc) * u128::from(self.ns_per_tick_fp32)) >> 32) as u64
    }
}

impl Record for ClockRecord {
    const SIZE: usize = 8;
    fn write(&self, out: &mut [u8]) {
        put_u64(out, 0, self.ns_per_tick_fp32);
    }
    fn read(b: &[u8]) -> Option<Self> {
        Some(ClockRecord { ns_per_tick_fp32: get_u64(b.get(..Self::SIZE)?, 0) })
    }
}
