//! The AMD SVM backend: EFER.SVME and the host save area, one VMCB per vCPU with nested paging,
//! the VMRUN loop (enter.S) and the exits SVM reports. See: APM Vol 2 chapter 15.
//!
//! Intercepted: physical interrupts (INTR/NMI/SMI/INIT), CPUID, HLT, all port I/O (IOPM all
//! ones) and all MSRs (MSRPM all ones), shutdown, XSETBV, INVD, and every SVM instruction (the
//! guest gets #UD). Nested page faults come from NPT. V_INTR_MASKING keeps host interrupts
//! host-owned whatever the guest's IF.

use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;

use keel_abi::vcpu::{seg, ExitKind, VcpuState, INJECT_EXCEPTION, INJECT_INTERRUPT, INJECT_NMI};
use keel_hv::msr::GuestMsr;
use keel_hv::svm::{eventinj, misc1, misc2, vintr, Vmcb, VmcbSegment};
use keel_hv::VmExit;

use super::{fpu, Vcpu, Vm, RAX, RSP};
use crate::arch::x86_64::instructions::{rdmsr, rdmsr_safe, wrmsr, MSR_EFER};
use crate::mm;

core::arch::global_asm!(include_str!("enter.S"), options(att_syntax));

extern "C" {
    fn svm_enter(guest_vmcb: u64, host_vmcb: u64, gprs: *mut [u64; 16]);
}

const EFER_SVME: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
const MSR_VM_CR: u32 = 0xc001_0114;

/// The boot CPU's host VMCB (for VMSAVE/VMLOAD of host state) and the all-ones permission maps.
static HOST_VMCB: AtomicU64 = AtomicU64::new(0);
static PERMISSION_MAPS: Once<(u64, u64)> = Once::new();
/// The VMCB that ran last on this CPU (a different one must flush the TLB: ASIDs are shared).
static LAST_VMCB: AtomicU64 = AtomicU64::new(0);

fn alloc_filled(pages: u64, byte: u8) -> Option<u64> {
    let base = mm::alloc_contiguous(pages)?;
    // SAFETY: freshly allocated contiguous frames, mapped by the direct map.
    unsafe { core::ptr::write_bytes(mm::phys_to_virt(base) as *mut u8, byte, (pages * 4096) as usize) };
    Some(base)
}

/// Turn on SVM on this CPU. See: APM Vol 2 15.4 (enabling SVM), 15.30.4 (VM_HSAVE_PA).
pub fn enable_this_cpu() -> Result<(), &'static str> {
    if rdmsr_safe(MSR_VM_CR).unwrap_or(0) & (1 << 4) != 0 {
        return Err("SVM is disabled by the firmware (VM_CR.SVMDIS)");
    }
    let hsave = mm::alloc_zeroed_frame().ok_or("no memory for the host save area")?;
    let host_vmcb = mm::alloc_zeroed_frame().ok_or("no memory for the host VMCB")?;
    // SAFETY: SVM is available (CPUID) and not disabled (VM_CR checked); EFER.SVME only enables
    // the SVM instructions; VM_HSAVE_PA gets a page this CPU owns for the rest of its life.
    unsafe {
        wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
        wrmsr(MSR_VM_HSAVE_PA, hsave);
    }
    HOST_VMCB.store(host_vmcb, Ordering::SeqCst);
    // IOPM: 12 KiB, MSRPM: 8 KiB, all ones: every port and MSR access exits.
    let maps = (
        alloc_filled(3, 0xff).ok_or("no memory for the IOPM")?,
        alloc_filled(2, 0xff).ok_or("no memory for the MSRPM")?,
    );
    PERMISSION_MAPS.call_once(|| maps);
    Ok(())
}

pub struct SvmVcpu {
    vmcb_frame: mm::Frame,
    gprs: [u64; 16],
    fpu: alloc::sync::Arc<fpu::FpuArea>,
    xcr0: u64,
    msrs: super::MsrShadow,
    /// Mapping generation of the VM at the last entry (a change flushes the TLB).
    generation: u32,
}

