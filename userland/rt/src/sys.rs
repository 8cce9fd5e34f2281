//! Typed wrappers for every system call (see docs/abi.md). Each returns the kernel's result or
//! its error code as `keel_abi::Error`.

use core::arch::asm;

use keel_abi::{Error, ExitStatus, Handle, InfoKind, Return, Rights, Syscall, UserBuf};
use keel_addr::Gpa;

fn raw(call: Syscall) -> Result<(u64, u64), Error> {
    let r = call.encode();
    let (rax, rdx, rsi): (u64, u64, u64);
    // SAFETY: the `syscall` instruction enters the kernel, which reads the registers given here
    // and writes RAX, RDX and RSI; it clobbers RCX and R11 (SDM Vol 2B SYSCALL). Memory the call
    // names belongs to this process; the kernel checks every address.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") r[0] => rax,
            in("rdi") r[1],
            inlateout("rsi") r[2] => rsi,
            inlateout("rdx") r[3] => rdx,
            in("r10") r[4],
            in("r8") r[5],
            in("r9") r[6],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    Return { rax, rdx, rsi }.into_result()
}

fn value(call: Syscall) -> Result<u64, Error> {
    raw(call).map(|(v, _)| v)
}

fn buf(bytes: &[u8]) -> UserBuf {
    UserBuf { addr: bytes.as_ptr() as u64, len: bytes.len() as u64 }
}

fn buf_mut(bytes: &mut [u8]) -> UserBuf {
    UserBuf { addr: bytes.as_mut_ptr() as u64, len: bytes.len() as u64 }
}

pub fn exit(code: u32) -> ! {
    let _ = raw(Syscall::Exit { code });
    loop {
        core::hint::spin_loop();
    }
}

pub fn yield_now() {
    let _ = raw(Syscall::Yield);
}

/// Nanoseconds since boot, as `ClockNs` gives them, but computed here from the TSC with the
/// kernel's factor (asked once, `KernelInfo` Clock): a system call per reading cost about 250
/// instructions, and drivers read the clock around every wait.
pub fn clock_ns() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    use keel_abi::info::{ClockRecord, Record};
    /// The factor, 0 until asked.
    static NS_PER_TICK_FP32: AtomicU64 = AtomicU64::new(0);
    let mut factor = NS_PER_TICK_FP32.load(Ordering::Relaxed);
    if factor == 0 {
        let mut buf = [0u8; ClockRecord::SIZE];
        factor = kernel_info(InfoKind::Clock, &mut buf)
            .ok()
            .and_then(|_| ClockRecord::read(&buf))
            .map_or(0, |c| c.ns_per_tick_fp32);
        if factor == 0 {
            return value(Syscall::ClockNs).unwrap_or(0);
        }
        NS_PER_TICK_FP32.store(factor, Ordering::Relaxed);
    }
    ClockRecord { ns_per_tick_fp32: factor }.ns_at(crate::cpu::rdtsc())
}

pub fn mem_map(addr: u64, len: u64, prot: u64) -> Result<u64, Error> {
    value(Syscall::MemMap { addr, len, prot })
}

pub fn mem_unmap(addr: u64, len: u64) -> Result<(), Error> {
    value(Syscall::MemUnmap { addr, len }).map(|_| ())
}

pub fn notify_create() -> Result<Handle, Error> {
    value(Syscall::NotifyCreate).map(|h| h as Handle)
}

pub fn notify_signal(handle: Handle, bits: u64) -> Result<(), Error> {
    value(Syscall::NotifySignal { handle, bits }).map(|_| ())
}

/// Wait for bits; `None` timeout waits forever. Returns the bits (0: timed out).
pub fn notify_wait(handle: Handle, timeout_ns: Option<u64>) -> Result<u64, Error> {
    value(Syscall::NotifyWait { handle, timeout_ns: timeout_ns.unwrap_or(u64::MAX) })
}

/// `notify_signal(signal, bits)` then `notify_wait(wait, timeout_ns)`, in one system call.
pub fn notify_signal_wait(signal: Handle, bits: u64, wait: Handle, timeout_ns: Option<u64>) -> Result<u64, Error> {
    value(Syscall::NotifySignalWait { signal, bits, wait, timeout_ns: timeout_ns.unwrap_or(u64::MAX) })
}

/// Start a boot-module program; returns (process handle, pid).
pub fn process_spawn(modules: Handle, name: &str, notify: Handle, bit: u8) -> Result<(Handle, u64), Error> {
    raw(Syscall::ProcessSpawn { modules, name: buf(name.as_bytes()), notify, bit }).map(|(h, pid)| (h as Handle, pid))
}

