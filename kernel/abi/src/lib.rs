//! Keel's system-call ABI, shared by the kernel (which decodes) and userland (which encodes).
//!
//! Calling convention (see docs/abi.md): `syscall` with RAX = number and up to six arguments in
//! RDI, RSI, RDX, R10, R8, R9 (RCX and R11 are clobbered by the instruction). The kernel returns
//! RAX = 0 or an [`Error`] code, RDX = the result value, RSI = a second result where a call has
//! one. Every handle argument names an entry in the calling process's capability table, which the
//! kernel checks for object type and [`Rights`].
//!
//! Pure and host-tested: every call round-trips through `encode`/`decode`, and `decode` rejects
//! unknown numbers and malformed arguments (the kernel sees only what `decode` accepts).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod info;
pub mod vcpu;

pub use info::InfoKind;

use core::fmt;

use keel_addr::Gpa;

/// A capability handle: an index into the calling process's handle table. 0 is never valid.
pub type Handle = u32;

/// Handles every process spawned by the kernel at boot (vmd) starts with.
pub const HANDLE_CONSOLE: Handle = 1;
pub const HANDLE_MODULES: Handle = 2;
pub const HANDLE_SYSTEM: Handle = 3;
/// The machine's devices (I/O ports, device memory, DMA memory, interrupts): vmd holds it with
/// DEVICE and GRANT and passes it to the driver services it spawns. See docs/security.md.
pub const HANDLE_HARDWARE: Handle = 4;

/// Where user space ends: the lower half of the 48-bit address space.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The longest name (module, process) a call accepts.
pub const MAX_NAME: u64 = 64;
/// The most bytes one console, log or module read/write call moves.
pub const MAX_IO: u64 = 1 << 20;
/// The most memory one VM may have, 128 GiB: OpenBSD's `VMM_MAX_VM_MEM_SIZE` on amd64. The one
/// definition of the limit: the shell and vm.conf accept sizes up to it (keel-vmlimits'
/// `MAX_MEMORY` is this constant), and the kernel sizes what it lets a process have from it (a
/// shared-memory object, a process's mappings), so a size the front ends accept is one the
/// kernel can map when the machine has the RAM.
pub const MAX_VM_MEMORY: u64 = 128 << 30;

/// Memory protection bits for `MemMap`. Writable and executable together are refused (W^X).
pub mod prot {
    pub const READ: u64 = 1;
    pub const WRITE: u64 = 2;
    pub const EXEC: u64 = 4;
}

/// Rights a handle carries. The kernel checks them on every use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(pub u32);

impl Rights {
    pub const READ: Rights = Rights(1 << 0);
    pub const WRITE: Rights = Rights(1 << 1);
    pub const SIGNAL: Rights = Rights(1 << 2);
    pub const WAIT: Rights = Rights(1 << 3);
    pub const MAP: Rights = Rights(1 << 4);
    pub const GRANT: Rights = Rights(1 << 5);
    pub const KILL: Rights = Rights(1 << 6);
    pub const SPAWN: Rights = Rights(1 << 7);
    pub const REBOOT: Rights = Rights(1 << 8);
    pub const RUN: Rights = Rights(1 << 9);
    /// Make device resources (I/O ports, device memory, DMA memory, interrupts) from the
    /// hardware handle.
    pub const DEVICE: Rights = Rights(1 << 10);
    pub const ALL: Rights = Rights(0x7ff);

    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }
}

/// Error codes returned in RAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    UnknownSyscall = 1,
    InvalidHandle = 2,
    WrongType = 3,
    NoRights = 4,
    InvalidArgument = 5,
    BadAddress = 6,
    NoMemory = 7,
    NotFound = 8,
    WouldBlock = 9,
    TimedOut = 10,
    Busy = 11,
    TooLarge = 12,
    Exists = 13,
    NotSupported = 14,
}