impl SvmVcpu {
    pub fn new(vm: &Vm) -> Result<Self, keel_abi::Error> {
        // Owned frames: an error below frees what was already allocated.
        let frame = mm::Frame::zeroed().ok_or(keel_abi::Error::NoMemory)?;
        let fpu = fpu::FpuArea::new().ok_or(keel_abi::Error::NoMemory)?;
        let (iopm, msrpm) = *PERMISSION_MAPS.get().ok_or(keel_abi::Error::NotSupported)?;
        let mut vcpu = SvmVcpu {
            vmcb_frame: frame,
            gprs: [0; 16],
            fpu,
            xcr0: 1,
            msrs: super::MsrShadow::new(),
            generation: u32::MAX,
        };
        let v = vcpu.vmcb();
        *v = Vmcb::zeroed();
        let c = &mut v.control;
        c.intercept_misc1 = misc1::INTR
            | misc1::NMI
            | misc1::SMI
            | misc1::INIT
            | misc1::CPUID
            | misc1::INVD
            | misc1::HLT
            | misc1::INVLPGA
            | misc1::IOIO_PROT
            | misc1::MSR_PROT
            | misc1::SHUTDOWN;
        c.intercept_misc2 = misc2::VMRUN
            | misc2::VMMCALL
            | misc2::VMLOAD
            | misc2::VMSAVE
            | misc2::STGI
            | misc2::CLGI
            | misc2::SKINIT
            | misc2::MONITOR
            | misc2::MWAIT
            | misc2::MWAIT_CONDITIONAL
            | misc2::XSETBV
            | misc2::RDPRU;
        c.iopm_base_pa = iopm;
        c.msrpm_base_pa = msrpm;
        c.guest_asid = vm.asid;
        c.v_intr = vintr::V_INTR_MASKING;
        c.np_control = 1;
        c.n_cr3 = vm.nested_root();
        let s = &mut v.save;
        // The x86 reset state until the monitor writes one. See: APM Vol 2 14.1.3.
        s.cr0 = 0x6000_0010;
        s.efer = EFER_SVME;
        s.rflags = 2;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.g_pat = 0x0007_0406_0007_0406;
        s.cs = VmcbSegment { selector: 0xf000, attrib: 0x9b, limit: 0xffff, base: 0xffff_0000 };
        s.rip = 0xfff0;
        for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
            *seg = VmcbSegment { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
        }
        s.gdtr.limit = 0xffff;
        s.idtr.limit = 0xffff;
        s.ldtr = VmcbSegment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 };
        s.tr = VmcbSegment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 };
        Ok(vcpu)
    }

    fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: the frame was allocated for this VMCB alone (page-aligned, mapped by the direct
        // map) and is only reached through `self`; the CPU writes it only inside VMRUN, which
        // runs with this borrow's owner blocked in svm_enter.
        unsafe { &mut *(self.vmcb_frame.virt() as *mut Vmcb) }
    }

    fn vmcb_ref(&self) -> &Vmcb {
        // SAFETY: as in `vmcb`, shared.
        unsafe { &*(self.vmcb_frame.virt() as *const Vmcb) }
    }

    /// Load what the monitor changed (its `dirty` bits) into the VMCB.
    pub fn apply(&mut self, st: &VcpuState) {
        use keel_abi::vcpu::dirty;
        let d = st.dirty;
        if d & dirty::GPRS != 0 {
            self.gprs = st.gprs;
            let (rax, rsp) = (st.gprs[RAX], st.gprs[4]);
            let s = &mut self.vmcb().save;
            s.rax = rax;
            s.rsp = rsp;
        }
        let v = self.vmcb();
        if d & dirty::RIP != 0 {
            v.save.rip = st.rip;
        }
        if d & dirty::RFLAGS != 0 {
            // Reserved bits: bit 1 set, bits 3, 5, 15, 22-63 clear. See: SDM Vol 1 3.4.3.
            v.save.rflags = (st.rflags & 0x003f_7fd5) | 2;
        }
        if d & dirty::CRS != 0 {
            v.save.cr0 = st.cr0;
            v.save.cr2 = st.cr2;
            v.save.cr3 = st.cr3;
            v.save.cr4 = st.cr4;
        }
        if d & dirty::EFER != 0 {
            // Only SCE, LME, LMA, NXE are the guest's; SVME must stay set (APM 15.5.1).
            v.save.efer = (st.efer & ((1 << 0) | (1 << 8) | (1 << 10) | (1 << 11))) | EFER_SVME;
        }
        if d & dirty::SEGS != 0 {
            let conv = |s: &keel_abi::vcpu::Segment| VmcbSegment {
                selector: s.selector,
                attrib: s.attrib & 0xfff,
                limit: s.limit,
                base: s.base,
            };
            v.save.es = conv(&st.segs[seg::ES]);
            v.save.cs = conv(&st.segs[seg::CS]);
            v.save.ss = conv(&st.segs[seg::SS]);
            v.save.ds = conv(&st.segs[seg::DS]);
            v.save.fs = conv(&st.segs[seg::FS]);
            v.save.gs = conv(&st.segs[seg::GS]);
            v.save.ldtr = conv(&st.segs[seg::LDTR]);
            v.save.tr = conv(&st.segs[seg::TR]);
            v.save.cpl = ((st.segs[seg::SS].attrib >> 5) & 3) as u8;
        }
        if d & dirty::TABLES != 0 {
            v.save.gdtr = VmcbSegment { selector: 0, attrib: 0, limit: u32::from(st.gdtr.limit), base: st.gdtr.base };
            v.save.idtr = VmcbSegment { selector: 0, attrib: 0, limit: u32::from(st.idtr.limit), base: st.idtr.base };
        }
    }

    /// Write the registers (GPRs, RIP, RFLAGS, interruptible) straight into the shared state
    /// page, without the kernel's copy of the state in between: the exits that refresh only the
    /// registers (port I/O, MMIO, HLT) are the frequent ones.
    ///
    /// # Safety
    /// `page` is this vCPU's state page: mapped, aligned, VcpuState-sized, not referenced.
    pub unsafe fn store_registers(&mut self, page: *mut VcpuState) {
        use core::ptr::write_volatile;
        let mut gprs = self.gprs;
        let v = self.vmcb();
        gprs[RAX] = v.save.rax;
        gprs[4] = v.save.rsp;
        let interruptible = u32::from(v.save.rflags & (1 << 9) != 0 && v.control.interrupt_shadow & 1 == 0);
        // SAFETY: per the contract, each field is written through a raw pointer (the monitor may
        // read or write the page concurrently; plain integers, no reference is formed).
        unsafe {
            write_volatile(&raw mut (*page).gprs, gprs);
            write_volatile(&raw mut (*page).rip, v.save.rip);
            write_volatile(&raw mut (*page).rflags, v.save.rflags);
            write_volatile(&raw mut (*page).interruptible, interruptible);
        }
    }

    /// Copy the guest state into `st`: the registers, and with `system` the control registers,
    /// EFER, segments and descriptor tables too.
    pub fn export(&mut self, st: &mut VcpuState, system: bool) {
        let mut gprs = self.gprs;
        let v = self.vmcb();
        gprs[RAX] = v.save.rax;
        gprs[4] = v.save.rsp;
        st.gprs = gprs;
        st.rip = v.save.rip;
        st.rflags = v.save.rflags;
        st.interruptible = u32::from(v.save.rflags & (1 << 9) != 0 && v.control.interrupt_shadow & 1 == 0);
        if !system {
            return;
        }
        st.cr0 = v.save.cr0;
        st.cr2 = v.save.cr2;
        st.cr3 = v.save.cr3;
        st.cr4 = v.save.cr4;
        st.efer = v.save.efer & !EFER_SVME;
        let conv = |s: &VmcbSegment| keel_abi::vcpu::Segment {
            selector: s.selector,
            attrib: s.attrib,
            limit: s.limit,
            base: s.base,
        };
        st.segs[seg::ES] = conv(&v.save.es);
        st.segs[seg::CS] = conv(&v.save.cs);
        st.segs[seg::SS] = conv(&v.save.ss);
        st.segs[seg::DS] = conv(&v.save.ds);
        st.segs[seg::FS] = conv(&v.save.fs);
        st.segs[seg::GS] = conv(&v.save.gs);
        st.segs[seg::LDTR] = conv(&v.save.ldtr);
        st.segs[seg::TR] = conv(&v.save.tr);
        st.gdtr = keel_abi::vcpu::Table { base: v.save.gdtr.base, limit: v.save.gdtr.limit as u16, _pad: [0; 3] };
        st.idtr = keel_abi::vcpu::Table { base: v.save.idtr.base, limit: v.save.idtr.limit as u16, _pad: [0; 3] };
    }

    fn interruptible(&mut self) -> bool {
        let v = self.vmcb();
        v.save.rflags & (1 << 9) != 0
            && v.control.interrupt_shadow & 1 == 0
            && v.control.event_inject & eventinj::VALID == 0
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        let mut e = u64::from(vector) | eventinj::TYPE_EXCEPTION | eventinj::VALID;
        if let Some(code) = error_code {
            e |= eventinj::ERROR_VALID | (u64::from(code) << 32);
        }
        self.vmcb().control.event_inject = e;
    }

    /// Deliver the monitor's pending event if the guest can take it now; otherwise ask for an
    /// exit when it can (virtual interrupt request + VINTR intercept). See: APM Vol 2 15.20-15.21.
    fn prepare_injection(&mut self, vcpu: &Vcpu) {
        let req = vcpu.inject_request();
        let v = self.vmcb();
        v.control.v_intr &= !(vintr::V_IRQ | vintr::V_IGN_TPR | (0xf << vintr::V_INTR_PRIO_SHIFT));
        v.control.intercept_misc1 &= !misc1::VINTR;
        if req.pending == 0 {
            return;
        }
        let ty = match req.kind {
            INJECT_NMI => eventinj::TYPE_NMI,
            INJECT_EXCEPTION => eventinj::TYPE_EXCEPTION,
            _ => eventinj::TYPE_INTR,
        };
        if req.kind != INJECT_INTERRUPT || self.interruptible() {
            let mut e = u64::from(req.vector) | ty | eventinj::VALID;
            if req.kind == INJECT_EXCEPTION && req.has_error_code != 0 {
                e |= eventinj::ERROR_VALID | (u64::from(req.error_code) << 32);
            }
            // An event the hardware was already delivering (EXITINTINFO) goes first.
            if self.vmcb().control.event_inject & eventinj::VALID == 0 {
                self.vmcb().control.event_inject = e;
                vcpu.clear_inject();
                return;
            }
        }
        let v = self.vmcb();
        v.control.v_intr |= vintr::V_IRQ | vintr::V_IGN_TPR | (0xf << vintr::V_INTR_PRIO_SHIFT);
        v.control.intercept_misc1 |= misc1::VINTR;
    }

    /// One VMRUN with interrupts held off (GIF), then let pending host interrupts in.
    fn enter(&mut self, vm: &Vm) {
        let generation = vm.generation.load(Ordering::SeqCst);
        let this = self.vmcb_frame.phys();
        let flush = LAST_VMCB.swap(this, Ordering::Relaxed) != this || generation != self.generation;
        self.generation = generation;
        self.vmcb().control.tlb_control = if flush { 1 } else { 0 };
        self.fpu.activate(self.xcr0);
        self.msrs.activate_tsc_aux();
        let host = HOST_VMCB.load(Ordering::Relaxed);
        // SAFETY: CLGI/STGI bracket the world switch (APM 15.17); the VMCB, host VMCB and
        // permission maps are valid pages this CPU owns; svm_enter saves and restores every host
        // register the ABI needs and the host hidden state (VMSAVE/VMLOAD).
        // RFLAGS.IF must be 1 at VMRUN: with V_INTR_MASKING the host's IF at VMRUN (HIF) is what
        // lets a physical interrupt reach the INTR intercept while the guest runs; with IF = 0 a
        // guest that makes no exits would run forever (APM Vol 2 15.21.1). GIF = 0 holds every
        // interrupt from the STI until VMRUN, and again from #VMEXIT (which restores IF = 1 from
        // the host save area) until STGI, where a pending host interrupt is taken; then CLI.
        unsafe {
            core::arch::asm!("clgi", "sti", options(nomem, nostack));
            svm_enter(this, host, &mut self.gprs);
            core::arch::asm!("stgi", "nop", "cli", options(nomem, nostack));
        }
        self.xcr0 = fpu::sync_guest_xcr0(self.xcr0);
        // Re-deliver an event the exit interrupted. See: APM Vol 2 15.7.2 (EXITINTINFO).
        let v = self.vmcb();
        let pending = v.control.exit_int_info;
        v.control.event_inject = if pending & eventinj::VALID != 0 { pending } else { 0 };
    }

    /// The run loop (exit.rs, shared with VMX): kernel exits handled, the first that needs the
    /// monitor returned.
    pub fn run_until_monitor(&mut self, vcpu: &Vcpu, st: &mut VcpuState) -> ExitKind {
        super::exit::run_until_monitor(self, vcpu, st)
    }
}

