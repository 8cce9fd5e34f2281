//! The shared vCPU state page: the kernel writes the guest's registers and the exit that needs
//! the monitor, the monitor edits registers in place and marks in `dirty` what it changed, and the
//! kernel writes back only those. One page per vCPU, mapped into the monitor by `VcpuCreate`.
//!
//! Vendor-neutral: the monitor never sees a VMX or SVM exit code. The layout is `repr(C)` with a
//! compile-time size check; all fields are plain integers (or `repr(transparent)` wrappers of
//! one, as [`Gpa`]), so any bit pattern the monitor writes is a valid value (the kernel validates
//! what it loads).

use keel_addr::Gpa;

/// A segment register as both vendors describe it (SVM's VMCB layout: attributes packed in 12
/// bits: type 0-3, S 4, DPL 5-6, P 7, AVL 8, L 9, D/B 10, G 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Segment {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Table {
    pub base: u64,
    pub limit: u16,
    pub _pad: [u16; 3],
}

/// General-purpose register indices in the hardware's register-number order (SDM Vol 2A Table
/// 3-1): `VcpuState::gprs`, the kernel's backends and keel-x86emu's `Regs::gpr` all use these.
pub mod reg {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
}

/// Segment indices in `VcpuState::segs`.
pub mod seg {
    pub const ES: usize = 0;
    pub const CS: usize = 1;
    pub const SS: usize = 2;
    pub const DS: usize = 3;
    pub const FS: usize = 4;
    pub const GS: usize = 5;
    pub const LDTR: usize = 6;
    pub const TR: usize = 7;
}

/// `dirty` bits: what the monitor changed and the kernel must load.
pub mod dirty {
    pub const GPRS: u64 = 1 << 0;
    pub const RIP: u64 = 1 << 1;
    pub const RFLAGS: u64 = 1 << 2;
    pub const CRS: u64 = 1 << 3;
    pub const SEGS: u64 = 1 << 4;
    pub const TABLES: u64 = 1 << 5;
    pub const EFER: u64 = 1 << 6;
    pub const ALL: u64 = 0x7f;
}

/// Why `VcpuRun` returned (`VcpuState::exit.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitKind {
    /// Nothing happened yet (never returned).
    None = 0,
    /// Port I/O: `port`, `size`, `write`; `data` holds the value written (low `size` bytes of
    /// RAX) or the monitor puts the value read there. RIP already points past the instruction.
    Io = 1,
    /// Access to a guest-physical address that is not RAM: `gpa`, `write`, the instruction's
    /// bytes in `insn` (`insn_len` of them) and `code_bits`. RIP still points at the
    /// instruction. Only the registers are refreshed (`system_current` is 0).
    Mmio = 2,
    /// HLT with no interrupt to deliver. RIP points past the HLT.
    Hlt = 3,
    /// Triple fault (shutdown).
    Shutdown = 4,
    /// `VcpuPoke` asked the vCPU to come back.
    Poked = 5,
    /// The guest state was rejected by the hardware at entry (`detail` = vendor code).
    InvalidState = 6,
    /// An exit Keel does not handle (`detail` = the vendor's code, for the log only: SVM's
    /// EXITCODE or VMX's basic exit reason); the monitor stops the VM with it.
    Unhandled = 7,
    /// String or REP port I/O (`port`, `size`, `write`, `count`), for the monitor to emulate:
    /// the instruction's bytes are in `insn` (`insn_len` of them), the system registers are
    /// current, and RIP still points at the instruction.
    IoString = 8,
}