impl Error {
    pub const ALL: [Error; 14] = [
        Error::UnknownSyscall,
        Error::InvalidHandle,
        Error::WrongType,
        Error::NoRights,
        Error::InvalidArgument,
        Error::BadAddress,
        Error::NoMemory,
        Error::NotFound,
        Error::WouldBlock,
        Error::TimedOut,
        Error::Busy,
        Error::TooLarge,
        Error::Exists,
        Error::NotSupported,
    ];

    pub fn from_code(code: u64) -> Option<Error> {
        Error::ALL.iter().copied().find(|e| *e as u64 == code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::UnknownSyscall => "unknown system call",
            Error::InvalidHandle => "invalid handle",
            Error::WrongType => "handle has the wrong type",
            Error::NoRights => "handle lacks the right",
            Error::InvalidArgument => "invalid argument",
            Error::BadAddress => "bad address",
            Error::NoMemory => "out of memory",
            Error::NotFound => "not found",
            Error::WouldBlock => "would block",
            Error::TimedOut => "timed out",
            Error::Busy => "busy",
            Error::TooLarge => "too large",
            Error::Exists => "already exists",
            Error::NotSupported => "not supported",
        };
        f.write_str(s)
    }
}

/// A user-space buffer: address and length (checked by the kernel against the caller's mappings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBuf {
    pub addr: u64,
    pub len: u64,
}

impl UserBuf {
    /// Within user space, no wrap-around. (Mapping and rights are the kernel's check.)
    pub fn in_user_space(&self) -> bool {
        self.addr.checked_add(self.len).is_some_and(|end| end <= USER_END)
    }
}

/// Process exit status as returned by `ProcessWait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u32),
    /// Killed by the kernel after a fault (vector) or by `ProcessKill` (vector 0xff).
    Killed {
        vector: u8,
    },
}

impl ExitStatus {
    pub fn encode(self) -> u64 {
        match self {
            ExitStatus::Exited(code) => u64::from(code),
            ExitStatus::Killed { vector } => (1 << 32) | u64::from(vector),
        }
    }
    pub fn decode(v: u64) -> ExitStatus {
        if v & (1 << 32) != 0 {
            ExitStatus::Killed { vector: v as u8 }
        } else {
            ExitStatus::Exited(v as u32)
        }
    }
}

/// Where a device's interrupt comes from (`IrqCreate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqSource {
    /// A message-signalled interrupt (PCI MSI or one MSI-X vector): the kernel picks a vector and
    /// returns the message the driver programs into the device.
    Msi,
    /// A global system interrupt through the I/O APIC (a PCI INTx line or an ISA IRQ after the
    /// MADT's overrides), with its trigger mode and polarity. A level-triggered line is masked
    /// when it fires until the driver acknowledges it (`IrqAck`).
    Gsi { gsi: u32, level: bool, active_low: bool },
}

impl IrqSource {
    const MSI: u64 = 1 << 63;
    const LEVEL: u64 = 1 << 32;
    const ACTIVE_LOW: u64 = 1 << 33;

    pub fn encode(self) -> u64 {
        match self {
            IrqSource::Msi => Self::MSI,
            IrqSource::Gsi { gsi, level, active_low } => {
                u64::from(gsi) | if level { Self::LEVEL } else { 0 } | if active_low { Self::ACTIVE_LOW } else { 0 }
            }
        }
    }

    /// Unknown bits are refused.
    pub fn decode(v: u64) -> Result<IrqSource, Error> {
        if v == Self::MSI {
            return Ok(IrqSource::Msi);
        }
        if v & !(Self::LEVEL | Self::ACTIVE_LOW | 0xffff_ffff) != 0 {
            return Err(Error::InvalidArgument);
        }
        Ok(IrqSource::Gsi { gsi: v as u32, level: v & Self::LEVEL != 0, active_low: v & Self::ACTIVE_LOW != 0 })
    }
}

