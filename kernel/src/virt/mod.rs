//! Virtual machines and vCPUs: the kernel objects behind the VM and vCPU capabilities, the
//! vendor-neutral run loop around the SVM and VMX backends, and the exits the kernel answers
//! itself (CPUID, MSRs, XSETBV, interrupt windows, virtualization instructions).
//!
//! Guest RAM is shared memory that the monitor maps into the VM (`VmMap`); the nested page
//! tables map exactly those frames, so a guest can reach nothing else (an access elsewhere is an
//! MMIO exit to the monitor). Scope: vCPUs run on the boot CPU (with the other user threads).

mod exit;
pub mod fpu;
pub mod svm;
pub mod vmx;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::{Mutex, Once};

use keel_abi::vcpu::{gprot, reg, ExitKind, VcpuState};
use keel_abi::Error;
use keel_hv::guest_cpu::{features::BackendCaps, GuestCpu, GuestView};
use keel_hv::msr::{self, GuestMsr, MsrKind};
use keel_hv::mtrr::Mtrrs;
use keel_mm::paging::{Access, Ept, PageSize, PageTable, X86};
use keel_mm::PAGE_SIZE;

use crate::mm::{self, KernelTableMemory};
use crate::objects::SharedMemory;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Svm { asids: u32 },
    Vmx,
}

static BACKEND: Once<Option<Backend>> = Once::new();

/// Enable hardware virtualization on the boot CPU if it has a usable kind.
pub fn init(verdict: keel_virtcaps::Verdict) {
    fpu::init_this_cpu();
    let backend = match verdict {
        keel_virtcaps::Verdict::SvmNpt { asids } => match svm::enable_this_cpu() {
            Ok(()) => Some(Backend::Svm { asids }),
            Err(e) => {
                log::warn!("virt: cannot enable SVM: {e}");
                None
            }
        },
        keel_virtcaps::Verdict::VmxEpt { .. } => match vmx::enable_this_cpu() {
            Ok(()) => Some(Backend::Vmx),
            Err(e) => {
                log::warn!("virt: cannot enable VMX: {e}");
                None
            }
        },
        keel_virtcaps::Verdict::Missing(_) => None,
    };
    BACKEND.call_once(|| backend);
    let caps = match backend {
        Some(Backend::Svm { .. }) => BackendCaps::SVM,
        Some(Backend::Vmx) => vmx::guest_caps(),
        None => return,
    };
    let model = GUEST_CPU.call_once(|| GuestCpu::derive(host_cpuid, caps));
    let shown = model.has(keel_hv::guest_cpu::features::RDTSCP) || model.has(keel_hv::guest_cpu::features::RDPID);
    TSC_AUX_SHOWN.store(shown, Ordering::Relaxed);
}

/// The CPU every guest sees, derived once from the boot CPU's CPUID (keel-hv `guest_cpu`).
static GUEST_CPU: Once<GuestCpu> = Once::new();

/// The guest CPU model. Only called on a vCPU's exits, which exist only once `init` chose a
/// backend (and derived the model).
pub fn guest_cpu() -> &'static GuestCpu {
    GUEST_CPU.get().expect("virt::init derives the guest CPU before any vCPU exists")
}

fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = crate::arch::x86_64::instructions::cpuid(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// With `cpuid-dump` on the command line: the host's raw CPUID (the format of the test data in
/// kernel/hv/testdata/cpuid, captured by the `capture_host_cpuid` system test), then the guest
/// model's leaves for a vCPU with every offered XSAVE component enabled.
pub fn dump_cpuid() {
    use keel_hv::guest_cpu::raw::{for_each_host_leaf, Line};
    for_each_host_leaf(host_cpuid, |l, s, r| crate::println!("cpuid-raw: {}", Line(l, s, r)));
    crate::println!("cpuid-raw: end");
    if let Some(model) = GUEST_CPU.get() {
        let view = GuestView { apic_id: 0, osxsave: true, xcr0: model.xsave().supported };
        model.for_each_leaf(view, |l, s, r| crate::println!("cpuid-guest: {}", Line(l, s, r)));
    }
}

pub fn backend() -> Option<Backend> {
    BACKEND.get().copied().flatten()
}

static NEXT_VM_ID: AtomicU32 = AtomicU32::new(1);

/// The most guest-physical space a VM may map (bounded by RAM anyway).
const MAX_GPA: u64 = 1 << 40;

/// The nested page tables in the vendor's format (NPT: x86 entries with the user bit; EPT).
pub enum NestedTable {
    Npt(PageTable<X86>),
    Ept(PageTable<Ept>),
}

impl NestedTable {
    pub fn root(&self) -> u64 {
        match self {
            NestedTable::Npt(t) => t.root,
            NestedTable::Ept(t) => t.root,
        }
    }
    fn map(
        &self,
        mem: &mut KernelTableMemory,
        gpa: u64,
        hpa: u64,
        size: PageSize,
        access: Access,
    ) -> Result<(), keel_mm::paging::MapError> {
        match self {
            NestedTable::Npt(t) => t.map(mem, gpa, hpa, size, access),
            NestedTable::Ept(t) => t.map(mem, gpa, hpa, size, access),
        }
    }
    /// Remove the leaf at `gpa`; returns its size (0 if nothing was mapped).
    fn unmap(&self, mem: &mut KernelTableMemory, gpa: u64) -> u64 {
        match self {
            NestedTable::Npt(t) => t.unmap_any(mem, gpa),
            NestedTable::Ept(t) => t.unmap_any(mem, gpa),
        }
        .map_or(0, |(_, size)| size)
    }
    fn translate(&self, mem: &KernelTableMemory, gpa: u64) -> Option<u64> {
        match self {
            NestedTable::Npt(t) => t.translate(mem, gpa),
            NestedTable::Ept(t) => t.translate(mem, gpa),
        }
    }
    fn free_all(&self, mem: &mut KernelTableMemory) {
        match self {
            NestedTable::Npt(t) => t.free_lower_levels(mem, 0, 512, &mut |_, _| {}),
            NestedTable::Ept(t) => t.free_lower_levels(mem, 0, 512, &mut |_, _| {}),
        }
    }
}

pub struct Vm {
    pub id: u32,
    table: Mutex<NestedTable>,
    /// The shared memory behind each mapping (kept alive while mapped): (gpa, object).
    mappings: Mutex<Vec<(u64, Arc<SharedMemory>)>>,
    pub asid: u32,
    /// Bumped when mappings change, so vCPUs flush their TLB.
    pub generation: AtomicU32,
}

impl Vm {
    pub fn new() -> Result<Arc<Vm>, Error> {
        let Some(backend) = backend() else {
            return Err(Error::NotSupported);
        };
        let id = NEXT_VM_ID.fetch_add(1, Ordering::Relaxed);
        let asid = match backend {
            Backend::Svm { asids } => 1 + (id - 1) % asids.saturating_sub(1).max(1),
            Backend::Vmx => id,
        };
        let mut mem = KernelTableMemory;
        let table = match backend {
            Backend::Svm { .. } => {
                NestedTable::Npt(PageTable::new(&mut mem, X86 { nx: mm::nx_enabled() }).ok_or(Error::NoMemory)?)
            }
            Backend::Vmx => NestedTable::Ept(PageTable::new(&mut mem, Ept).ok_or(Error::NoMemory)?),
        };
        Ok(Arc::new(Vm {
            id,
            table: Mutex::new(table),
            mappings: Mutex::new(Vec::new()),
            asid,
            generation: AtomicU32::new(0),
        }))
    }

    pub fn nested_root(&self) -> u64 {
        self.table.lock().root()
    }

    /// Map all of `shm` at guest-physical `gpa`, with 2 MiB pages where the memory allows. Returns
    /// the bytes mapped.
    pub fn map(&self, shm: Arc<SharedMemory>, gpa: u64, prot: u64) -> Result<u64, Error> {
        let len = shm.pages() as u64 * PAGE_SIZE;
        if !gpa.is_multiple_of(PAGE_SIZE) || prot & !gprot::ALL != 0 || prot & gprot::READ == 0 {
            return Err(Error::InvalidArgument);
        }
        let end = gpa.checked_add(len).ok_or(Error::InvalidArgument)?;
        if end > MAX_GPA {
            return Err(Error::InvalidArgument);
        }
        if self.mappings.lock().iter().any(|(g, m)| gpa < g + m.pages() as u64 * PAGE_SIZE && *g < end) {
            return Err(Error::Exists);
        }
        let access = Access {
            writable: prot & gprot::WRITE != 0,
            executable: prot & gprot::EXEC != 0,
            user: true,
            uncached: false,
        };
        let table = self.table.lock();
        let mut mem = KernelTableMemory;
        let mut i = 0;
        while i < shm.pages() {
            let at = gpa + i as u64 * PAGE_SIZE;
            let (size, step) = if at.is_multiple_of(2 << 20) && shm.is_large_at(i) {
                (PageSize::Size2M, 512)
            } else {
                (PageSize::Size4K, 1)
            };
            if table.map(&mut mem, at, shm.frame(i), size, access).is_err() {
                let mut done = gpa;
                while done < at {
                    done += table.unmap(&mut mem, done).max(PAGE_SIZE);
                }
                return Err(Error::NoMemory);
            }
            i += step;
        }
        drop(table);
        self.mappings.lock().push((gpa, shm));
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(len)
    }

    /// Remove the mapping that starts at `gpa` (the vCPUs flush their TLBs before they run again).
    pub fn unmap(&self, gpa: u64) -> Result<u64, Error> {
        let shm = {
            let mut mappings = self.mappings.lock();
            let i = mappings.iter().position(|(g, _)| *g == gpa).ok_or(Error::NotFound)?;
            mappings.swap_remove(i).1
        };
        let len = shm.pages() as u64 * PAGE_SIZE;
        let table = self.table.lock();
        let mut mem = KernelTableMemory;
        let mut at = gpa;
        while at < gpa + len {
            at += table.unmap(&mut mem, at).max(PAGE_SIZE);
        }
        drop(table);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(len)
    }

    /// The host-physical address backing guest-physical `gpa`, if it is RAM. The table walk uses
    /// bits 47:12 only: an address at or above MAX_GPA (a guest-chosen one, e.g. the pvclock
    /// MSRs') must not wrap onto RAM (tests: the `hostile` guest).
    fn host_phys(&self, gpa: u64) -> Option<u64> {
        if gpa >= MAX_GPA {
            return None;
        }
        self.table.lock().translate(&KernelTableMemory, gpa)
    }

    /// Copy guest RAM at `gpa` into `out`; false if any byte is not RAM.
    pub fn read_guest(&self, gpa: u64, out: &mut [u8]) -> bool {
        let mut done = 0;
        while done < out.len() {
            let Some(addr) = gpa.checked_add(done as u64) else { return false };
            let Some(pa) = self.host_phys(addr) else { return false };
            let chunk = ((PAGE_SIZE - addr % PAGE_SIZE) as usize).min(out.len() - done);
            // SAFETY: `pa..pa+chunk` lies in one page of guest RAM (shared memory owned by this
            // VM's mappings), reached through the direct map; `out` is a kernel buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(mm::phys_to_virt(pa) as *const u8, out[done..].as_mut_ptr(), chunk)
            };
            done += chunk;
        }
        true
    }

    /// Copy `data` into guest RAM at `gpa`; false if any byte is not RAM.
    pub fn write_guest(&self, gpa: u64, data: &[u8]) -> bool {
        let mut done = 0;
        while done < data.len() {
            let Some(addr) = gpa.checked_add(done as u64) else { return false };
            let Some(pa) = self.host_phys(addr) else { return false };
            let chunk = ((PAGE_SIZE - addr % PAGE_SIZE) as usize).min(data.len() - done);
            // SAFETY: as in read_guest: one page of this VM's RAM, through the direct map.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), mm::phys_to_virt(pa) as *mut u8, chunk) };
            done += chunk;
        }
        true
    }

    pub fn read_guest_u64(&self, gpa: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_guest(gpa, &mut b).then(|| u64::from_le_bytes(b))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Mapped frames belong to the shared memory objects: only the tables are freed here.
        let table = self.table.lock();
        let mut mem = KernelTableMemory;
        table.free_all(&mut mem);
        mm::free_frame(table.root());
    }
}

