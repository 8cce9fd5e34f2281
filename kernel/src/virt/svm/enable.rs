//! Turning SVM on: EFER.SVME, the host save area, and the I/O and MSR permission maps every
//! VMCB shares (all ones: every port and MSR access exits). See: APM Vol 2 15.4, 15.10, 15.11.
use super::*;

pub(super) fn alloc_filled(pages: u64, byte: u8) -> Option<u64> {
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
    let efer = unsafe { rdmsr(MSR_EFER) };
    // SAFETY: as above.
    unsafe { wrmsr(MSR_EFER, efer | EFER_SVME) };
    // SAFETY: as above.
    unsafe { wrmsr(MSR_VM_HSAVE_PA, hsave) };
    HOST_VMCB.store(host_vmcb, Ordering::SeqCst);
    // IOPM: 12 KiB, MSRPM: 8 KiB, all ones: every port and MSR access exits.
    let maps = (
        alloc_filled(3, 0xff).ok_or("no memory for the IOPM")?,
        alloc_filled(2, 0xff).ok_or("no memory for the MSRPM")?,
    );
    PERMISSION_MAPS.call_once(|| maps);
    Ok(())
}