/// Every system call with its typed arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// End the calling process with an exit code.
    Exit {
        code: u32,
    },
    Yield,
    /// Monotonic nanoseconds since boot (result).
    ClockNs,
    /// Map zeroed anonymous memory; `addr` 0 lets the kernel choose. Result: the address.
    MemMap {
        addr: u64,
        len: u64,
        prot: u64,
    },
    MemUnmap {
        addr: u64,
        len: u64,
    },
    /// Create shared memory of `len` bytes. Result: a handle with MAP|GRANT rights.
    ShmCreate {
        len: u64,
    },
    /// Map shared memory (needs MAP). Result: the address.
    ShmMap {
        handle: Handle,
        addr: u64,
        prot: u64,
    },
    /// New thread in the calling process, starting at `entry(arg)` on `stack`. Result: thread id.
    ThreadCreate {
        entry: u64,
        stack: u64,
        arg: u64,
    },
    ThreadExit,
    /// A notification: 64 event bits that sources set and a waiter collects. Result: handle.
    NotifyCreate,
    NotifySignal {
        handle: Handle,
        bits: u64,
    },
    /// Wait until any bit is set or `timeout_ns` passes (u64::MAX: forever). Result: the bits
    /// (cleared on return), 0 on timeout.
    NotifyWait {
        handle: Handle,
        timeout_ns: u64,
    },
    /// NotifySignal on `signal`, then NotifyWait on `wait`, in one call: a client that posts a
    /// request and waits for the answer, or a service that answers and waits for the next,
    /// makes one system call instead of two. Both handles are checked before anything is done.
    NotifySignalWait {
        signal: Handle,
        bits: u64,
        wait: Handle,
        timeout_ns: u64,
    },
    /// Start the boot-module program `name` (needs SPAWN on the modules handle); when it exits,
    /// `bit` is set on `notify`. Result: a process handle; second result: its pid.
    ProcessSpawn {
        modules: Handle,
        name: UserBuf,
        notify: Handle,
        bit: u8,
    },
    /// Result: the encoded ExitStatus, or WouldBlock while the process runs.
    ProcessWait {
        process: Handle,
    },
    ProcessKill {
        process: Handle,
    },
    /// Copy one of our handles into a process's table with at most `rights`. Result: its handle there.
    HandleGrant {
        process: Handle,
        handle: Handle,
        rights: Rights,
    },
    HandleClose {
        handle: Handle,
    },
    /// Write to the serial console (needs WRITE on the console handle). Result: bytes written.
    ConsoleWrite {
        console: Handle,
        buf: UserBuf,
    },
    /// Read what was typed, without blocking. Result: bytes read (0: nothing).
    ConsoleRead {
        console: Handle,
        buf: UserBuf,
    },
    /// Set `bit` on `notify` whenever console input arrives.
    ConsoleBind {
        console: Handle,
        notify: Handle,
        bit: u8,
    },
    /// From now on the kernel's log goes only to its ring buffer (read with KlogRead).
    ConsoleClaim {
        console: Handle,
    },
    /// Copy kernel log bytes from position `from`. Result: bytes copied; second: end position.
    KlogRead {
        console: Handle,
        from: u64,
        buf: UserBuf,
    },
    /// Set `bit` on `notify` whenever the kernel logs something.
    KlogBind {
        console: Handle,
        notify: Handle,
        bit: u8,
    },
    /// Size of the boot module `name`. Result: bytes.
    ModuleSize {
        modules: Handle,
        name: UserBuf,
    },
    /// Read from boot module `name` at `offset` into `buf`. Result: bytes read.
    ModuleRead {
        modules: Handle,
        name: UserBuf,
        offset: u64,
        buf: UserBuf,
    },
    /// The records of one report (version, CPUs, memory, processes, stats: [`info`]) into `buf`,
    /// cut to its length. Result: bytes written; second: the size of the whole report.
    KernelInfo {
        kind: InfoKind,
        buf: UserBuf,
    },
    /// Reset the machine (needs REBOOT on the system handle).
    Reboot {
        system: Handle,
    },
    /// Append a line to the kernel log (any process; bounded). Result: bytes taken.
    DebugWrite {
        buf: UserBuf,
    },
    /// Like ProcessSpawn, and copy the handles listed in `grants` into the child, in order, as
    /// its handles 1, 2, ...: pairs of u32 (handle, rights mask), at most 16; the child gets the
    /// intersection of the rights. Result: process handle; pid.
    ProcessSpawnWith {
        modules: Handle,
        name: UserBuf,
        notify: Handle,
        bit: u8,
        grants: UserBuf,
    },
    /// A virtual machine (needs hardware virtualization). Result: handle (MAP, RUN, GRANT).
    VmCreate,
    /// Map shared memory `shm` at guest-physical `gpa` with `gprot` rights. Result: bytes mapped.
    VmMap {
        vm: Handle,
        shm: Handle,
        gpa: Gpa,
        prot: u64,
    },
    /// A vCPU of `vm`; its state page is mapped at `state_addr` (page-aligned, free) in the caller.
    /// Result: handle (RUN, SIGNAL).
    VcpuCreate {
        vm: Handle,
        state_addr: u64,
    },
    /// Run the guest until an exit needs the monitor. Result: the ExitKind (details in the page);
    /// the clock at the exit (ns, as `ClockNs`).
    VcpuRun {
        vcpu: Handle,
    },
    /// Make a running `VcpuRun` return (ExitKind::Poked) soon.
    VcpuPoke {
        vcpu: Handle,
    },
    /// Remove the mapping `VmMap` made at `gpa`. Result: bytes unmapped.
    VmUnmap {
        vm: Handle,
        gpa: Gpa,
    },
    /// Wall-clock nanoseconds since the Unix epoch (from the host's RTC at boot plus ClockNs).
    ClockRealtime,
    /// A handle for I/O ports `base..base + count` (needs DEVICE on the hardware handle).
    /// Result: handle (READ, WRITE, GRANT).
    IoPortsCreate {
        hardware: Handle,
        base: u16,
        count: u16,
    },
    /// Let the calling process use the ports of `ports` (needs READ and WRITE): the kernel opens
    /// them in the TSS I/O permission bitmap while the process runs.
    IoPortsEnable {
        ports: Handle,
    },
    /// Shared memory over a device's registers at physical `phys` (page-aligned, `len` bytes):
    /// never RAM, the kernel or the interrupt controllers. Mapped uncached by `ShmMap`; never
    /// into a VM. Needs DEVICE. Result: handle (MAP, GRANT).
    DeviceMemoryCreate {
        hardware: Handle,
        phys: u64,
        len: u64,
    },
    /// Pinned, physically contiguous, zeroed memory for a device to reach (needs DEVICE). Result:
    /// a shared-memory handle (MAP, GRANT); second: its physical address.
    DmaCreate {
        hardware: Handle,
        len: u64,
    },
    /// Deliver a device's interrupt as `bit` on `notify` (needs DEVICE, and SIGNAL on notify).
    /// Result: an interrupt handle (WRITE, GRANT); second, for MSI: the message, address in the
    /// high 32 bits and data in the low 32. Closing the handle stops the delivery.
    IrqCreate {
        hardware: Handle,
        source: IrqSource,
        notify: Handle,
        bit: u8,
    },
    /// Unmask a level-triggered line after the driver has served its device (needs WRITE).
    IrqAck {
        irq: Handle,
    },
}