/// The exit status, or `Err(WouldBlock)` while it runs.
pub fn process_wait(process: Handle) -> Result<ExitStatus, Error> {
    value(Syscall::ProcessWait { process }).map(ExitStatus::decode)
}

pub fn process_kill(process: Handle) -> Result<(), Error> {
    value(Syscall::ProcessKill { process }).map(|_| ())
}

pub fn handle_grant(process: Handle, handle: Handle, rights: Rights) -> Result<Handle, Error> {
    value(Syscall::HandleGrant { process, handle, rights }).map(|h| h as Handle)
}

pub fn handle_close(handle: Handle) -> Result<(), Error> {
    value(Syscall::HandleClose { handle }).map(|_| ())
}

pub fn console_write(console: Handle, bytes: &[u8]) -> Result<usize, Error> {
    value(Syscall::ConsoleWrite { console, buf: buf(bytes) }).map(|n| n as usize)
}

pub fn console_read(console: Handle, out: &mut [u8]) -> Result<usize, Error> {
    value(Syscall::ConsoleRead { console, buf: buf_mut(out) }).map(|n| n as usize)
}

pub fn console_bind(console: Handle, notify: Handle, bit: u8) -> Result<(), Error> {
    value(Syscall::ConsoleBind { console, notify, bit }).map(|_| ())
}

pub fn console_claim(console: Handle) -> Result<(), Error> {
    value(Syscall::ConsoleClaim { console }).map(|_| ())
}

/// Kernel log bytes from position `from`: (bytes copied, position after them).
pub fn klog_read(console: Handle, from: u64, out: &mut [u8]) -> Result<(usize, u64), Error> {
    raw(Syscall::KlogRead { console, from, buf: buf_mut(out) }).map(|(n, end)| (n as usize, end))
}

pub fn klog_bind(console: Handle, notify: Handle, bit: u8) -> Result<(), Error> {
    value(Syscall::KlogBind { console, notify, bit }).map(|_| ())
}

pub fn module_size(modules: Handle, name: &str) -> Result<u64, Error> {
    value(Syscall::ModuleSize { modules, name: buf(name.as_bytes()) })
}

pub fn module_read(modules: Handle, name: &str, offset: u64, out: &mut [u8]) -> Result<usize, Error> {
    value(Syscall::ModuleRead { modules, name: buf(name.as_bytes()), offset, buf: buf_mut(out) }).map(|n| n as usize)
}

/// The records of one report (keel-abi `info`) into `out`, cut to its length. Result: bytes
/// written, and the size of the whole report.
pub fn kernel_info(kind: InfoKind, out: &mut [u8]) -> Result<(usize, usize), Error> {
    raw(Syscall::KernelInfo { kind, buf: buf_mut(out) }).map(|(n, total)| (n as usize, total as usize))
}

/// The machine's free memory in bytes now (the `Memory` report's `free_bytes`).
pub fn free_memory() -> Result<u64, Error> {
    use keel_abi::info::{MemoryRecord, Record};
    let mut record = [0u8; MemoryRecord::SIZE];
    kernel_info(InfoKind::Memory, &mut record)?;
    MemoryRecord::read(&record).map(|m| m.free_bytes).ok_or(Error::InvalidArgument)
}

pub fn reboot(system: Handle) -> Result<(), Error> {
    value(Syscall::Reboot { system }).map(|_| ())
}

pub fn debug_write(bytes: &[u8]) -> Result<usize, Error> {
    value(Syscall::DebugWrite { buf: buf(bytes) }).map(|n| n as usize)
}

pub fn shm_create(len: u64) -> Result<Handle, Error> {
    value(Syscall::ShmCreate { len }).map(|h| h as Handle)
}

pub fn shm_map(handle: Handle, addr: u64, prot: u64) -> Result<u64, Error> {
    value(Syscall::ShmMap { handle, addr, prot })
}

/// Start a thread at `entry(arg)` on the stack whose top is `stack_top`. Returns its id.
pub fn thread_create(entry: extern "C" fn(u64) -> !, stack_top: u64, arg: u64) -> Result<u64, Error> {
    value(Syscall::ThreadCreate { entry: entry as *const () as u64, stack: stack_top, arg })
}

pub fn thread_exit() -> ! {
    let _ = raw(Syscall::ThreadExit);
    loop {
        core::hint::spin_loop();
    }
}

