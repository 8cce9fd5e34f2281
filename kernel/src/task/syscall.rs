//! The system-call dispatcher: decode (keel-abi), check handles and rights (caps), do the work,
//! put the results in the saved registers. A bad argument is an error code, never a kernel fault.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use keel_abi::{Error, ExitStatus, Handle, Return, Rights, Syscall, UserBuf};

use super::caps::{self, Capability, Object};
use super::notify::Notification;
use super::process::{self, Process};
use super::scheduler;
use crate::arch::x86_64::instructions::{self, wrmsr};

/// The registers saved by syscall_entry (switch.S), lowest address first.
#[repr(C)]
pub struct SyscallFrame {
    rax: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    r10: u64,
    r8: u64,
    r9: u64,
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    rbx: u64,
    rbp: u64,
    r11: u64,
    rcx: u64,
    user_rsp: u64,
}

use keel_hv::x86::msr::{LSTAR as MSR_LSTAR, SFMASK as MSR_FMASK, STAR as MSR_STAR};

/// Enable SYSCALL on this CPU. See: SDM Vol 3A 5.8.8 (fast system calls in 64-bit mode).
pub fn init_this_cpu() {
    extern "C" {
        fn syscall_entry();
    }
    // STAR: kernel CS 0x08 (SS 0x10); SYSRET base 0x10 -> user SS 0x18|3, CS 0x20|3 (gdt.rs).
    let star = (0x10u64 << 48) | (0x08u64 << 32);
    // FMASK: clear IF, DF, TF, AC and NT on entry.
    let fmask = (1 << 9) | (1 << 10) | (1 << 8) | (1 << 18) | (1 << 14);
    // SAFETY: the values follow the GDT layout and syscall_entry is the entry stub in switch.S;
    // EFER.SCE only enables the SYSCALL instruction.
    unsafe { wrmsr(MSR_STAR, star) };
    // SAFETY: as above.
    unsafe { wrmsr(MSR_LSTAR, syscall_entry as *const () as u64) };
    // SAFETY: as above.
    unsafe { wrmsr(MSR_FMASK, fmask) };
    // SAFETY: reading EFER has no effect.
    let efer = unsafe { instructions::rdmsr(instructions::MSR_EFER) };
    // SAFETY: as above.
    unsafe { wrmsr(instructions::MSR_EFER, efer | 1) };
}