/// Syscall numbers (RAX).
pub mod nr {
    pub const EXIT: u64 = 0;
    pub const YIELD: u64 = 1;
    pub const CLOCK_NS: u64 = 2;
    pub const MEM_MAP: u64 = 3;
    pub const MEM_UNMAP: u64 = 4;
    pub const SHM_CREATE: u64 = 5;
    pub const SHM_MAP: u64 = 6;
    pub const THREAD_CREATE: u64 = 7;
    pub const THREAD_EXIT: u64 = 8;
    pub const NOTIFY_CREATE: u64 = 9;
    pub const NOTIFY_SIGNAL: u64 = 10;
    pub const NOTIFY_WAIT: u64 = 11;
    pub const PROCESS_SPAWN: u64 = 12;
    pub const PROCESS_WAIT: u64 = 13;
    pub const PROCESS_KILL: u64 = 14;
    pub const HANDLE_GRANT: u64 = 15;
    pub const HANDLE_CLOSE: u64 = 16;
    pub const CONSOLE_WRITE: u64 = 17;
    pub const CONSOLE_READ: u64 = 18;
    pub const CONSOLE_BIND: u64 = 19;
    pub const CONSOLE_CLAIM: u64 = 20;
    pub const KLOG_READ: u64 = 21;
    pub const KLOG_BIND: u64 = 22;
    pub const MODULE_SIZE: u64 = 23;
    pub const MODULE_READ: u64 = 24;
    pub const KERNEL_INFO: u64 = 25;
    pub const REBOOT: u64 = 26;
    pub const DEBUG_WRITE: u64 = 27;
    pub const PROCESS_SPAWN_WITH: u64 = 28;
    pub const VM_CREATE: u64 = 29;
    pub const VM_MAP: u64 = 30;
    pub const VCPU_CREATE: u64 = 31;
    pub const VCPU_RUN: u64 = 32;
    pub const VCPU_POKE: u64 = 33;
    pub const VM_UNMAP: u64 = 34;
    pub const CLOCK_REALTIME: u64 = 35;
    pub const IO_PORTS_CREATE: u64 = 36;
    pub const IO_PORTS_ENABLE: u64 = 37;
    pub const DEVICE_MEMORY_CREATE: u64 = 38;
    pub const DMA_CREATE: u64 = 39;
    pub const IRQ_CREATE: u64 = 40;
    pub const IRQ_ACK: u64 = 41;
    pub const NOTIFY_SIGNAL_WAIT: u64 = 42;
}