/// Per-vCPU MSR values the guest owns outside the VMCB/VMCS.
pub struct MsrShadow {
    values: [u64; msr::SHADOW_SLOTS],
    mtrrs: Mtrrs,
    tsc_aux: u64,
    kvm_system_time: u64,
}

impl MsrShadow {
    fn new() -> Self {
        let mut values = [0; msr::SHADOW_SLOTS];
        for (i, &(_, v)) in msr::SHADOWED.iter().enumerate() {
            values[i] = v;
        }
        Self { values, mtrrs: Mtrrs::firmware_state(), tsc_aux: 0, kvm_system_time: 0 }
    }
}

/// Fill the guest's pvclock structure at `gpa`: version odd while writing, then even.
/// See: Linux arch/x86/include/asm/pvclock-abi.h (struct pvclock_vcpu_time_info).
fn write_pvclock(vm: &Vm, gpa: u64) {
    let (mul, shift) = keel_hv::pvclock::pvclock_scale(crate::time::tsc_hz());
    let tsc = crate::time::rdtsc();
    let mut b = [0u8; 32];
    b[0..4].copy_from_slice(&1u32.to_le_bytes());
    let _ = vm.write_guest(gpa, &b[0..4]);
    b[8..16].copy_from_slice(&tsc.to_le_bytes());
    b[16..24].copy_from_slice(&crate::time::tsc_to_ns(tsc).to_le_bytes());
    b[24..28].copy_from_slice(&mul.to_le_bytes());
    b[28] = shift as u8;
    b[29] = 1; // PVCLOCK_TSC_STABLE_BIT
    b[0..4].copy_from_slice(&2u32.to_le_bytes());
    let _ = vm.write_guest(gpa, &b);
}