impl ExitKind {
    pub fn from_u32(v: u32) -> ExitKind {
        match v {
            1 => ExitKind::Io,
            2 => ExitKind::Mmio,
            3 => ExitKind::Hlt,
            4 => ExitKind::Shutdown,
            5 => ExitKind::Poked,
            6 => ExitKind::InvalidState,
            7 => ExitKind::Unhandled,
            8 => ExitKind::IoString,
            _ => ExitKind::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct ExitInfo {
    pub kind: u32,
    pub port: u16,
    pub size: u8,
    pub write: u8,
    pub data: u64,
    pub gpa: Gpa,
    pub count: u64,
    pub detail: u64,
    pub insn_len: u8,
    pub insn: [u8; 15],
    /// The guest's code size (16, 32 or 64) at an `Mmio` or `IoString` exit: what the monitor
    /// decodes `insn` with (an `Mmio` exit does not refresh the system registers it would
    /// otherwise be derived from).
    pub code_bits: u8,
}

/// An event for the kernel to inject at the next entry (when the guest can take it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Inject {
    /// 1: pending. The kernel clears it once the event is delivered.
    pub pending: u32,
    /// 0: external interrupt, 2: NMI, 3: exception.
    pub kind: u8,
    pub vector: u8,
    pub has_error_code: u8,
    pub _pad: u8,
    pub error_code: u32,
    pub _pad2: u32,
}

pub const INJECT_INTERRUPT: u8 = 0;
pub const INJECT_NMI: u8 = 2;
pub const INJECT_EXCEPTION: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(4096))]
pub struct VcpuState {
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// ES, CS, SS, DS, FS, GS, LDTR, TR (`seg`). A segment whose P bit is clear is unusable; a
    /// TR with P clear stands for the TR a CPU has from reset until its first LTR (selector 0,
    /// base 0, limit 0xFFFF), which VMX loads as a busy 32-bit TSS.
    pub segs: [Segment; 8],
    pub gdtr: Table,
    pub idtr: Table,
    pub dirty: u64,
    pub exit: ExitInfo,
    pub inject: Inject,
    /// Out: whether the guest could take an external interrupt now (IF set, no shadow).
    pub interruptible: u32,
    /// Out: 1 when `cr0`-`cr4`, `efer`, `segs`, `gdtr` and `idtr` hold the guest's values at this
    /// exit; 0 after the `Io`, `Mmio`, `Hlt`, `Poked` and `None` exits, which refresh only `gprs`,
    /// `rip`, `rflags` and `interruptible` (the other fields keep what an earlier exit wrote).
    pub system_current: u32,
    /// In: when not 0, `VcpuRun` returns (as Poked) once `ClockNs` passes this time, after the
    /// guest ran at least once: the monitor's next device timer event, so a busy guest cannot
    /// keep its timers from firing (and a deadline already past cannot keep it from running).
    pub deadline_ns: u64,
    /// Out: exits handled in the kernel (CPUID, MSR, interrupts ...) since the vCPU started.
    pub kernel_exits: u64,
    /// Out: exits returned to the monitor.
    pub monitor_exits: u64,
    /// Out: the TSC right after the hardware exit that this `VcpuRun` returns, and the kernel's
    /// idle counter (`StatsRecord::idle_tsc`) then. With `entry_tsc` of the next call, a monitor
    /// measures what an exit cost Keel from the guest's exit to its next entry, idle left out,
    /// without a system call (the benchmark's cost per disk request).
    pub exit_tsc: u64,
    pub exit_idle_tsc: u64,
    /// Out: the TSC right before this `VcpuRun` first entered the guest, and the idle counter
    /// then (unchanged when the call returned before entering).
    pub entry_tsc: u64,
    pub entry_idle_tsc: u64,
}

const _: () = assert!(core::mem::size_of::<VcpuState>() == 4096);

impl Default for VcpuState {
    fn default() -> Self {
        VcpuState {
            gprs: [0; 16],
            rip: 0,
            rflags: 2,
            cr0: 0,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            efer: 0,
            segs: [Segment::default(); 8],
            gdtr: Table::default(),
            idtr: Table::default(),
            dirty: 0,
            exit: ExitInfo::default(),
            inject: Inject::default(),
            interruptible: 0,
            system_current: 0,
            deadline_ns: 0,
            kernel_exits: 0,
            monitor_exits: 0,
            exit_tsc: 0,
            exit_idle_tsc: 0,
            entry_tsc: 0,
            entry_idle_tsc: 0,
        }
    }
}

/// Guest-physical mapping rights for `VmMap`.
pub mod gprot {
    pub const READ: u64 = 1;
    pub const WRITE: u64 = 2;
    pub const EXEC: u64 = 4;
    pub const ALL: u64 = 7;
}
