//! Turning VMX on: the capability MSRs and the controls Keel needs from them, the host state
//! every VMCS gets, and VMXON on the boot CPU. See: SDM Vol 3C 24.7-24.8, Appendix A.
use super::*;

/// A control value against its capability MSR (the TRUE one where IA32_VMX_BASIC bit 55 says
/// so). See: SDM Vol 3C A.2.
pub(super) fn controls(what: &'static str, want: u32, optional: u32, cap: u64) -> Result<u32, &'static str> {
    hv::adjust_controls(want, optional, cap).map_err(|missing| {
        log::warn!("vmx: {what} controls lack {missing:#x}");
        "the CPU lacks a VMX control Keel needs"
    })
}

pub(super) fn capabilities(basic: u64) -> Result<Caps, &'static str> {
    let read_msr = |m: u32| rdmsr_safe(m).ok_or("a VMX capability MSR cannot be read");
    let true_ctls = basic & msr::BASIC_TRUE_CONTROLS != 0;
    let pick = |plain: u32, true_msr: u32| if true_ctls { true_msr } else { plain };
    let pin = controls(
        "pin-based",
        pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING,
        0,
        read_msr(pick(msr::PINBASED_CTLS, msr::TRUE_PINBASED_CTLS))?,
    )?;
    let proc_cap = read_msr(pick(msr::PROCBASED_CTLS, msr::TRUE_PROCBASED_CTLS))?;
    let proc = controls(
        "processor-based",
        proc::HLT_EXITING
            | proc::UNCONDITIONAL_IO_EXITING
            | proc::CR8_LOAD_EXITING
            | proc::CR8_STORE_EXITING
            | proc::SECONDARY_CONTROLS,
        proc::MWAIT_EXITING | proc::MONITOR_EXITING,
        proc_cap,
    )?;
    if (proc_cap >> 32) as u32 & proc::INTERRUPT_WINDOW_EXITING == 0 {
        return Err("the CPU has no interrupt-window exiting");
    }
    if proc & (proc::USE_MSR_BITMAPS | proc::USE_IO_BITMAPS | proc::USE_TPR_SHADOW | proc::INTERRUPT_WINDOW_EXITING)
        != 0
    {
        return Err("the CPU forces a VMX control Keel cannot use");
    }
    let proc2 = controls(
        "secondary",
        proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST,
        proc2::ENABLE_VPID | proc2::ENABLE_RDTSCP | proc2::ENABLE_INVPCID,
        read_msr(msr::PROCBASED_CTLS2)?,
    )?;
    let exit = controls(
        "VM-exit",
        exit_ctl::HOST_ADDRESS_SPACE_SIZE
            | exit_ctl::SAVE_EFER
            | exit_ctl::LOAD_EFER
            | exit_ctl::SAVE_PAT
            | exit_ctl::LOAD_PAT,
        exit_ctl::SAVE_DEBUG_CONTROLS,
        read_msr(pick(msr::EXIT_CTLS, msr::TRUE_EXIT_CTLS))?,
    )?;
    if exit & exit_ctl::ACKNOWLEDGE_INTERRUPT != 0 {
        return Err("the CPU forces 'acknowledge interrupt on exit'");
    }
    let entry_cap = read_msr(pick(msr::ENTRY_CTLS, msr::TRUE_ENTRY_CTLS))?;
    // Debug controls: the guest's DR7 and IA32_DEBUGCTL survive exits (a VM exit always sets the
    // host's DR7 to 0x400 and clears IA32_DEBUGCTL). See: SDM Vol 3C 28.3.1, 28.5.1.
    let entry =
        controls("VM-entry", entry_ctl::LOAD_EFER | entry_ctl::LOAD_PAT, entry_ctl::LOAD_DEBUG_CONTROLS, entry_cap)?;
    if (entry_cap >> 32) as u32 & entry_ctl::IA32E_MODE_GUEST == 0 {
        return Err("the CPU cannot enter IA-32e mode guests");
    }
    let ept = read_msr(msr::EPT_VPID_CAP)?;
    let invept = if ept & msr::EPT_INVEPT_SINGLE != 0 {
        insn::INVEPT_SINGLE_CONTEXT
    } else if ept & msr::EPT_INVEPT_ALL != 0 {
        insn::INVEPT_ALL_CONTEXT
    } else {
        return Err("the CPU has no usable INVEPT type");
    };
    Ok(Caps {
        revision: msr::basic_revision(basic),
        below_4g: basic & msr::BASIC_ADDRESSES_32BIT != 0,
        pin,
        proc,
        proc2,
        exit,
        entry: entry & !entry_ctl::IA32E_MODE_GUEST,
        cr0: CrShadow::cr0_unrestricted(read_msr(msr::CR0_FIXED0)?, read_msr(msr::CR0_FIXED1)?),
        cr4: CrShadow::cr4(read_msr(msr::CR4_FIXED0)?, read_msr(msr::CR4_FIXED1)?),
        invept,
    })
}

