//! The scheduler: round-robin over ready threads on the boot CPU, preempted by the local APIC
//! timer (100 Hz) when a thread runs in ring 3, with an idle context (the boot stack) that halts
//! when nothing is ready.
//!
//! Each thread has its own kernel stack (frames from the allocator); switching saves the callee-
//! saved registers on it (switch.S) and loads the next thread's CR3 and RSP0. Dead threads are
//! freed ("reaped") only after the CPU has switched away from their stack.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use keel_abi::Error;
use keel_mm::PAGE_SIZE;

use super::percpu;
use super::process::{self, Process};
use crate::arch::x86_64::instructions;
use crate::mm;

const KERNEL_STACK_PAGES: u64 = 8; // 32 KiB
/// At most this many threads in the system (each costs a kernel stack).
const MAX_THREADS: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ready,
    Running,
    Blocked { deadline: Option<u64> },
    Dead,
}

struct Thread {
    process: Arc<Process>,
    kernel_stack: u64, // physical base of KERNEL_STACK_PAGES contiguous frames
    saved_rsp: u64,
    state: State,
    entry: u64,
    user_stack: u64,
    arg: u64,
}

impl Thread {
    fn stack_top(&self) -> u64 {
        mm::phys_to_virt(self.kernel_stack) + KERNEL_STACK_PAGES * PAGE_SIZE
    }
}

struct Scheduler {
    threads: BTreeMap<u64, alloc::boxed::Box<Thread>>,
    ready: VecDeque<u64>,
    current: Option<u64>,
    idle_rsp: u64,
    zombies: Vec<u64>,
    next_tid: u64,
}

static SCHED: Mutex<Scheduler> = Mutex::new(Scheduler {
    threads: BTreeMap::new(),
    ready: VecDeque::new(),
    current: None,
    idle_rsp: 0,
    zombies: Vec::new(),
    next_tid: 1,
});

extern "C" {
    fn switch_context(save: *mut u64, next: u64);
    fn thread_trampoline();
    fn enter_user(rip: u64, rsp: u64, arg: u64) -> !;
}

/// A new thread of `process`, ready to enter ring 3 at `entry` with `arg` in RDI.
pub fn create_thread(process: Arc<Process>, entry: u64, user_stack: u64, arg: u64) -> Result<u64, Error> {
    if SCHED.lock().threads.len() >= MAX_THREADS {
        return Err(Error::NoMemory);
    }
    let stack = mm::alloc_contiguous(KERNEL_STACK_PAGES).ok_or(Error::NoMemory)?;
    let mut thread = Thread { process, kernel_stack: stack, saved_rsp: 0, state: State::Ready, entry, user_stack, arg };
    // The stack switch_context will pop: six callee-saved registers (zero), then the return
    // address thread_trampoline. See switch.S.
    let top = thread.stack_top();
    let frame = top - 8 * 7;
    // SAFETY: the frames were just allocated for this stack and are mapped by the direct map.
    unsafe { core::ptr::write_bytes(frame as *mut u64, 0, 6) };
    // SAFETY: as above (the stack's top word).
    unsafe { core::ptr::write((top - 8) as *mut u64, thread_trampoline as *const () as u64) };
    thread.saved_rsp = frame;
    let mut s = SCHED.lock();
    let tid = s.next_tid;
    s.next_tid += 1;
    s.threads.insert(tid, alloc::boxed::Box::new(thread));
    s.ready.push_back(tid);
    Ok(tid)
}

/// Where a new thread's first switch lands (via thread_trampoline): go to ring 3.
#[no_mangle]
extern "C" fn thread_first_run() -> ! {
    let (entry, stack, arg) = {
        let s = SCHED.lock();
        let t = &s.threads[&s.current.expect("a thread is running")];
        (t.entry, t.user_stack, t.arg)
    };
    end_if_dying();
    // SAFETY: entry and stack are user addresses of the current process (validated by the ELF
    // loader or ThreadCreate); enter_user clears all registers and IRETQs to ring 3.
    unsafe { enter_user(entry, stack, arg) }
}

pub fn current_tid() -> Option<u64> {
    SCHED.lock().current
}