/// The most handles `ProcessSpawnWith` copies.
pub const MAX_GRANTS: u64 = 16;

/// Registers as the kernel sees them: `[rax, rdi, rsi, rdx, r10, r8, r9]`.
pub type Regs = [u64; 7];

fn handle(v: u64) -> Result<Handle, Error> {
    match u32::try_from(v) {
        Ok(h) if h != 0 => Ok(h),
        _ => Err(Error::InvalidHandle),
    }
}

fn bit(v: u64) -> Result<u8, Error> {
    if v < 64 {
        Ok(v as u8)
    } else {
        Err(Error::InvalidArgument)
    }
}

fn buf(addr: u64, len: u64) -> Result<UserBuf, Error> {
    let b = UserBuf { addr, len };
    if b.in_user_space() {
        Ok(b)
    } else {
        Err(Error::BadAddress)
    }
}

fn name(addr: u64, len: u64) -> Result<UserBuf, Error> {
    if len == 0 || len > MAX_NAME {
        return Err(Error::InvalidArgument);
    }
    buf(addr, len)
}

fn io(addr: u64, len: u64) -> Result<UserBuf, Error> {
    if len > MAX_IO {
        return Err(Error::TooLarge);
    }
    buf(addr, len)
}

impl Syscall {
    /// The registers that make this call.
    pub fn encode(&self) -> Regs {
        use Syscall::*;
        let h = |h: Handle| u64::from(h);
        match *self {
            Exit { code } => [nr::EXIT, u64::from(code), 0, 0, 0, 0, 0],
            Yield => [nr::YIELD, 0, 0, 0, 0, 0, 0],
            ClockNs => [nr::CLOCK_NS, 0, 0, 0, 0, 0, 0],
            MemMap { addr, len, prot } => [nr::MEM_MAP, addr, len, prot, 0, 0, 0],
            MemUnmap { addr, len } => [nr::MEM_UNMAP, addr, len, 0, 0, 0, 0],
            ShmCreate { len } => [nr::SHM_CREATE, len, 0, 0, 0, 0, 0],
            ShmMap { handle, addr, prot } => [nr::SHM_MAP, h(handle), addr, prot, 0, 0, 0],
            ThreadCreate { entry, stack, arg } => [nr::THREAD_CREATE, entry, stack, arg, 0, 0, 0],
            ThreadExit => [nr::THREAD_EXIT, 0, 0, 0, 0, 0, 0],
            NotifyCreate => [nr::NOTIFY_CREATE, 0, 0, 0, 0, 0, 0],
            NotifySignal { handle, bits } => [nr::NOTIFY_SIGNAL, h(handle), bits, 0, 0, 0, 0],
            NotifyWait { handle, timeout_ns } => [nr::NOTIFY_WAIT, h(handle), timeout_ns, 0, 0, 0, 0],
            NotifySignalWait { signal, bits, wait, timeout_ns } => {
                [nr::NOTIFY_SIGNAL_WAIT, h(signal), bits, h(wait), timeout_ns, 0, 0]
            }
            ProcessSpawn { modules, name, notify, bit } => {
                [nr::PROCESS_SPAWN, h(modules), name.addr, name.len, h(notify), u64::from(bit), 0]
            }
            ProcessWait { process } => [nr::PROCESS_WAIT, h(process), 0, 0, 0, 0, 0],
            ProcessKill { process } => [nr::PROCESS_KILL, h(process), 0, 0, 0, 0, 0],
            HandleGrant { process, handle, rights } => {
                [nr::HANDLE_GRANT, h(process), h(handle), u64::from(rights.0), 0, 0, 0]
            }
            HandleClose { handle } => [nr::HANDLE_CLOSE, h(handle), 0, 0, 0, 0, 0],
            ConsoleWrite { console, buf } => [nr::CONSOLE_WRITE, h(console), buf.addr, buf.len, 0, 0, 0],
            ConsoleRead { console, buf } => [nr::CONSOLE_READ, h(console), buf.addr, buf.len, 0, 0, 0],
            ConsoleBind { console, notify, bit } => [nr::CONSOLE_BIND, h(console), h(notify), u64::from(bit), 0, 0, 0],
            ConsoleClaim { console } => [nr::CONSOLE_CLAIM, h(console), 0, 0, 0, 0, 0],
            KlogRead { console, from, buf } => [nr::KLOG_READ, h(console), from, buf.addr, buf.len, 0, 0],
            KlogBind { console, notify, bit } => [nr::KLOG_BIND, h(console), h(notify), u64::from(bit), 0, 0, 0],
            ModuleSize { modules, name } => [nr::MODULE_SIZE, h(modules), name.addr, name.len, 0, 0, 0],
            ModuleRead { modules, name, offset, buf } => {
                [nr::MODULE_READ, h(modules), name.addr, name.len, offset, buf.addr, buf.len]
            }
            KernelInfo { kind, buf } => [nr::KERNEL_INFO, kind as u64, buf.addr, buf.len, 0, 0, 0],
            Reboot { system } => [nr::REBOOT, h(system), 0, 0, 0, 0, 0],
            DebugWrite { buf } => [nr::DEBUG_WRITE, buf.addr, buf.len, 0, 0, 0, 0],
            ProcessSpawnWith { modules, name, notify, bit, grants } => [
                nr::PROCESS_SPAWN_WITH,
                h(modules),
                name.addr,
                name.len,
                (h(notify) << 8) | u64::from(bit),
                grants.addr,
                grants.len,
            ],
            VmCreate => [nr::VM_CREATE, 0, 0, 0, 0, 0, 0],
            VmMap { vm, shm, gpa, prot } => [nr::VM_MAP, h(vm), h(shm), gpa.0, prot, 0, 0],
            VcpuCreate { vm, state_addr } => [nr::VCPU_CREATE, h(vm), state_addr, 0, 0, 0, 0],
            VcpuRun { vcpu } => [nr::VCPU_RUN, h(vcpu), 0, 0, 0, 0, 0],
            VcpuPoke { vcpu } => [nr::VCPU_POKE, h(vcpu), 0, 0, 0, 0, 0],
            VmUnmap { vm, gpa } => [nr::VM_UNMAP, h(vm), gpa.0, 0, 0, 0, 0],
            ClockRealtime => [nr::CLOCK_REALTIME, 0, 0, 0, 0, 0, 0],
            IoPortsCreate { hardware, base, count } => {
                [nr::IO_PORTS_CREATE, h(hardware), u64::from(base), u64::from(count), 0, 0, 0]
            }
            IoPortsEnable { ports } => [nr::IO_PORTS_ENABLE, h(ports), 0, 0, 0, 0, 0],
            DeviceMemoryCreate { hardware, phys, len } => [nr::DEVICE_MEMORY_CREATE, h(hardware), phys, len, 0, 0, 0],
            DmaCreate { hardware, len } => [nr::DMA_CREATE, h(hardware), len, 0, 0, 0, 0],
            IrqCreate { hardware, source, notify, bit } => {
                [nr::IRQ_CREATE, h(hardware), source.encode(), h(notify), u64::from(bit), 0, 0]
            }
            IrqAck { irq } => [nr::IRQ_ACK, h(irq), 0, 0, 0, 0, 0],
        }
    }