/// (GDTR base, IDTR base) of this CPU.
pub(super) fn descriptor_table_bases() -> (u64, u64) {
    let mut gdtr = [0u8; 10];
    let mut idtr = [0u8; 10];
    // SAFETY: SGDT/SIDT store 10 bytes (limit, base) into the buffers and change nothing else.
    unsafe { core::arch::asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr(), options(nostack, preserves_flags)) };
    // SAFETY: as above.
    unsafe { core::arch::asm!("sidt [{}]", in(reg) idtr.as_mut_ptr(), options(nostack, preserves_flags)) };
    let base = |t: &[u8; 10]| u64::from_le_bytes(t[2..10].try_into().expect("8 bytes"));
    (base(&gdtr), base(&idtr))
}

/// The host state, read from this CPU. See: SDM Vol 3C 25.5, 27.2.3 (checks on host state).
pub(super) fn capture_host_state() -> Result<HostState, &'static str> {
    let (gdtr_base, idtr_base) = descriptor_table_bases();
    let tr: u16;
    // SAFETY: STR only reads the task register's selector.
    unsafe { core::arch::asm!("str {:x}", out(reg) tr, options(nomem, nostack, preserves_flags)) };
    if tr == 0 || tr & 7 != 0 {
        return Err("no TSS is loaded (VMX host state needs TR)");
    }
    // The 16-byte TSS descriptor: base 15:0 and 23:16 and 31:24 in the low quadword, 63:32 in the
    // high one. See: SDM Vol 3A 8.2.3 (TSS descriptor in 64-bit mode).
    let entry = (gdtr_base + u64::from(tr)) as *const u64;
    // SAFETY: the GDT was built by gdt::init_this_cpu and lives forever; TR indexes a TSS
    // descriptor in it (loaded by LTR, which checked it).
    let lo = unsafe { core::ptr::read_volatile(entry) };
    // SAFETY: as above (a 64-bit TSS descriptor is 16 bytes).
    let hi_entry = unsafe { entry.add(1) };
    // SAFETY: as above.
    let hi = unsafe { core::ptr::read_volatile(hi_entry) };
    let tr_base = ((lo >> 16) & 0xff_ffff) | (((lo >> 56) & 0xff) << 24) | ((hi & 0xffff_ffff) << 32);
    // SAFETY: the SYSENTER MSRs, EFER and PAT exist on every x86-64 CPU; reads have no effects.
    let msr = |index| unsafe { rdmsr(index) };
    let (sysenter, efer, pat) = {
        use keel_hv::x86::msr::{EFER, SYSENTER_CS, SYSENTER_EIP, SYSENTER_ESP};
        ([msr(SYSENTER_CS), msr(SYSENTER_ESP), msr(SYSENTER_EIP)], msr(EFER), msr(MSR_PAT))
    };
    Ok(HostState {
        cr0: read_cr0(),
        cr4: read_cr4(),
        tr_selector: tr,
        tr_base,
        gdtr_base,
        idtr_base,
        sysenter,
        efer,
        pat,
    })
}