impl super::exit::Backend for SvmVcpu {
    type Msrs<'a> = VmcbMsrs<'a>;

    fn gpr(&self, index: usize) -> u64 {
        match index & 15 {
            RAX => self.vmcb_ref().save.rax,
            RSP => self.vmcb_ref().save.rsp,
            i => self.gprs[i],
        }
    }

    fn set_gpr(&mut self, index: usize, value: u64) {
        match index & 15 {
            RAX => self.vmcb().save.rax = value,
            RSP => self.vmcb().save.rsp = value,
            i => self.gprs[i] = value,
        }
    }

    fn rflags(&self) -> u64 {
        self.vmcb_ref().save.rflags
    }

    fn cr0(&self) -> u64 {
        self.vmcb_ref().save.cr0
    }

    fn cr4(&self) -> u64 {
        self.vmcb_ref().save.cr4
    }

    fn efer(&self) -> u64 {
        self.vmcb_ref().save.efer & !EFER_SVME
    }

    /// Without next-RIP saving (QEMU's TCG has none; shared/TESTBED.md) the length is the
    /// instruction's architectural one.
    fn skip(&mut self, len: u64) {
        let v = self.vmcb();
        v.save.rip = v.save.rip.wrapping_add(len);
        v.control.interrupt_shadow &= !1;
    }