#[no_mangle]
extern "C" fn syscall_dispatch(frame: &mut SyscallFrame) {
    let Some(process) = scheduler::current_process() else {
        panic!("system call without a current process");
    };
    // SYSRET to a non-canonical RIP would fault in ring 0 (SDM Vol 2B SYSRET): refuse it.
    if frame.rcx >= keel_abi::USER_END {
        log::warn!("process {} ({}) killed: system call returning to {:#x}", process.pid, process.name, frame.rcx);
        process::terminate(&process, ExitStatus::Killed { vector: 13 });
        drop(process);
        scheduler::exit_current();
    }
    let regs = [frame.rax, frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    let call = Syscall::decode(regs);
    if matches!(call, Ok(Syscall::ThreadExit)) {
        // Nothing of this call may stay on the stack of a thread that never returns.
        drop(process);
        scheduler::exit_current();
    }
    // VcpuRun is the call on every exit to the monitor: it skips the general dispatch.
    let result = match call {
        Ok(Syscall::VcpuRun { vcpu }) => vcpu_run(&process, vcpu),
        Ok(call) => handle(&process, call),
        Err(e) => Err(e),
    };
    let ret = Return::from_result(result);
    frame.rax = ret.rax;
    frame.rdx = ret.rdx;
    frame.rsi = ret.rsi;
    crate::klog::flush_signal();
    // A process killed during the call (by another, or by itself) ends here, with the call's
    // frames unwound and what they held dropped.
    drop(process);
    scheduler::end_if_dying();
}

/// The largest DMA buffer one call makes (physically contiguous memory is scarce).
const MAX_DMA: u64 = 4 << 20;

fn notification(p: &Process, h: Handle, rights: Rights) -> Result<Arc<Notification>, Error> {
    caps::expect_notification(p.caps.lock().get_kind(h, "notification", rights)?)
}

fn require(p: &Process, h: Handle, kind: &'static str, rights: Rights) -> Result<(), Error> {
    p.caps.lock().get_kind(h, kind, rights).map(|_| ())
}

fn read_user(p: &Process, buf: UserBuf) -> Result<Vec<u8>, Error> {
    let mut data = vec![0u8; buf.len as usize];
    p.space.lock().copy_from_user(buf.addr, &mut data)?;
    Ok(data)
}

fn read_name(p: &Process, buf: UserBuf) -> Result<String, Error> {
    String::from_utf8(read_user(p, buf)?).map_err(|_| Error::InvalidArgument)
}

/// Check that `buf` is writable user memory before taking data (console input) that must not
/// be lost if the copy fails.
fn writable(p: &Process, buf: UserBuf) -> Result<(), Error> {
    p.space.lock().check_writable(buf.addr, buf.len)
}

/// Run the guest until an exit needs the monitor: the exit's kind and the clock at the exit (so
/// that the monitor's device models need no ClockNs call). Its only caller is syscall_dispatch,
/// so the run loop is inlined once, here.
fn vcpu_run(p: &Arc<Process>, vcpu: Handle) -> Result<(u64, u64), Error> {
    let vcpu = caps::expect_vcpu(p.caps.lock().get_kind(vcpu, "vcpu", Rights::RUN)?)?;
    let kind = vcpu.run()?;
    Ok((kind as u64, crate::time::now_ns()))
}

fn handle(p: &Arc<Process>, call: Syscall) -> Result<(u64, u64), Error> {
    use Syscall::*;
    let ok = |v: u64| Ok((v, 0));
    match call {
        // The thread ends on its way out of this call (syscall_dispatch), like every thread of
        // a process that was killed.
        Exit { code } => {
            process::terminate(p, ExitStatus::Exited(code));
            ok(0)
        }
        Yield => {
            scheduler::reschedule();
            ok(0)
        }
        ClockNs => ok(crate::time::now_ns()),
        ClockRealtime => ok(crate::time::epoch_at_zero_ns().saturating_add(crate::time::now_ns())),
        MemMap { addr, len, prot } => ok(p.space.lock().map_anonymous(addr, len, prot)?),
        MemUnmap { addr, len } => {
            p.space.lock().unmap(addr, len)?;
            ok(0)
        }
        ShmCreate { len } => {
            // One object holds at most one VM's RAM (free RAM bounds it further).
            if len == 0 || len > keel_abi::MAX_VM_MEMORY {
                return Err(Error::InvalidArgument);
            }
            let shm = crate::objects::SharedMemory::new(len).ok_or(Error::NoMemory)?;
            let cap =
                Capability { object: Object::SharedMemory(Arc::new(shm)), rights: Rights::MAP.union(Rights::GRANT) };
            ok(u64::from(p.caps.lock().insert(cap)?))
        }
        ShmMap { handle, addr, prot } => {
            let shm = caps::expect_shm(p.caps.lock().get_kind(handle, "shared memory", Rights::MAP)?)?;
            ok(p.space.lock().map_shared(addr, shm, prot)?)
        }
        ThreadCreate { entry, stack, arg } => {
            if entry >= keel_abi::USER_END || stack >= keel_abi::USER_END {
                return Err(Error::BadAddress);
            }
            ok(scheduler::create_thread(p.clone(), entry, stack, arg)?)
        }
        // Handled in syscall_dispatch, before this frame holds anything.
        ThreadExit => scheduler::exit_current(),
        NotifyCreate => {
            let cap = Capability {
                object: Object::Notification(Arc::new(Notification::new())),
                rights: Rights::SIGNAL.union(Rights::WAIT).union(Rights::GRANT),
            };
            ok(u64::from(p.caps.lock().insert(cap)?))
        }
        NotifySignal { handle, bits } => {
            notification(p, handle, Rights::SIGNAL)?.signal(bits);
            ok(0)
        }
        NotifyWait { handle, timeout_ns } => {
            let n = notification(p, handle, Rights::WAIT)?;
            let deadline = (timeout_ns != u64::MAX).then(|| crate::time::now_ns().saturating_add(timeout_ns));
            match n.wait(deadline) {
                Some(bits) => ok(bits),
                None => Err(Error::Busy),
            }
        }
        NotifySignalWait { signal, bits, wait, timeout_ns } => {
            let (to_signal, to_wait) = (notification(p, signal, Rights::SIGNAL)?, notification(p, wait, Rights::WAIT)?);
            to_signal.signal(bits);
            drop(to_signal);
            let deadline = (timeout_ns != u64::MAX).then(|| crate::time::now_ns().saturating_add(timeout_ns));
            match to_wait.wait(deadline) {
                Some(bits) => ok(bits),
                None => Err(Error::Busy),
            }
        }
        ProcessSpawn { modules, name, notify, bit } => {
            require(p, modules, "modules", Rights::SPAWN)?;
            let n = notification(p, notify, Rights::SIGNAL)?;
            let name = read_name(p, name)?;
            let child = process::spawn(&name, Vec::new(), Some((n, 1 << bit)))?;
            let pid = child.pid;
            let cap = Capability {
                object: Object::Process(child),
                rights: Rights::WAIT.union(Rights::KILL).union(Rights::GRANT),
            };
            Ok((u64::from(p.caps.lock().insert(cap)?), pid))
        }
        ProcessWait { process: h } => {
            let child = caps::expect_process(p.caps.lock().get_kind(h, "process", Rights::WAIT)?)?;
            // Reported once its memory and handles are free (Process::released_status).
            match child.released_status() {
                Some(status) => Ok((status.encode(), child.pid)),
                None => Err(Error::WouldBlock),
            }
        }
        ProcessKill { process: h } => {
            let child = caps::expect_process(p.caps.lock().get_kind(h, "process", Rights::KILL)?)?;
            if Arc::ptr_eq(&child, p) {
                return Err(Error::InvalidArgument);
            }
            log::info!("process {} ({}) killed on request of process {}", child.pid, child.name, p.pid);
            process::terminate(&child, ExitStatus::Killed { vector: 0xff });
            ok(0)
        }
        HandleGrant { process: h, handle, rights } => {
            let (target, cap) = {
                let table = p.caps.lock();
                let target = caps::expect_process(table.get_kind(h, "process", Rights::GRANT)?)?;
                let cap = table.get(handle, Rights::GRANT)?.clone();
                (target, cap)
            };
            if Arc::ptr_eq(&target, p) {
                return Err(Error::InvalidArgument);
            }
            let granted = Capability { object: cap.object, rights: cap.rights.intersect(rights) };
            let handle = target.caps.lock().insert(granted)?;
            ok(u64::from(handle))
        }
        HandleClose { handle } => {
            let cap = p.caps.lock().remove(handle)?;
            drop(cap);
            ok(0)
        }
        ConsoleWrite { console, buf } => {
            require(p, console, "console", Rights::WRITE)?;
            let data = read_user(p, buf)?;
            crate::serial::write_bytes(&data);
            ok(data.len() as u64)
        }
        ConsoleRead { console, buf } => {
            require(p, console, "console", Rights::READ)?;
            writable(p, buf)?;
            let mut data = vec![0u8; buf.len as usize];
            let n = crate::objects::CONSOLE_INPUT.lock().pop_into(&mut data);
            p.space.lock().copy_to_user(buf.addr, &data[..n])?;
            ok(n as u64)
        }
        ConsoleBind { console, notify, bit } => {
            require(p, console, "console", Rights::READ)?;
            let n = notification(p, notify, Rights::SIGNAL)?;
            let pending = {
                let mut input = crate::objects::CONSOLE_INPUT.lock();
                input.bind(n.clone(), 1 << bit);
                !input.is_empty()
            };
            if pending {
                n.signal(1 << bit);
            }
            ok(0)
        }
        ConsoleClaim { console } => {
            require(p, console, "console", Rights::WRITE)?;
            crate::klog::claim();
            ok(0)
        }
        KlogRead { console, from, buf } => {
            require(p, console, "console", Rights::READ)?;
            writable(p, buf)?;
            let mut data = vec![0u8; buf.len as usize];
            let (n, end) = crate::klog::read(from, &mut data);
            p.space.lock().copy_to_user(buf.addr, &data[..n])?;
            Ok((n as u64, end))
        }
        KlogBind { console, notify, bit } => {
            require(p, console, "console", Rights::READ)?;
            crate::klog::bind(notification(p, notify, Rights::SIGNAL)?, 1 << bit);
            ok(0)
        }
        ModuleSize { modules, name } => {
            require(p, modules, "modules", Rights::READ)?;
            let name = read_user(p, name)?;
            ok(crate::objects::module_bytes(&name).ok_or(Error::NotFound)?.len() as u64)
        }
        ModuleRead { modules, name, offset, buf } => {
            require(p, modules, "modules", Rights::READ)?;
            let name = read_user(p, name)?;
            let bytes = crate::objects::module_bytes(&name).ok_or(Error::NotFound)?;
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
            let n = (bytes.len() - start).min(buf.len as usize);
            p.space.lock().copy_to_user(buf.addr, &bytes[start..start + n])?;
            ok(n as u64)
        }
        KernelInfo { kind, buf } => {
            let report = crate::info::report(kind);
            let n = report.len().min(buf.len as usize);
            p.space.lock().copy_to_user(buf.addr, &report[..n])?;
            Ok((n as u64, report.len() as u64))
        }
        Reboot { system } => {
            require(p, system, "system", Rights::REBOOT)?;
            log::info!("reboot requested by process {} ({})", p.pid, p.name);
            crate::info::reboot()
        }
        ProcessSpawnWith { modules, name, notify, bit, grants } => {
            require(p, modules, "modules", Rights::SPAWN)?;
            let n = notification(p, notify, Rights::SIGNAL)?;
            let name = read_name(p, name)?;
            let raw = read_user(p, grants)?;
            let mut caps = Vec::new();
            {
                let table = p.caps.lock();
                for pair in raw.chunks_exact(8) {
                    let h = u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]);
                    let rights = Rights(u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]));
                    let cap = table.get(h, Rights::GRANT)?;
                    caps.push(Capability { object: cap.object.clone(), rights: cap.rights.intersect(rights) });
                }
            }
            let child = process::spawn(&name, caps, Some((n, 1 << bit)))?;
            let pid = child.pid;
            let cap = Capability {
                object: Object::Process(child),
                rights: Rights::WAIT.union(Rights::KILL).union(Rights::GRANT),
            };
            Ok((u64::from(p.caps.lock().insert(cap)?), pid))
        }
        VmCreate => {
            let vm = crate::virt::Vm::new()?;
            let cap =
                Capability { object: Object::Vm(vm), rights: Rights::MAP.union(Rights::RUN).union(Rights::GRANT) };
            ok(u64::from(p.caps.lock().insert(cap)?))
        }
        VmMap { vm, shm, gpa, prot } => {
            let (vm, shm) = {
                let table = p.caps.lock();
                (
                    caps::expect_vm(table.get_kind(vm, "vm", Rights::MAP)?)?,
                    caps::expect_shm(table.get_kind(shm, "shared memory", Rights::MAP)?)?,
                )
            };
            ok(vm.map(shm, gpa, prot)?)
        }
        VmUnmap { vm, gpa } => {
            let vm = caps::expect_vm(p.caps.lock().get_kind(vm, "vm", Rights::MAP)?)?;
            ok(vm.unmap(gpa)?)
        }
        VcpuCreate { vm, state_addr } => {
            let vm = caps::expect_vm(p.caps.lock().get_kind(vm, "vm", Rights::RUN)?)?;
            let vcpu = crate::virt::Vcpu::new(vm)?;
            p.space.lock().map_shared(state_addr, vcpu.state.clone(), keel_abi::prot::READ | keel_abi::prot::WRITE)?;
            let cap = Capability {
                object: Object::Vcpu(vcpu),
                rights: Rights::RUN.union(Rights::SIGNAL).union(Rights::GRANT),
            };
            ok(u64::from(p.caps.lock().insert(cap)?))
        }
        // Handled in syscall_dispatch, on its own path (the hot one).
        VcpuRun { .. } => Err(Error::UnknownSyscall),
        VcpuPoke { vcpu } => {
            caps::expect_vcpu(p.caps.lock().get_kind(vcpu, "vcpu", Rights::SIGNAL)?)?.poke();
            ok(0)
        }
        IoPortsCreate { hardware, base, count } => {
            require(p, hardware, "hardware", Rights::DEVICE)?;
            let ports = crate::hw::IoPorts { base, count };
            let rights = Rights::READ.union(Rights::WRITE).union(Rights::GRANT);
            ok(u64::from(p.caps.lock().insert(Capability { object: Object::IoPorts(ports), rights })?))
        }
        IoPortsEnable { ports } => {
            let cap = p.caps.lock().get_kind(ports, "io ports", Rights::READ.union(Rights::WRITE))?.clone();
            let Object::IoPorts(range) = cap.object else { return Err(Error::WrongType) };
            crate::hw::enable_ports(p, range);
            ok(0)
        }
        DeviceMemoryCreate { hardware, phys, len } => {
            require(p, hardware, "hardware", Rights::DEVICE)?;
            let range = crate::mm::check_device_range(phys, len).map_err(|e| {
                log::warn!("process {} ({}): device memory {phys:#x}+{len:#x} refused: {e:?}", p.pid, p.name);
                Error::InvalidArgument
            })?;
            if len > crate::objects::MAX_DEVICE_MEMORY {
                return Err(Error::TooLarge);
            }
            let shm = Arc::new(crate::objects::SharedMemory::device(range).ok_or(Error::NoMemory)?);
            let cap = Capability { object: Object::SharedMemory(shm), rights: Rights::MAP.union(Rights::GRANT) };
            ok(u64::from(p.caps.lock().insert(cap)?))
        }
        DmaCreate { hardware, len } => {
            require(p, hardware, "hardware", Rights::DEVICE)?;
            if len == 0 || len > MAX_DMA {
                return Err(Error::InvalidArgument);
            }
            let shm = crate::objects::SharedMemory::contiguous(len).ok_or(Error::NoMemory)?;
            let phys = shm.span_base().unwrap_or(0);
            let cap =
                Capability { object: Object::SharedMemory(Arc::new(shm)), rights: Rights::MAP.union(Rights::GRANT) };
            Ok((u64::from(p.caps.lock().insert(cap)?), phys))
        }
        IrqCreate { hardware, source, notify, bit } => {
            require(p, hardware, "hardware", Rights::DEVICE)?;
            let n = notification(p, notify, Rights::SIGNAL)?;
            let (line, message) = crate::hw::IrqLine::create(source, n, 1 << bit)?;
            let cap = Capability { object: Object::Irq(Arc::new(line)), rights: Rights::WRITE.union(Rights::GRANT) };
            Ok((u64::from(p.caps.lock().insert(cap)?), message))
        }
        IrqAck { irq } => {
            let cap = p.caps.lock().get_kind(irq, "irq", Rights::WRITE)?.clone();
            let Object::Irq(line) = cap.object else { return Err(Error::WrongType) };
            line.ack();
            ok(0)
        }
        DebugWrite { buf } => {
            let data = read_user(p, UserBuf { addr: buf.addr, len: buf.len.min(512) })?;
            let text = String::from_utf8_lossy(&data);
            log::info!("[{} {}] {}", p.pid, p.name, text.trim_end());
            ok(data.len() as u64)
        }
    }
}