pub fn current_process() -> Option<Arc<Process>> {
    let ptr = CURRENT_PROCESS.load(core::sync::atomic::Ordering::Relaxed);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` came from `Arc::as_ptr` of the current thread's `process`, set by
    // `reschedule` under the scheduler lock when this thread was switched to. The thread's
    // entry, and with it one strong reference, stays in `threads` at least until the thread is
    // switched away from (a dead current thread is only collected as a zombie after that), and
    // this runs on that thread; so the count is at least one and incrementing it is sound.
    unsafe { Arc::increment_strong_count(ptr) };
    // SAFETY: the reference just counted is the one this Arc owns (`ptr` is from Arc::as_ptr).
    Some(unsafe { Arc::from_raw(ptr) })
}

/// The current thread's process (`Arc::as_ptr`), or null while idle: read by
/// `current_process` on every system call without taking the scheduler lock (the lookup and
/// the lock were a tenth of a port I/O exit's round trip through the monitor).
static CURRENT_PROCESS: core::sync::atomic::AtomicPtr<Process> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

pub fn is_alive(tid: u64) -> bool {
    SCHED.lock().threads.get(&tid).is_some_and(|t| t.state != State::Dead)
}

/// Set when another thread became ready: a thread that stays in the kernel for long (a vCPU
/// running its guest) checks it and yields.
static RESCHED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the current thread should let others run (clears the request).
pub fn need_resched() -> bool {
    RESCHED.swap(false, core::sync::atomic::Ordering::Relaxed) && !SCHED.lock().ready.is_empty()
}

pub fn wake(tid: u64) {
    let mut s = SCHED.lock();
    if let Some(t) = s.threads.get_mut(&tid) {
        if let State::Blocked { .. } = t.state {
            t.state = State::Ready;
            s.ready.push_back(tid);
            RESCHED.store(true, core::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Make every thread of process `pid` end (its `dying` flag is already set): a blocked thread
/// is woken so that it unwinds out of the kernel and ends there (`end_if_dying`); a ready one
/// ends when it next runs. None is marked dead here: a thread stopped in the middle of a system
/// call would leave the references its kernel frames hold (a vCPU, and through it the VM's
/// memory) behind for good.
pub fn kill_threads_of(pid: u64) {
    let mut s = SCHED.lock();
    let mut woken = Vec::new();
    for (&tid, t) in s.threads.iter_mut() {
        if t.process.pid == pid {
            if let State::Blocked { .. } = t.state {
                t.state = State::Ready;
                woken.push(tid);
            }
        }
    }
    if !woken.is_empty() {
        RESCHED.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    s.ready.extend(woken);
}

/// Whether the current thread's process is being killed (lock-free; see `current_process`).
pub fn current_dying() -> bool {
    let ptr = CURRENT_PROCESS.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: as in current_process: the current thread keeps its process alive; only an
    // atomic field is read.
    !ptr.is_null() && unsafe { (*ptr).dying.load(core::sync::atomic::Ordering::Relaxed) }
}

/// End the current thread if its process is being killed. Call it only where the current
/// kernel frames hold nothing that must be dropped (the way back to ring 3).
pub fn end_if_dying() {
    if current_dying() {
        exit_current();
    }
}

/// Block the current thread until woken or until `deadline_ns`.
pub fn block_current(deadline_ns: Option<u64>) {
    {
        let mut s = SCHED.lock();
        let Some(tid) = s.current else { return };
        s.threads.get_mut(&tid).expect("current exists").state = State::Blocked { deadline: deadline_ns };
    }
    reschedule();
}

/// The current thread ends; switch away for good.
pub fn exit_current() -> ! {
    {
        let mut s = SCHED.lock();
        if let Some(tid) = s.current {
            s.threads.get_mut(&tid).expect("current exists").state = State::Dead;
        }
    }
    reschedule();
    unreachable!("a dead thread was scheduled again");
}

/// Timer tick on the boot CPU: wake threads whose deadline passed; preempt a ring-3 thread.
pub fn on_tick(from_user: bool) {
    let now = crate::time::now_ns();
    {
        let mut s = SCHED.lock();
        let expired: Vec<u64> = s
            .threads
            .iter()
            .filter(|(_, t)| matches!(t.state, State::Blocked { deadline: Some(d) } if d <= now))
            .map(|(&tid, _)| tid)
            .collect();
        for tid in expired {
            s.threads.get_mut(&tid).expect("listed").state = State::Ready;
            s.ready.push_back(tid);
        }
        // A time slice ended: a thread in the kernel (a running vCPU) yields if others wait.
        if !s.ready.is_empty() {
            RESCHED.store(true, core::sync::atomic::Ordering::Relaxed);
        }
    }
    if from_user {
        reschedule();
        // Back on this thread, about to return to ring 3.
        end_if_dying();
    }
}

/// Switch to the next ready thread (or the idle context). The current thread, if still running,
/// goes to the back of the queue.
pub fn reschedule() {
    let mut garbage = Vec::new();
    let switch = {
        let mut guard = SCHED.lock();
        let s = &mut *guard;
        // Threads that died earlier are no longer on any CPU: collect them.
        if !s.zombies.is_empty() {
            for tid in core::mem::take(&mut s.zombies) {
                if let Some(t) = s.threads.remove(&tid) {
                    garbage.push(t);
                }
            }
        }
        // One map lookup for the thread leaving and one for the thread coming: this runs on
        // every switch (four per guest disk request), and each lookup is a B-tree walk.
        let prev = s.current;
        let mut save: *mut u64 = &mut s.idle_rsp;
        if let Some(p) = prev {
            let t = s.threads.get_mut(&p).expect("current exists");
            match t.state {
                State::Running => {
                    t.state = State::Ready;
                    s.ready.push_back(p);
                }
                State::Dead => s.zombies.push(p),
                _ => {}
            }
            // The thread is boxed: its saved RSP stays where it is while it exists.
            save = &mut t.saved_rsp;
        }
        let mut next = None;
        while let Some(tid) = s.ready.pop_front() {
            let Some(t) = s.threads.get_mut(&tid) else { continue };
            if t.state != State::Ready {
                continue;
            }
            t.state = State::Running;
            // Only a driver's process has ports to load: no clone, no lock for the rest.
            let ports = t.process.has_io_ports.load(core::sync::atomic::Ordering::Relaxed);
            let process = Arc::as_ptr(&t.process).cast_mut();
            next = Some((tid, t.saved_rsp, t.process.root, t.stack_top(), ports.then(|| t.process.clone()), process));
            break;
        }
        s.current = next.as_ref().map(|n| n.0);
        let process = next.as_ref().map_or(core::ptr::null_mut(), |n| n.5);
        CURRENT_PROCESS.store(process, core::sync::atomic::Ordering::Relaxed);
        if prev == s.current {
            None
        } else {
            let (rsp, root, stack_top, process) = match next {
                Some((_, rsp, root, stack_top, ports, _)) => (rsp, root, stack_top, ports),
                None => (s.idle_rsp, mm::kernel_root(), 0, None),
            };
            Some((save, rsp, root, stack_top, process))
        }
    };
    if !garbage.is_empty() {
        release_garbage(garbage);
    }
    if let Some((save, rsp, root, stack_top, process)) = switch {
        if stack_top != 0 {
            percpu::set_kernel_stack(stack_top);
        }
        // A driver's ports are open only while it runs (`process` is set only for a process
        // with ports). Interrupts are off, so the lock is free (hw::enable_ports takes it with
        // interrupts off too).
        match &process {
            Some(p) => percpu::load_io_ports(Some(&p.io_ports.lock())),
            None => percpu::load_io_ports(None),
        }
        drop(process);
        if instructions::read_cr3() & !0xfff != root {
            // SAFETY: every address space maps the kernel half identically, so the kernel code
            // and stacks in use stay mapped across the switch.
            unsafe { instructions::write_cr3(root) };
        }
        // SAFETY: `save` points into a thread (boxed, not freed while it is current or a zombie
        // not yet collected) or the idle slot; `rsp` is a stack saved by switch_context or
        // prepared by create_thread. Interrupts are off.
        unsafe { switch_context(save, rsp) };
    }
}

/// Free dead threads' stacks, and processes none of whose threads can run any more.
#[allow(clippy::vec_box)] // threads live in boxes so their saved RSP never moves; these are those boxes
fn release_garbage(garbage: Vec<alloc::boxed::Box<Thread>>) {
    for t in garbage {
        mm::free_contiguous(t.kernel_stack, KERNEL_STACK_PAGES);
        let process = t.process.clone();
        drop(t);
        if !has_threads(process.pid) {
            // The last thread left by ThreadExit: the process ends with status 0.
            process::terminate(&process, keel_abi::ExitStatus::Exited(0));
            process::release(&process);
        }
    }
}

fn has_threads(pid: u64) -> bool {
    SCHED.lock().threads.values().any(|t| t.process.pid == pid)
}

/// The boot CPU's idle loop, after the first process is started.
pub fn run_idle() -> ! {
    loop {
        crate::klog::flush_signal();
        reschedule();
        crate::objects::poll_console_input();
        crate::info::idle_halt();
    }
}