/// Any call with raw arguments (tests use it to pass addresses no wrapper would).
pub fn raw_call(call: Syscall) -> Result<(u64, u64), Error> {
    raw(call)
}

/// Start a boot-module program with handles: `grants` are (our handle, rights) pairs that
/// become the child's handles 1, 2, ... Returns (process handle, pid).
pub fn process_spawn_with(
    modules: Handle,
    name: &str,
    notify: Handle,
    bit: u8,
    grants: &[(Handle, Rights)],
) -> Result<(Handle, u64), Error> {
    let mut raw = [0u8; 8 * keel_abi::MAX_GRANTS as usize];
    if grants.len() > keel_abi::MAX_GRANTS as usize {
        return Err(Error::InvalidArgument);
    }
    for (i, (h, r)) in grants.iter().enumerate() {
        raw[8 * i..8 * i + 4].copy_from_slice(&h.to_le_bytes());
        raw[8 * i + 4..8 * i + 8].copy_from_slice(&r.0.to_le_bytes());
    }
    let grants = UserBuf { addr: raw.as_ptr() as u64, len: 8 * grants.len() as u64 };
    raw_call(Syscall::ProcessSpawnWith { modules, name: buf(name.as_bytes()), notify, bit, grants })
        .map(|(h, pid)| (h as Handle, pid))
}

pub fn vm_create() -> Result<Handle, Error> {
    value(Syscall::VmCreate).map(|h| h as Handle)
}

pub fn vm_map(vm: Handle, shm: Handle, gpa: Gpa, prot: u64) -> Result<u64, Error> {
    value(Syscall::VmMap { vm, shm, gpa, prot })
}

/// A vCPU whose state page the kernel maps at `state_addr`.
pub fn vcpu_create(vm: Handle, state_addr: u64) -> Result<Handle, Error> {
    value(Syscall::VcpuCreate { vm, state_addr }).map(|h| h as Handle)
}

/// Run the guest until an exit needs the monitor: the exit's kind, and the clock (ns, as
/// `clock_ns`) at the exit.
pub fn vcpu_run(vcpu: Handle) -> Result<(keel_abi::vcpu::ExitKind, u64), Error> {
    raw(Syscall::VcpuRun { vcpu }).map(|(k, now)| (keel_abi::vcpu::ExitKind::from_u32(k as u32), now))
}

pub fn vcpu_poke(vcpu: Handle) -> Result<(), Error> {
    value(Syscall::VcpuPoke { vcpu }).map(|_| ())
}

pub fn vm_unmap(vm: Handle, gpa: Gpa) -> Result<u64, Error> {
    value(Syscall::VmUnmap { vm, gpa })
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn clock_realtime_ns() -> u64 {
    value(Syscall::ClockRealtime).unwrap_or(0)
}

/// A handle for I/O ports `base..base + count` (needs DEVICE on the hardware handle).
pub fn io_ports_create(hardware: Handle, base: u16, count: u16) -> Result<Handle, Error> {
    value(Syscall::IoPortsCreate { hardware, base, count }).map(|h| h as Handle)
}

/// Open the ports of `ports` to this process.
pub fn io_ports_enable(ports: Handle) -> Result<(), Error> {
    value(Syscall::IoPortsEnable { ports }).map(|_| ())
}

/// Shared memory over a device's registers at `phys` (map it with `shm_map`: uncached).
pub fn device_memory_create(hardware: Handle, phys: u64, len: u64) -> Result<Handle, Error> {
    value(Syscall::DeviceMemoryCreate { hardware, phys, len }).map(|h| h as Handle)
}

/// Pinned, contiguous, zeroed memory for a device: its shared-memory handle and physical address.
pub fn dma_create(hardware: Handle, len: u64) -> Result<(Handle, u64), Error> {
    raw(Syscall::DmaCreate { hardware, len }).map(|(h, phys)| (h as Handle, phys))
}

/// Deliver a device's interrupt as `bit` on `notify`: the interrupt handle and, for MSI, the
/// message (address << 32 | data) to program into the device.
pub fn irq_create(
    hardware: Handle,
    source: keel_abi::IrqSource,
    notify: Handle,
    bit: u8,
) -> Result<(Handle, u64), Error> {
    raw(Syscall::IrqCreate { hardware, source, notify, bit }).map(|(h, message)| (h as Handle, message))
}

/// Unmask a level-triggered interrupt line after serving the device.
pub fn irq_ack(irq: Handle) -> Result<(), Error> {
    value(Syscall::IrqAck { irq }).map(|_| ())
}