    /// IOIO exits always report the next RIP (EXITINFO2). See: APM Vol 2 15.10.2.
    fn skip_io(&mut self, next_rip: Option<u64>) {
        if let Some(next) = next_rip {
            self.vmcb().save.rip = next;
        }
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        SvmVcpu::inject_exception(self, vector, error_code)
    }

    fn code_view(&self) -> super::CodeView {
        let save = &self.vmcb_ref().save;
        super::CodeView {
            cr0: save.cr0,
            cr3: save.cr3,
            cr4: save.cr4,
            efer: save.efer,
            cs_base: save.cs.base,
            cs_attrib: save.cs.attrib,
            rip: save.rip,
        }
    }

    fn xcr0_mut(&mut self) -> &mut u64 {
        &mut self.xcr0
    }

    fn msrs(&mut self) -> (VmcbMsrs<'_>, &mut super::MsrShadow) {
        // SAFETY: as in `vmcb`; the VMCB page and the `msrs` field are disjoint, so the two
        // borrows do not alias.
        let vmcb = unsafe { &mut *(self.vmcb_frame.virt() as *mut Vmcb) };
        (VmcbMsrs(vmcb), &mut self.msrs)
    }

    fn export(&mut self, st: &mut VcpuState, system: bool) {
        SvmVcpu::export(self, st, system)
    }

