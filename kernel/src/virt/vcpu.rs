//! The vCPU object: the state page shared with the monitor (only what the monitor marked dirty
//! is read back in), the vendor half (`Backing`), pokes and deadlines, and `run`, which enters
//! the backend's run loop (exit.rs). It does not handle exits itself.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use keel_abi::vcpu::{ExitKind, VcpuState};
use keel_abi::Error;
use keel_mm::PAGE_SIZE;
use keel_vcpupage::VcpuPage;

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
    fn store_registers(&mut self, page: VcpuPage) {
        match self {
            Backing::Svm(v) => v.store_registers(page),
            Backing::Vmx(v) => v.store_registers(page),
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
    /// Where the state page is in the direct map (`state`'s one frame): the exit path reaches
    /// the page a dozen times per exit, and finding the frame each time cost about ten
    /// instructions.
    page_addr: u64,
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
        let page_addr = mm::phys_to_virt(state.frame(0));
        // SAFETY: the page was just allocated (zeroed) and is mapped by the direct map.
        unsafe { core::ptr::write(page_addr as *mut VcpuState, VcpuState::default()) };
        let inner = match backend() {
            Some(Backend::Svm { .. }) => Backing::Svm(svm::SvmVcpu::new(&vm)?),
            Some(Backend::Vmx) => Backing::Vmx(vmx::VmxVcpu::new(&vm)?),
            None => return Err(Error::NotSupported),
        };
        let inner = Inner { backing: inner, state: alloc::boxed::Box::new(VcpuState::default()) };
        Ok(Arc::new(Vcpu { vm, state, page_addr, poke: AtomicBool::new(false), inner: Mutex::new(inner) }))
    }

    pub fn poke(&self) {
        self.poke.store(true, Ordering::SeqCst);
    }

    /// Whether the monitor's timer deadline (state page `deadline_ns`) has passed.
    pub fn deadline_passed(&self) -> bool {
        let deadline = self.page().deadline_ns();
        deadline != 0 && crate::time::now_ns() >= deadline
    }

    pub fn take_poke(&self) -> bool {
        self.poke.swap(false, Ordering::SeqCst)
    }

    /// The shared state page, reached field by field (volatile: the monitor writes it too).
    fn page(&self) -> VcpuPage {
        let page = self.page_addr as *mut VcpuState;
        // SAFETY: the direct map is in the upper half: not null.
        let page = unsafe { core::ptr::NonNull::new_unchecked(page) };
        // SAFETY: the page is a VcpuState-sized frame owned by this vCPU (kept by `state` for as
        // long as `self` lives), in the direct map; the kernel forms no reference into it, and the
        // monitor, which maps it too, writes it concurrently, as VcpuPage allows for.
        unsafe { VcpuPage::new(page) }
    }

    /// Copy what the monitor marked dirty from the shared page into `st` (and `dirty` itself):
    /// only those fields, not the whole page, since `apply` loads only those.
    fn load_dirty(&self, st: &mut VcpuState) {
        use keel_abi::vcpu::dirty;
        // The monitor may write concurrently: each field is read once (volatile), and a racing
        // write yields some value (plain integers), which the backend validates before use.
        let p = self.page();
        let d = p.dirty();
        st.dirty = d;
        if d & dirty::GPRS != 0 {
            st.gprs = p.gprs();
        }
        if d & dirty::RIP != 0 {
            st.rip = p.rip();
        }
        if d & dirty::RFLAGS != 0 {
            st.rflags = p.rflags();
        }
        if d & dirty::CRS != 0 {
            st.cr0 = p.cr0();
            st.cr2 = p.cr2();
            st.cr3 = p.cr3();
            st.cr4 = p.cr4();
        }
        if d & dirty::EFER != 0 {
            st.efer = p.efer();
        }
        if d & dirty::SEGS != 0 {
            st.segs = p.segs();
        }
        if d & dirty::TABLES != 0 {
            st.gdtr = p.gdtr();
            st.idtr = p.idtr();
        }
    }

    /// Write the guest's registers (from `export`), with `system` its system registers too, and
    /// the exit into the shared page, clear `dirty` and count the exit. `inject` and
    /// `kernel_exits` are kept up to date in the page itself during the run, so they are not
    /// written here.
    fn store_exit(&self, st: &VcpuState, system: bool) {
        // The kernel is the only writer during VcpuRun by contract (a monitor that writes
        // concurrently only confuses itself).
        let p = self.page();
        // Without the system registers, the backend wrote the registers already.
        if system {
            p.set_gprs(st.gprs);
            p.set_rip(st.rip);
            p.set_rflags(st.rflags);
            p.set_interruptible(st.interruptible);
            p.set_cr0(st.cr0);
            p.set_cr2(st.cr2);
            p.set_cr3(st.cr3);
            p.set_cr4(st.cr4);
            p.set_efer(st.efer);
            p.set_segs(st.segs);
            p.set_gdtr(st.gdtr);
            p.set_idtr(st.idtr);
        }
        p.set_system_current(u32::from(system));
        p.set_exit(st.exit);
        p.set_dirty(0);
        p.set_monitor_exits(p.monitor_exits().wrapping_add(1));
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
            backing.store_registers(self.page());
        } else if kind != ExitKind::IoString {
            backing.export(state, true);
        }
        state.exit.kind = kind as u32;
        self.store_exit(state, system);
        Ok(kind)
    }

    /// The guest wants an interrupt injected and the monitor asked: is one pending?
    pub fn inject_request(&self) -> keel_abi::vcpu::Inject {
        self.page().inject()
    }

    pub fn clear_inject(&self) {
        self.page().set_inject_pending(0)
    }

    /// The first entry of this `VcpuRun`: the TSC and the idle counter, for the monitor's cost
    /// figures (`VcpuState::entry_tsc`).
    pub fn mark_entry(&self) {
        let p = self.page();
        p.set_entry_idle_tsc(crate::info::idle_tsc());
        p.set_entry_tsc(crate::time::rdtsc());
    }

    /// The exit this `VcpuRun` returns happened at `tsc` (`VcpuState::exit_tsc`).
    pub fn mark_exit(&self, tsc: u64) {
        let p = self.page();
        p.set_exit_tsc(tsc);
        p.set_exit_idle_tsc(crate::info::idle_tsc());
    }

    pub fn count_kernel_exit(&self) {
        // A counter the monitor only reads.
        let p = self.page();
        p.set_kernel_exits(p.kernel_exits().wrapping_add(1));
    }
}
