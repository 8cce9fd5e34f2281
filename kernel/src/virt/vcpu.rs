//! The vCPU object: the state page shared with the monitor (only what the monitor marked dirty
//! is read back in), the vendor half (`Backing`), pokes and deadlines, and `run`, which enters
//! the backend's run loop (exit.rs). It does not handle exits itself.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use keel_abi::vcpu::{ExitKind, VcpuState};
use keel_abi::Error;
use keel_mm::PAGE_SIZE;

use super::{backend, svm, vmx, Backend, Vm};
use crate::mm;
use crate::objects::SharedMemory;

/// The vendor half of a vCPU. Both backends offer the same three operations.
pub enum Backing {
    Svm(svm::SvmVcpu),
    Vmx(vmx::VmxVcpu),
}

impl Backing {
    fn apply(&mut self, st: &VcpuState) {
        match self {
            Backing::Svm(v) => v.apply(st),
            Backing::Vmx(v) => v.apply(st),
        }
    }
    /// # Safety
    /// As the backends' `store_registers`.
    unsafe fn store_registers(&mut self, page: *mut VcpuState) {
        // SAFETY: passed on.
        unsafe {
            match self {
                Backing::Svm(v) => v.store_registers(page),
                Backing::Vmx(v) => v.store_registers(page),
            }
        }
    }

    fn export(&mut self, st: &mut VcpuState, system: bool) {
        match self {
            Backing::Svm(v) => v.export(st, system),
            Backing::Vmx(v) => v.export(st, system),
        }
    }
    fn run_until_monitor(&mut self, vcpu: &Vcpu, st: &mut VcpuState) -> ExitKind {
        match self {
            Backing::Svm(v) => v.run_until_monitor(vcpu, st),
            Backing::Vmx(v) => v.run_until_monitor(vcpu, st),
        }
    }
}

pub struct Vcpu {
    pub vm: Arc<Vm>,
    /// The state page shared with the monitor.
    pub state: Arc<SharedMemory>,
    poke: AtomicBool,
    inner: Mutex<Inner>,
}

/// What `Vcpu::run` holds while the vCPU runs: the backend, and the kernel's copy of the
/// registers the shared page shows (kept between runs, so only dirty fields are read in).
struct Inner {
    backing: Backing,
    state: alloc::boxed::Box<VcpuState>,
}

impl Vcpu {
    pub fn new(vm: Arc<Vm>) -> Result<Arc<Vcpu>, Error> {
        let state = Arc::new(SharedMemory::new(PAGE_SIZE).ok_or(Error::NoMemory)?);
        // SAFETY: the page was just allocated (zeroed) and is mapped by the direct map.
        unsafe { core::ptr::write(mm::phys_to_virt(state.frame(0)) as *mut VcpuState, VcpuState::default()) };
        let inner = match backend() {
            Some(Backend::Svm { .. }) => Backing::Svm(svm::SvmVcpu::new(&vm)?),
            Some(Backend::Vmx) => Backing::Vmx(vmx::VmxVcpu::new(&vm)?),
            None => return Err(Error::NotSupported),
        };
        let inner = Inner { backing: inner, state: alloc::boxed::Box::new(VcpuState::default()) };
        Ok(Arc::new(Vcpu { vm, state, poke: AtomicBool::new(false), inner: Mutex::new(inner) }))
    }

    pub fn poke(&self) {
        self.poke.store(true, Ordering::SeqCst);
    }

    /// Whether the monitor's timer deadline (state page `deadline_ns`) has passed.
    pub fn deadline_passed(&self) -> bool {
        // SAFETY: a field of our own state page (see load_dirty).
        let deadline = unsafe { core::ptr::read_volatile(&raw const (*self.state_ptr()).deadline_ns) };
        deadline != 0 && crate::time::now_ns() >= deadline
    }

    pub fn take_poke(&self) -> bool {
        self.poke.swap(false, Ordering::SeqCst)
    }

    fn state_ptr(&self) -> *mut VcpuState {
        mm::phys_to_virt(self.state.frame(0)) as *mut VcpuState
    }

