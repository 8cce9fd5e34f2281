//! The VMX vCPU: its VMCS (made current with VMPTRLD when another vCPU ran), the guest
//! registers VMX does not keep, and the VMCS set up once at creation. See: SDM Vol 3C 25.
use super::*;

/// The guest's registers VMX does not keep in the VMCS (enter.S's layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct GuestRegs {
    pub(super) gprs: [u64; 16],
    pub(super) cr2: u64,
}

/// An event to inject at the next VM entry: interruption information, error code, instruction
/// length. See: SDM Vol 3C 25.8.3.
#[derive(Clone, Copy)]
pub(super) struct Event {
    pub(super) info: u32,
    pub(super) error_code: u32,
    pub(super) length: u32,
}

pub struct VmxVcpu {
    pub(super) vmcs: mm::Frame,
    pub(super) launched: bool,
    pub(super) regs: GuestRegs,
    pub(super) fpu: Arc<fpu::FpuArea>,
    pub(super) xcr0: u64,
    pub(super) msrs: crate::virt::MsrShadow,
    /// The guest's STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE (SYSCALL_MSRS order).
    pub(super) syscall_msrs: [u64; 5],
    /// The host's syscall MSRs while the guest's are loaded (run_until_monitor).
    pub(super) host_syscall_msrs: [u64; 5],
    /// The last exit's reason field, for the log and the monitor.
    pub(super) exit_reason: u32,
    /// The guest's CR8 (TPR): kept, not acted on (the monitor's PIC decides interrupts).
    pub(super) cr8: u64,
    pub(super) eptp: u64,
    /// Mapping generation of the VM at the last INVEPT.
    pub(super) generation: u32,
    /// The kernel changed guest paging registers itself: INVEPT before the next entry.
    pub(super) flush: bool,
    /// Reload the PDPTE fields from guest memory before the next entry (PAE paging).
    pub(super) reload_pdptes: bool,
    /// The primary processor-based controls now in the VMCS (interrupt-window exiting toggles).
    pub(super) proc: u32,
    /// The VM-entry controls now in the VMCS (IA-32e mode guest follows EFER.LMA).
    pub(super) entry: u32,
    pub(super) event: Option<Event>,
}

/// What this backend lets a guest execute that CPUID may then show: RDTSCP/RDPID and INVPCID
/// need their secondary controls (#UD otherwise). See: SDM Vol 3C 25.6.2.
pub fn guest_caps() -> keel_hv::guest_cpu::features::BackendCaps {
    let c = caps();
    keel_hv::guest_cpu::features::BackendCaps {
        rdtscp: c.proc2 & proc2::ENABLE_RDTSCP != 0,
        invpcid: c.proc2 & proc2::ENABLE_INVPCID != 0,
    }
}

pub(super) fn caps() -> &'static Caps {
    &CPU.get().expect("a VmxVcpu exists only with VMX on").caps
}

impl VmxVcpu {
    pub fn new(vm: &Vm) -> Result<Self, keel_abi::Error> {
        let cpu = CPU.get().ok_or(keel_abi::Error::NotSupported)?;
        // Owned frames: an error below frees what was already allocated.
        let vmcs_frame = alloc_vmx_page(&cpu.caps).ok_or(keel_abi::Error::NoMemory)?;
        let fpu = fpu::FpuArea::new().ok_or(keel_abi::Error::NoMemory)?;
        // EPTP: write-back paging structures, 4-level walk (3 = levels - 1 in bits 5:3), no
        // accessed/dirty flags. See: SDM Vol 3C 25.6.11.
        let eptp = vm.nested_root() | 6 | (3 << 3);
        let mut vcpu = VmxVcpu {
            vmcs: vmcs_frame,
            launched: false,
            regs: GuestRegs { gprs: [0; 16], cr2: 0 },
            fpu,
            xcr0: 1,
            msrs: crate::virt::MsrShadow::new(),
            syscall_msrs: [0; 5],
            host_syscall_msrs: [0; 5],
            exit_reason: 0,
            cr8: 0,
            eptp,
            generation: u32::MAX,
            flush: true,
            reload_pdptes: false,
            proc: cpu.caps.proc,
            entry: cpu.caps.entry,
            event: None,
        };
        // SAFETY: VMX is on (CPU is set); the frame is a fresh VMCS region owned by this vCPU.
        if unsafe { insn::vmclear(vcpu.vmcs.phys()) }.is_err() || !vcpu.make_current() {
            // Drop frees the page.
            return Err(keel_abi::Error::NotSupported);
        }
        vcpu.init_vmcs(cpu);
        Ok(vcpu)
    }

    /// Make this vCPU's VMCS the current one (another vCPU may have run since).
    pub(super) fn make_current(&self) -> bool {
        if CURRENT_VMCS.load(Ordering::Relaxed) == self.vmcs.phys() {
            return true;
        }
        // SAFETY: VMX is on (a VmxVcpu exists); the VMCS region belongs to this vCPU and stays
        // allocated until Drop, which VMCLEARs it first.
        match unsafe { insn::vmptrld(self.vmcs.phys()) } {
            Ok(()) => {
                CURRENT_VMCS.store(self.vmcs.phys(), Ordering::Relaxed);
                // Another vCPU (or none yet) ran since: its TSC_AUX may be in the CPU.
                self.msrs.activate_tsc_aux();
                true
            }
            Err(e) => {
                log::warn!("vmx: VMPTRLD failed ({e:?})");
                false
            }
        }
    }