/// The wall clock at system time 0 (struct pvclock_wall_clock: version, sec, nsec).
fn write_wall_clock(vm: &Vm, gpa: u64) {
    let epoch = crate::time::epoch_at_zero_ns();
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&2u32.to_le_bytes());
    b[4..8].copy_from_slice(&((epoch / 1_000_000_000) as u32).to_le_bytes());
    b[8..12].copy_from_slice(&((epoch % 1_000_000_000) as u32).to_le_bytes());
    let _ = vm.write_guest(gpa, &b);
}

/// The TSC_AUX value the CPU holds (u64::MAX: unknown, as firmware left it). Keel never reads
/// TSC_AUX itself (no RDTSCP or RDPID in the kernel or its programs), so the value of the vCPU
/// that ran last can stay loaded; RDTSCP and RDPID are not intercepted and read it natively.
/// Only the boot CPU runs guests for now, so this is one global (per CPU with SMP).
static LOADED_TSC_AUX: AtomicU64 = AtomicU64::new(u64::MAX);
/// Whether guests are shown RDTSCP or RDPID (set once by `init`).
static TSC_AUX_SHOWN: AtomicBool = AtomicBool::new(false);

impl MsrShadow {
    /// Load this vCPU's TSC_AUX into the CPU before it runs, if another value is there.
    /// See: SDM Vol 2B RDTSCP, RDPID.
    pub fn activate_tsc_aux(&self) {
        if !TSC_AUX_SHOWN.load(Ordering::Relaxed) {
            return;
        }
        if LOADED_TSC_AUX.swap(self.tsc_aux, Ordering::Relaxed) != self.tsc_aux {
            // SAFETY: the host has TSC_AUX (the guest CPU shows RDTSCP or RDPID only when the
            // host does) and it takes any 32-bit value (check_tsc_aux kept the reserved bits
            // clear); Keel itself does not use it.
            unsafe { crate::arch::x86_64::instructions::wrmsr(msr::TSC_AUX, self.tsc_aux) };
        }
    }
}

/// Vendor state behind `GuestMsr` (VMCB or VMCS fields).
pub trait GuestMsrs {
    fn get(&self, which: GuestMsr) -> u64;
    fn set(&mut self, which: GuestMsr, value: u64);
}

/// RDMSR for the guest: the value, or None for #GP.
pub fn msr_read(index: u32, state: &impl GuestMsrs, shadow: &MsrShadow) -> Option<u64> {
    match msr::classify(index) {
        MsrKind::GuestState(which) => Some(state.get(which)),
        MsrKind::Tsc => Some(crate::time::rdtsc()),
        MsrKind::Fixed(v) => Some(v),
        MsrKind::Shadow(i) => shadow.values.get(i as usize).copied(),
        MsrKind::Mtrr => shadow.mtrrs.read(index),
        MsrKind::TscAux => Some(shadow.tsc_aux),
        MsrKind::Refused => {
            // Debug level: a hostile guest probes thousands of MSRs.
            log::debug!("msr: RDMSR {index:#x} refused (#GP)");
            None
        }
        MsrKind::KvmSystemTime => Some(shadow.kvm_system_time),
        MsrKind::KvmWallClock => Some(0),
    }
}