    /// Copy what the monitor marked dirty from the shared page into `st` (and `dirty` itself):
    /// only those fields, not the whole page, since `apply` loads only those.
    fn load_dirty(&self, st: &mut VcpuState) {
        use core::ptr::read_volatile;
        use keel_abi::vcpu::dirty;
        let p = self.state_ptr();
        // SAFETY: the page is a VcpuState-sized frame owned by this vCPU, reached through raw
        // pointers to its fields; every bit pattern is a valid value (plain integers). The
        // monitor may write concurrently: each field is read once (volatile), and a racing write
        // yields some value, which the backend validates before use.
        unsafe {
            let d = read_volatile(&raw const (*p).dirty);
            st.dirty = d;
            if d & dirty::GPRS != 0 {
                st.gprs = read_volatile(&raw const (*p).gprs);
            }
            if d & dirty::RIP != 0 {
                st.rip = read_volatile(&raw const (*p).rip);
            }
            if d & dirty::RFLAGS != 0 {
                st.rflags = read_volatile(&raw const (*p).rflags);
            }
            if d & dirty::CRS != 0 {
                st.cr0 = read_volatile(&raw const (*p).cr0);
                st.cr2 = read_volatile(&raw const (*p).cr2);
                st.cr3 = read_volatile(&raw const (*p).cr3);
                st.cr4 = read_volatile(&raw const (*p).cr4);
            }
            if d & dirty::EFER != 0 {
                st.efer = read_volatile(&raw const (*p).efer);
            }
            if d & dirty::SEGS != 0 {
                st.segs = read_volatile(&raw const (*p).segs);
            }
            if d & dirty::TABLES != 0 {
                st.gdtr = read_volatile(&raw const (*p).gdtr);
                st.idtr = read_volatile(&raw const (*p).idtr);
            }
        }
    }

    /// Write the guest's registers (from `export`), with `system` its system registers too, and
    /// the exit into the shared page, clear `dirty` and count the exit. `inject` and
    /// `kernel_exits` are kept up to date in the page itself during the run, so they are not
    /// written here.
    fn store_exit(&self, st: &VcpuState, system: bool) {
        use core::ptr::{read_volatile, write_volatile};
        let p = self.state_ptr();
        // SAFETY: as in load_dirty; the kernel is the only writer during VcpuRun by contract (a
        // monitor that writes concurrently only confuses itself).
        unsafe {
            // Without the system registers, the backend wrote the registers already.
            if system {
                write_volatile(&raw mut (*p).gprs, st.gprs);
                write_volatile(&raw mut (*p).rip, st.rip);
                write_volatile(&raw mut (*p).rflags, st.rflags);
                write_volatile(&raw mut (*p).interruptible, st.interruptible);
                write_volatile(&raw mut (*p).cr0, st.cr0);
                write_volatile(&raw mut (*p).cr2, st.cr2);
                write_volatile(&raw mut (*p).cr3, st.cr3);
                write_volatile(&raw mut (*p).cr4, st.cr4);
                write_volatile(&raw mut (*p).efer, st.efer);
                write_volatile(&raw mut (*p).segs, st.segs);
                write_volatile(&raw mut (*p).gdtr, st.gdtr);
                write_volatile(&raw mut (*p).idtr, st.idtr);
            }
            write_volatile(&raw mut (*p).system_current, u32::from(system));
            write_volatile(&raw mut (*p).exit, st.exit);
            write_volatile(&raw mut (*p).dirty, 0);
            let exits = &raw mut (*p).monitor_exits;
            write_volatile(exits, read_volatile(exits).wrapping_add(1));
        }
    }

    /// Run until an exit needs the monitor. The shared page is read and written field by field
    /// (what the monitor marked dirty in, the registers and the exit out), never copied whole.
    pub fn run(&self) -> Result<ExitKind, Error> {
        let mut guard = self.inner.try_lock().ok_or(Error::Busy)?;
        let Inner { backing, state } = &mut *guard;
        self.load_dirty(state);
        backing.apply(state);
        let kind = backing.run_until_monitor(self, state);
        // The frequent exits the monitor answers from the registers alone (port I/O, HLT, a
        // poke) and MMIO (decoded with `code_bits`) leave the system registers out: copying them
        // cost about a fifth of a port I/O round trip. `system_current` tells the monitor which
        // it got. String I/O exits exported everything already (to fetch the instruction).
        let system = !matches!(kind, ExitKind::Io | ExitKind::Mmio | ExitKind::Hlt | ExitKind::Poked | ExitKind::None);
        if !system {
            // SAFETY: our own state page (see load_dirty).
            unsafe { backing.store_registers(self.state_ptr()) };
        } else if kind != ExitKind::IoString {
            backing.export(state, true);
        }
        state.exit.kind = kind as u32;
        self.store_exit(state, system);
        Ok(kind)
    }

    /// The guest wants an interrupt injected and the monitor asked: is one pending?
    pub fn inject_request(&self) -> keel_abi::vcpu::Inject {
        // SAFETY: a field of our own state page (see load_dirty).
        unsafe { core::ptr::read_volatile(&raw const (*self.state_ptr()).inject) }
    }

    pub fn clear_inject(&self) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&raw mut (*self.state_ptr()).inject.pending, 0) }
    }

    pub fn count_kernel_exit(&self) {
        // SAFETY: as above; a counter the monitor only reads.
        unsafe {
            let p = &raw mut (*self.state_ptr()).kernel_exits;
            core::ptr::write_volatile(p, core::ptr::read_volatile(p).wrapping_add(1));
        }
    }
}