    /// Controls, host state and the x86 reset state (until the monitor writes one).
    pub(super) fn init_vmcs(&mut self, cpu: &VmxCpu) {
        let (c, h) = (&cpu.caps, &cpu.host);
        let vpid = if c.proc2 & proc2::ENABLE_VPID != 0 {
            // Nonzero (VPID 0 is the host's). See: SDM Vol 3C 29.1.
            1 + u64::from(NEXT_VPID.fetch_add(1, Ordering::Relaxed) % 0xffff)
        } else {
            0
        };
        write(field::VPID, vpid);
        write(field::PIN_BASED_CONTROLS, u64::from(c.pin));
        write(field::PROCESSOR_BASED_CONTROLS, u64::from(self.proc));
        write(field::SECONDARY_CONTROLS, u64::from(c.proc2));
        write(field::EXIT_CONTROLS, u64::from(c.exit));
        write(field::ENTRY_CONTROLS, u64::from(self.entry));
        write(field::EXCEPTION_BITMAP, 0);
        write(field::CR3_TARGET_COUNT, 0);
        write(field::EXIT_MSR_STORE_COUNT, 0);
        write(field::EXIT_MSR_LOAD_COUNT, 0);
        write(field::ENTRY_MSR_LOAD_COUNT, 0);
        write(field::ENTRY_INTERRUPTION_INFO, 0);
        write(field::EPT_POINTER, self.eptp);
        write(field::CR0_GUEST_HOST_MASK, c.cr0.mask());
        write(field::CR4_GUEST_HOST_MASK, c.cr4.mask());

        // Host state. See: SDM Vol 3C 25.5, 28.5 (what a VM exit loads).
        write(field::HOST_CS_SELECTOR, u64::from(gdt::KERNEL_CODE));
        for f in [field::HOST_SS_SELECTOR, field::HOST_DS_SELECTOR, field::HOST_ES_SELECTOR] {
            write(f, u64::from(gdt::KERNEL_DATA));
        }
        write(field::HOST_FS_SELECTOR, 0);
        write(field::HOST_GS_SELECTOR, 0);
        write(field::HOST_TR_SELECTOR, u64::from(h.tr_selector));
        write(field::HOST_CR0, h.cr0);
        write(field::HOST_CR4, h.cr4);
        write(field::HOST_TR_BASE, h.tr_base);
        write(field::HOST_GDTR_BASE, h.gdtr_base);
        write(field::HOST_IDTR_BASE, h.idtr_base);
        write(field::HOST_SYSENTER_CS, h.sysenter[0]);
        write(field::HOST_SYSENTER_ESP, h.sysenter[1]);
        write(field::HOST_SYSENTER_EIP, h.sysenter[2]);
        write(field::HOST_IA32_EFER, h.efer);
        write(field::HOST_IA32_PAT, h.pat);
        write(field::HOST_RIP, vmx_exit_host_rip as *const () as u64);
        self.write_host_per_run();

        // Guest: the x86 reset state. See: SDM Vol 3A 10.1.1 (Table 10-1), Vol 3C 25.4.
        self.set_cr0(0x6000_0010);
        self.set_cr4(0);
        write(field::GUEST_CR3, 0);
        write(field::GUEST_IA32_EFER, 0);
        write(field::GUEST_IA32_PAT, DEFAULT_PAT);
        write(field::GUEST_IA32_DEBUGCTL, 0);
        write(field::GUEST_DR7, 0x400);
        write(field::GUEST_RFLAGS, 2);
        write(field::GUEST_RIP, 0xfff0);
        write(field::GUEST_RSP, 0);
        let data = Segment { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
        for s in [seg::ES, seg::SS, seg::DS, seg::FS, seg::GS] {
            set_segment(s, &data);
        }
        set_segment(seg::CS, &Segment { selector: 0xf000, attrib: 0x9b, limit: 0xffff, base: 0xffff_0000 });
        set_segment(seg::LDTR, &Segment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 });
        set_segment(seg::TR, &Segment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 });
        write(field::GUEST_GDTR_BASE, 0);
        write(field::GUEST_GDTR_LIMIT, 0xffff);
        write(field::GUEST_IDTR_BASE, 0);
        write(field::GUEST_IDTR_LIMIT, 0xffff);
        write(field::GUEST_SYSENTER_CS, 0);
        write(field::GUEST_SYSENTER_ESP, 0);
        write(field::GUEST_SYSENTER_EIP, 0);
        write(field::VMCS_LINK_POINTER, u64::MAX);
        write(field::GUEST_ACTIVITY_STATE, 0);
        write(field::GUEST_INTERRUPTIBILITY, 0);
        write(field::GUEST_PENDING_DEBUG, 0);
        for i in 0..4 {
            write(field::GUEST_PDPTE0 + 2 * i, 0);
        }
    }

    /// The host state that belongs to the calling thread: its address space and FS/GS bases.
    pub(super) fn write_host_per_run(&self) {
        write(field::HOST_CR3, read_cr3());
        // SAFETY: FS_BASE and GS_BASE exist on every x86-64 CPU; reading them has no effects.
        let fs = unsafe { rdmsr(MSR_FS_BASE) };
        // SAFETY: as above.
        let gs = unsafe { rdmsr(MSR_GS_BASE) };
        write(field::HOST_FS_BASE, fs);
        write(field::HOST_GS_BASE, gs);
    }
}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        // SAFETY: VMX is on (a VmxVcpu exists only then); the region is this vCPU's VMCS. VMCLEAR
        // makes it not current, so the CPU no longer touches the page, which the frame's own
        // Drop frees after this.
        let _ = unsafe { insn::vmclear(self.vmcs.phys()) };
        let _ = CURRENT_VMCS.compare_exchange(self.vmcs.phys(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}