/// WRMSR for the guest: Ok, or Err for #GP.
/// `vm` is the VM of the vCPU that wrote: the paravirtual clock MSRs write its memory. (It was
/// once a global "current VM", set around the run loop; a vCPU thread that was rescheduled in
/// the middle of its loop then saw another VM's pointer, and a guest's pvclock structure could be
/// written into another guest's RAM.)
pub fn msr_write(
    vm: &Vm,
    index: u32,
    value: u64,
    state: &mut impl GuestMsrs,
    shadow: &mut MsrShadow,
) -> Result<(), ()> {
    match msr::classify(index) {
        MsrKind::GuestState(which) => {
            let v = msr::check_write(which, value)?;
            state.set(which, v);
            Ok(())
        }
        MsrKind::Tsc => Ok(()),
        MsrKind::Fixed(v) if v == value => Ok(()),
        MsrKind::Fixed(_) => Err(()),
        MsrKind::Shadow(i) => {
            *shadow.values.get_mut(i as usize).ok_or(())? = value;
            Ok(())
        }
        MsrKind::Mtrr => shadow.mtrrs.write(index, value, guest_cpu().phys_bits()),
        MsrKind::TscAux => {
            shadow.tsc_aux = msr::check_tsc_aux(value)?;
            Ok(())
        }
        MsrKind::Refused => {
            log::debug!("msr: WRMSR {index:#x} <- {value:#x} refused (#GP)");
            Err(())
        }
        MsrKind::KvmSystemTime => {
            shadow.kvm_system_time = value;
            if value & 1 != 0 {
                write_pvclock(vm, value & !1);
            }
            Ok(())
        }
        MsrKind::KvmWallClock => {
            write_wall_clock(vm, value);
            Ok(())
        }
    }
}

/// The guest's CPUID: the model's answer for a vCPU with this CR4 and XCR0 (one vCPU per VM for
/// now: APIC ID 0).
pub fn cpuid(leaf: u32, subleaf: u32, cr4: u64, xcr0: u64) -> [u32; 4] {
    let view = GuestView { apic_id: 0, osxsave: cr4 & (1 << 18) != 0, xcr0 };
    guest_cpu().query(leaf, subleaf, view)
}

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

/// What fetching the instruction at CS:RIP needs of the guest state (a backend reads these few
/// fields at an MMIO exit instead of exporting every system register).
pub struct CodeView {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub cs_base: u64,
    /// CS attributes in the state page's format (bit 9 L, bit 10 D/B).
    pub cs_attrib: u16,
    pub rip: u64,
}

impl CodeView {
    pub fn of_state(st: &VcpuState) -> CodeView {
        use keel_abi::vcpu::seg;
        let cs = st.segs[seg::CS];
        CodeView {
            cr0: st.cr0,
            cr3: st.cr3,
            cr4: st.cr4,
            efer: st.efer,
            cs_base: cs.base,
            cs_attrib: cs.attrib,
            rip: st.rip,
        }
    }

    fn long_code(&self) -> bool {
        self.cs_attrib & (1 << 9) != 0 && self.efer & (1 << 10) != 0
    }

    /// 16, 32 or 64: the code size (EFER.LMA and CS.L, else CR0.PE and CS.D). See: SDM Vol 3A
    /// 3.4.5 (the L and D/B flags).
    pub fn code_bits(&self) -> u8 {
        if self.long_code() {
            64
        } else if self.cr0 & 1 != 0 && self.cs_attrib & (1 << 10) != 0 {
            32
        } else {
            16
        }
    }
}

/// Put the instruction at the view's CS:RIP, and the code size, into the exit record (MMIO and
/// string I/O exits: the monitor decodes them).
pub fn record_instruction(vm: &Vm, view: &CodeView, st: &mut VcpuState) {
    let mut insn = [0u8; 15];
    st.exit.insn_len = fetch_instruction(vm, view, &mut insn);
    st.exit.insn = insn;
    st.exit.code_bits = view.code_bits();
}

/// Fetch up to 15 instruction bytes at the guest's CS:RIP through its page tables.
pub fn fetch_instruction(vm: &Vm, view: &CodeView, out: &mut [u8; 15]) -> u8 {
    let mode = keel_hv::walk::paging_mode(view.cr0, view.cr4, view.efer);
    let base = if view.long_code() { 0 } else { view.cs_base };
    let mut n = 0;
    while n < 15 {
        let va = base.wrapping_add(view.rip).wrapping_add(n as u64);
        let Some(gpa) = keel_hv::walk::translate(mode, view.cr3, va, |a| vm.read_guest_u64(a)) else { break };
        // Up to the end of this page.
        let chunk = ((PAGE_SIZE - gpa % PAGE_SIZE) as usize).min(15 - n);
        if !vm.read_guest(gpa, &mut out[n..n + chunk]) {
            break;
        }
        n += chunk;
    }
    n as u8
}

/// Used by backends: the register index helpers.
pub const RAX: usize = reg::RAX;
pub const RBX: usize = reg::RBX;
pub const RCX: usize = reg::RCX;
pub const RDX: usize = reg::RDX;
pub const RSP: usize = reg::RSP;