    /// Decode registers from user space. Anything malformed is an error, never a panic.
    pub fn decode(r: Regs) -> Result<Syscall, Error> {
        use Syscall::*;
        let [n, a, b, c, d, e, f] = r;
        Ok(match n {
            nr::EXIT => Exit { code: a as u32 },
            nr::YIELD => Yield,
            nr::CLOCK_NS => ClockNs,
            nr::MEM_MAP => MemMap { addr: a, len: b, prot: c },
            nr::MEM_UNMAP => MemUnmap { addr: a, len: b },
            nr::SHM_CREATE => ShmCreate { len: a },
            nr::SHM_MAP => ShmMap { handle: handle(a)?, addr: b, prot: c },
            nr::THREAD_CREATE => ThreadCreate { entry: a, stack: b, arg: c },
            nr::THREAD_EXIT => ThreadExit,
            nr::NOTIFY_CREATE => NotifyCreate,
            nr::NOTIFY_SIGNAL => NotifySignal { handle: handle(a)?, bits: b },
            nr::NOTIFY_WAIT => NotifyWait { handle: handle(a)?, timeout_ns: b },
            nr::NOTIFY_SIGNAL_WAIT => NotifySignalWait { signal: handle(a)?, bits: b, wait: handle(c)?, timeout_ns: d },
            nr::PROCESS_SPAWN => {
                ProcessSpawn { modules: handle(a)?, name: name(b, c)?, notify: handle(d)?, bit: bit(e)? }
            }
            nr::PROCESS_WAIT => ProcessWait { process: handle(a)? },
            nr::PROCESS_KILL => ProcessKill { process: handle(a)? },
            nr::HANDLE_GRANT => HandleGrant {
                process: handle(a)?,
                handle: handle(b)?,
                rights: Rights(u32::try_from(c).map_err(|_| Error::InvalidArgument)?),
            },
            nr::HANDLE_CLOSE => HandleClose { handle: handle(a)? },
            nr::CONSOLE_WRITE => ConsoleWrite { console: handle(a)?, buf: io(b, c)? },
            nr::CONSOLE_READ => ConsoleRead { console: handle(a)?, buf: io(b, c)? },
            nr::CONSOLE_BIND => ConsoleBind { console: handle(a)?, notify: handle(b)?, bit: bit(c)? },
            nr::CONSOLE_CLAIM => ConsoleClaim { console: handle(a)? },
            nr::KLOG_READ => KlogRead { console: handle(a)?, from: b, buf: io(c, d)? },
            nr::KLOG_BIND => KlogBind { console: handle(a)?, notify: handle(b)?, bit: bit(c)? },
            nr::MODULE_SIZE => ModuleSize { modules: handle(a)?, name: name(b, c)? },
            nr::MODULE_READ => ModuleRead { modules: handle(a)?, name: name(b, c)?, offset: d, buf: io(e, f)? },
            nr::KERNEL_INFO => {
                KernelInfo { kind: InfoKind::from_code(a).ok_or(Error::InvalidArgument)?, buf: io(b, c)? }
            }
            nr::REBOOT => Reboot { system: handle(a)? },
            nr::DEBUG_WRITE => DebugWrite { buf: io(a, b)? },
            nr::PROCESS_SPAWN_WITH => {
                if f % 8 != 0 || f / 8 > MAX_GRANTS {
                    return Err(Error::InvalidArgument);
                }
                ProcessSpawnWith {
                    modules: handle(a)?,
                    name: name(b, c)?,
                    notify: handle(d >> 8)?,
                    bit: bit(d & 0xff)?,
                    grants: buf(e, f)?,
                }
            }
            nr::VM_CREATE => VmCreate,
            nr::VM_MAP => VmMap { vm: handle(a)?, shm: handle(b)?, gpa: Gpa(c), prot: d },
            nr::VCPU_CREATE => VcpuCreate { vm: handle(a)?, state_addr: b },
            nr::VCPU_RUN => VcpuRun { vcpu: handle(a)? },
            nr::VCPU_POKE => VcpuPoke { vcpu: handle(a)? },
            nr::VM_UNMAP => VmUnmap { vm: handle(a)?, gpa: Gpa(b) },
            nr::CLOCK_REALTIME => ClockRealtime,
            nr::IO_PORTS_CREATE => {
                // A range of at least one port that ends at or below 0x10000.
                let base = u16::try_from(b).map_err(|_| Error::InvalidArgument)?;
                let count = u16::try_from(c).map_err(|_| Error::InvalidArgument)?;
                if count == 0 || b + c > 0x1_0000 {
                    return Err(Error::InvalidArgument);
                }
                IoPortsCreate { hardware: handle(a)?, base, count }
            }
            nr::IO_PORTS_ENABLE => IoPortsEnable { ports: handle(a)? },
            nr::DEVICE_MEMORY_CREATE => DeviceMemoryCreate { hardware: handle(a)?, phys: b, len: c },
            nr::DMA_CREATE => DmaCreate { hardware: handle(a)?, len: b },
            nr::IRQ_CREATE => {
                IrqCreate { hardware: handle(a)?, source: IrqSource::decode(b)?, notify: handle(c)?, bit: bit(d)? }
            }
            nr::IRQ_ACK => IrqAck { irq: handle(a)? },
            _ => return Err(Error::UnknownSyscall),
        })
    }
}

/// What the kernel puts back: RAX (0 or error code), RDX, RSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Return {
    pub rax: u64,
    pub rdx: u64,
    pub rsi: u64,
}

impl Return {
    pub fn ok(value: u64) -> Self {
        Return { rax: 0, rdx: value, rsi: 0 }
    }
    pub fn ok2(value: u64, second: u64) -> Self {
        Return { rax: 0, rdx: value, rsi: second }
    }
    pub fn err(e: Error) -> Self {
        Return { rax: e as u64, rdx: 0, rsi: 0 }
    }
    pub fn from_result(r: Result<(u64, u64), Error>) -> Self {
        match r {
            Ok((v, s)) => Return::ok2(v, s),
            Err(e) => Return::err(e),
        }
    }
    /// Userland's view: the value pair, or the error (an unknown code reads as UnknownSyscall).
    pub fn into_result(self) -> Result<(u64, u64), Error> {
        if self.rax == 0 {
            Ok((self.rdx, self.rsi))
        } else {
            Err(Error::from_code(self.rax).unwrap_or(Error::UnknownSyscall))
        }
    }
}

#[cfg(test)]
mod tests;