    fn prepare_injection(&mut self, vcpu: &Vcpu) {
        SvmVcpu::prepare_injection(self, vcpu)
    }

    fn enter(&mut self, vcpu: &Vcpu, _st: &mut VcpuState) -> Result<VmExit, ExitKind> {
        SvmVcpu::enter(self, &vcpu.vm);
        let c = &self.vmcb_ref().control;
        Ok(keel_hv::svm::decode(c.exit_code, c.exit_info1, c.exit_info2))
    }

    fn reschedule(&mut self, _st: &mut VcpuState) -> Result<(), ExitKind> {
        crate::task::scheduler::reschedule();
        Ok(())
    }

    fn vendor_exit(&mut self, _vcpu: &Vcpu, exit: VmExit, st: &mut VcpuState) -> Option<ExitKind> {
        match exit {
            VmExit::InvalidState => {
                st.exit.detail = self.vmcb_ref().control.exit_code;
                Some(ExitKind::InvalidState)
            }
            VmExit::Other(code) => {
                st.exit.detail = code;
                Some(ExitKind::Unhandled)
            }
            // SVM reports no other kind (ControlRegister and ExceptionOrNmi are VMX's).
            _ => {
                st.exit.detail = self.vmcb_ref().control.exit_code;
                Some(ExitKind::Unhandled)
            }
        }
    }
}

