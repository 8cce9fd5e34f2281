//! Processes: a name, an address space, a capability table, threads, and an exit status.
//! Spawning loads a static ELF program from a boot module (checked by `keel-elf`).
//!
//! A process that faults in ring 3 (bad pointer, invalid opcode, ...) is killed and reported on
//! the kernel log; the kernel and other processes go on. Its memory is freed once none of its
//! threads can run any more (see scheduler::reap).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use keel_abi::{prot, Error, ExitStatus};
use keel_mm::PAGE_SIZE;

use super::address_space::{AddressSpace, USER_LIMIT, USER_START};
use super::caps::{CapTable, Capability};
use super::notify::Notification;
use super::scheduler;
use crate::arch::x86_64::interrupts::{exception_name, TrapFrame};

/// Each process's main stack: 256 KiB just below the top of user space.
const STACK_SIZE: u64 = 256 * 1024;
const STACK_TOP: u64 = USER_LIMIT - PAGE_SIZE;

pub struct Process {
    pub pid: u64,
    pub name: String,
    /// The PML4, fixed for the process's life (read by the scheduler without locking).
    pub root: u64,
    pub space: Mutex<AddressSpace>,
    pub caps: Mutex<CapTable>,
    status: Mutex<Option<ExitStatus>>,
    exit_notify: Mutex<Option<(Arc<Notification>, u64)>>,
    /// Set by `terminate`: each of the process's threads ends at its next way out of the kernel
    /// (system call return, return from a preempting interrupt, a vCPU loop iteration), once its
    /// kernel frames have been unwound and have dropped what they held.
    pub dying: core::sync::atomic::AtomicBool,
    /// Set by `release`, once the memory and handles are freed: only then does ProcessWait
    /// report the exit and the exit notification fire. (They used to fire at `terminate`, while
    /// the process's threads still held its memory: vmd, restarting a rebooting VM at once, could
    /// find its 256 MiB not yet free and fail with "out of memory".)
    released: core::sync::atomic::AtomicBool,
    /// The I/O ports this process opened (IoPortsEnable), loaded into the TSS while it runs.
    pub io_ports: Mutex<Option<crate::hw::IoBitmap>>,
    /// Set once the process has opened ports: only then does a context switch to it look at
    /// `io_ports` (every other switch skips the lock).
    pub has_io_ports: core::sync::atomic::AtomicBool,
}

static NEXT_PID: AtomicU64 = AtomicU64::new(1);
/// Live processes by pid (dead ones leave when their last thread is reaped).
static PROCESSES: Mutex<BTreeMap<u64, Arc<Process>>> = Mutex::new(BTreeMap::new());

impl Process {
    /// The exit status once the process has ended (its threads may still be unwinding).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.lock()
    }

    /// The exit status once the process has ended and its memory and handles are freed: what
    /// ProcessWait reports.
    pub fn released_status(&self) -> Option<ExitStatus> {
        if self.released.load(core::sync::atomic::Ordering::SeqCst) {
            self.exit_status()
        } else {
            None
        }
    }
}

/// Load `name` from the boot modules and start it with `caps` as its first handles.
pub fn spawn(
    name: &str,
    caps: Vec<Capability>,
    exit_notify: Option<(Arc<Notification>, u64)>,
) -> Result<Arc<Process>, Error> {
    let bytes = crate::objects::module_bytes(name.as_bytes()).ok_or(Error::NotFound)?;
    let program = keel_elf::parse(bytes, USER_START, STACK_TOP - STACK_SIZE).map_err(|e| {
        log::warn!("spawn {name}: {e}");
        Error::InvalidArgument
    })?;
    let mut space = AddressSpace::new()?;
    let (regions, count) = program.regions();
    for r in &regions[..count] {
        let bits = prot::READ | if r.writable { prot::WRITE } else { 0 } | if r.executable { prot::EXEC } else { 0 };
        space.map_anonymous(r.start, r.end - r.start, bits)?;
    }
    for seg in program.segments() {
        let file = &bytes[seg.file_offset as usize..(seg.file_offset + seg.file_size) as usize];
        space.fill(seg.vaddr, file)?;
    }
    space.map_anonymous(STACK_TOP - STACK_SIZE, STACK_SIZE, prot::READ | prot::WRITE)?;
    let mut table = CapTable::default();
    for cap in caps {
        table.insert(cap)?;
    }
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let process = Arc::new(Process {
        pid,
        name: String::from(name),
        root: space.root(),
        space: Mutex::new(space),
        caps: Mutex::new(table),
        status: Mutex::new(None),
        exit_notify: Mutex::new(exit_notify),
        dying: core::sync::atomic::AtomicBool::new(false),
        released: core::sync::atomic::AtomicBool::new(false),
        io_ports: Mutex::new(None),
        has_io_ports: core::sync::atomic::AtomicBool::new(false),
    });
    PROCESSES.lock().insert(pid, process.clone());
    // The stack top is 16-byte aligned minus 8, as if `call` had pushed a return address.
    scheduler::create_thread(process.clone(), program.entry, STACK_TOP - 8, 0)?;
    log::info!("process {pid} ({name}) started");
    Ok(process)
}

/// End `process` with `status`: no thread of it runs again (each unwinds first); `release`
/// frees it and fires its exit notification once the last one is gone. The caller reschedules
/// if the current thread belonged to it.
pub fn terminate(process: &Arc<Process>, status: ExitStatus) {
    {
        let mut s = process.status.lock();
        if s.is_some() {
            return;
        }
        *s = Some(status);
    }
    process.dying.store(true, core::sync::atomic::Ordering::SeqCst);
    scheduler::kill_threads_of(process.pid);
}

/// Called by the scheduler once no thread of `process` can run: free its memory and handles.
pub fn release(process: &Arc<Process>) {
    process.space.lock().teardown();
    // Dropping capabilities may drop other processes or shared memory: do it outside the lock.
    let caps = core::mem::take(&mut *process.caps.lock());
    drop(caps);
    PROCESSES.lock().remove(&process.pid);
    process.released.store(true, core::sync::atomic::Ordering::SeqCst);
    let notify = process.exit_notify.lock().take();
    if let Some((n, bits)) = notify {
        n.signal(bits);
    }
}

/// A CPU exception in ring 3: report it and kill the current process. Does not return.
pub fn fault_in_user_mode(frame: &TrapFrame) -> ! {
    let Some(process) = scheduler::current_process() else {
        panic!("user-mode exception {} without a current process", frame.vector);
    };
    let cr2 = crate::arch::x86_64::instructions::read_cr2();
    let detail = if frame.vector == 14 { alloc::format!(", address {cr2:#x}") } else { String::new() };
    log::warn!(
        "process {} ({}) killed: {} at rip {:#x}{detail} (error code {:#x})",
        process.pid,
        process.name,
        exception_name(frame.vector),
        frame.rip,
        frame.error_code
    );
    terminate(&process, ExitStatus::Killed { vector: frame.vector as u8 });
    drop(process);
    scheduler::exit_current()
}

/// One `ProcessRecord` per process, for `KernelInfo`.
pub fn report(out: &mut Vec<u8>) {
    for p in PROCESSES.lock().values() {
        let record = keel_abi::info::ProcessRecord {
            pid: p.pid,
            pages: p.space.lock().pages(),
            state: u32::from(p.exit_status().is_some()),
            name: keel_abi::info::fixed_text(&p.name),
        };
        crate::info::push(out, &record);
    }
}