/// Turn on VMX on this CPU (the boot CPU): IA32_FEATURE_CONTROL, the CR0/CR4 fixed bits, CR4.VMXE,
/// VMXON. See: SDM Vol 3C 24.7 (enabling and entering VMX operation), 24.8 (fixed bits), A.1.
pub fn enable_this_cpu() -> Result<(), &'static str> {
    if CPU.get().is_some() {
        return Ok(());
    }
    let basic = rdmsr_safe(msr::BASIC).ok_or("IA32_VMX_BASIC cannot be read")?;
    if msr::basic_region_size(basic) > 4096 || msr::basic_region_size(basic) == 0 {
        return Err("the VMCS region size is not supported");
    }
    let fc = rdmsr_safe(msr::FEATURE_CONTROL).ok_or("IA32_FEATURE_CONTROL cannot be read")?;
    if fc & msr::FEATURE_CONTROL_LOCK == 0 {
        // SAFETY: the MSR is unlocked, so the write is allowed; it only enables VMXON outside SMX
        // and locks the register until reset, as firmware normally does.
        unsafe { wrmsr(msr::FEATURE_CONTROL, fc | msr::FEATURE_CONTROL_LOCK | msr::FEATURE_CONTROL_VMX_OUTSIDE_SMX) };
    } else if fc & msr::FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
        return Err("VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked)");
    }
    let caps = capabilities(basic)?;
    let host = capture_host_state()?;
    // The fixed bits: CR0 PE/PG/NE and CR4.VMXE in practice (the kernel runs with PE and PG). A
    // bit VMX forbids is an error rather than silently dropped.
    let cr0 = read_cr0() | caps.cr0.must_be_one;
    let cr4 = read_cr4() | caps.cr4.must_be_one | hv::CR4_VMXE;
    if cr0 & !caps.cr0.may_be_one != 0 || cr4 & !caps.cr4.may_be_one != 0 {
        return Err("the kernel's CR0/CR4 have bits VMX operation forbids");
    }
    let region = alloc_vmx_page(&caps).ok_or("no memory for the VMXON region")?;
    // SAFETY: CR0/CR4 only gain bits the VMX fixed-bit MSRs require (NE, VMXE: no effect on the
    // kernel, which uses no x87 exceptions); IA32_FEATURE_CONTROL allows VMXON (checked above);
    // the region is a fresh page with the revision, kept for as long as VMX is on (forever).
    unsafe { core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack)) };
    // SAFETY: as above.
    unsafe { core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack)) };
    // SAFETY: as above.
    let result = unsafe { insn::vmxon(region.phys()) };
    if result.is_err() {
        return Err("VMXON failed");
    }
    let host = HostState { cr0: read_cr0(), cr4: read_cr4(), ..host };
    log::info!(
        "vmx: VMXON on the boot CPU (VMCS revision {:#x}, {}TRUE controls, VPID {}, unrestricted guest)",
        caps.revision,
        if basic & msr::BASIC_TRUE_CONTROLS != 0 { "" } else { "no " },
        if caps.proc2 & proc2::ENABLE_VPID != 0 { "on" } else { "off" },
    );
    CPU.call_once(|| VmxCpu { _vmxon_region: region, caps, host });
    Ok(())
}

/// A zeroed page for a VMX structure with the VMCS revision identifier in its first 4 bytes.
/// See: SDM Vol 3C 25.2 (VMCS format), 24.11.5 (VMXON region).
pub(super) fn alloc_vmx_page(caps: &Caps) -> Option<mm::Frame> {
    let frame = if caps.below_4g { mm::Frame::zeroed_below(1 << 32)? } else { mm::Frame::zeroed()? };
    // SAFETY: the frame was just allocated (zeroed) for this structure alone and is mapped by
    // the direct map.
    unsafe { core::ptr::write(frame.virt() as *mut u32, caps.revision) };
    Some(frame)
}