impl Drop for SvmVcpu {
    fn drop(&mut self) {
        // The frame itself is freed by its own Drop.
        let _ = LAST_VMCB.compare_exchange(self.vmcb_frame.phys(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The VMCB fields behind the guest MSRs.
pub struct VmcbMsrs<'a>(&'a mut Vmcb);

impl super::GuestMsrs for VmcbMsrs<'_> {
    fn get(&self, which: GuestMsr) -> u64 {
        let s = &self.0.save;
        match which {
            GuestMsr::Efer => s.efer & !EFER_SVME,
            GuestMsr::Pat => s.g_pat,
            GuestMsr::Star => s.star,
            GuestMsr::Lstar => s.lstar,
            GuestMsr::Cstar => s.cstar,
            GuestMsr::Sfmask => s.sfmask,
            GuestMsr::KernelGsBase => s.kernel_gs_base,
            GuestMsr::FsBase => s.fs.base,
            GuestMsr::GsBase => s.gs.base,
            GuestMsr::SysenterCs => s.sysenter_cs,
            GuestMsr::SysenterEsp => s.sysenter_esp,
            GuestMsr::SysenterEip => s.sysenter_eip,
        }
    }

    fn set(&mut self, which: GuestMsr, value: u64) {
        let s = &mut self.0.save;
        match which {
            // LMA is the processor's (read-only): a write keeps it. See: APM Vol 2 3.1.7.
            GuestMsr::Efer => s.efer = (value & !EFER_LMA) | (s.efer & EFER_LMA) | EFER_SVME,
            GuestMsr::Pat => s.g_pat = value,
            GuestMsr::Star => s.star = value,
            GuestMsr::Lstar => s.lstar = value,
            GuestMsr::Cstar => s.cstar = value,
            GuestMsr::Sfmask => s.sfmask = value,
            GuestMsr::KernelGsBase => s.kernel_gs_base = value,
            GuestMsr::FsBase => s.fs.base = value,
            GuestMsr::GsBase => s.gs.base = value,
            GuestMsr::SysenterCs => s.sysenter_cs = value,
            GuestMsr::SysenterEsp => s.sysenter_esp = value,
            GuestMsr::SysenterEip => s.sysenter_eip = value,
        }
    }
}
