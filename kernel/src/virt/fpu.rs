//! Guest FPU/SSE/AVX state. Keel's own code (kernel and user programs) is built soft-float and
//! never touches these registers, so a guest's state can stay in the CPU until another vCPU runs:
//! the CPU's current owner is saved (XSAVE) and the next one loaded (XRSTOR) only on a change.
//! XCR0 is the running guest's. See: SDM Vol 1 13 (XSAVE), Vol 3A 2.6 (XCR0).
//!
//! Only the boot CPU runs guests for now, so "the CPU's owner" is one global.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::arch::x86_64::instructions::cpuid;
use crate::mm;

/// An XSAVE area (one page, 64-byte aligned), owned by a vCPU.
pub struct FpuArea {
    frame: mm::Frame,
}

static OWNER: AtomicPtr<FpuArea> = AtomicPtr::new(core::ptr::null_mut());
static CURRENT_XCR0: AtomicU64 = AtomicU64::new(0);
static HOST_XCR0: AtomicU64 = AtomicU64::new(0);

/// The XCR0 bits guests are offered: x87, SSE, AVX, AVX-512 (as far as the CPU has them).
pub fn supported_xcr0() -> u64 {
    HOST_XCR0.load(Ordering::Relaxed)
}

/// Enable FXSAVE/XSAVE on this CPU: CR4.OSFXSR, OSXMMEXCPT, OSXSAVE; XCR0 = every component
/// guests are offered (keel_hv::xsave::XsaveLayout, the same rule the guest CPU model uses).
pub fn init_this_cpu() {
    let host = |leaf, subleaf| {
        let r = cpuid(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    };
    let supported = keel_hv::xsave::XsaveLayout::from_host(&host).supported;
    let xsave = supported != 0;
    let mut cr4: u64;
    // SAFETY: reading CR4 has no effect.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack)) };
    cr4 |= (1 << 9) | (1 << 10);
    if xsave {
        cr4 |= 1 << 18;
    }
    // SAFETY: setting OSFXSR/OSXMMEXCPT (always available on x86-64) and OSXSAVE (CPUID says
    // XSAVE exists: `from_host` checked it) only allows the FXSAVE/XSAVE families and SSE; Keel itself uses none of them.
    unsafe { core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack)) };
    if xsave {
        HOST_XCR0.store(supported, Ordering::Relaxed);
        set_xcr0(supported);
    }
}

fn set_xcr0(value: u64) {
    if CURRENT_XCR0.swap(value, Ordering::Relaxed) != value {
        // SAFETY: `value` has x87 set and only bits the CPU supports (supported_xcr0, or a guest
        // value validated by the guest CPU model's `xcr0_valid`); CR4.OSXSAVE is on.
        unsafe {
            core::arch::asm!("xsetbv", in("ecx") 0, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nomem, nostack))
        };
    }
}

/// The guest's XCR0 as the CPU holds it after an SVM #VMEXIT (svm/run.rs calls it after every
/// VMRUN), given the value Keel believes
/// (`known`). SVM does not switch XCR0 (it is not in the VMCB), so after an exit the register
/// holds the guest's: normally what Keel loaded, changed only through the XSETBV intercept.
/// QEMU 7.2's TCG does not honour that intercept, and a guest's XSETBV then reaches the
/// (emulated) register directly, behind Keel's back (seen: Linux's XCR0 = 7 while Keel still
/// had 1, so CPUID 0xD.0 reported the size for x87 only). Reading it back keeps Keel's view, and
/// so CPUID and the save area, right. A value the guest CPU model refuses (only possible where
/// the intercept is not honoured) is replaced by `known`, so the one-page save area is never
/// overrun. See: APM Vol 2 15.5.1 (state not saved by VMRUN), 15.9 (intercepts).
#[inline]
pub fn sync_guest_xcr0(known: u64) -> u64 {
    if supported_xcr0() == 0 {
        return known;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: CR4.OSXSAVE is on (XSAVE is supported); XGETBV with ECX = 0 only reads XCR0.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    let held = u64::from(hi) << 32 | u64::from(lo);
    if held == known {
        return known;
    }
    CURRENT_XCR0.store(held, Ordering::Relaxed);
    if super::guest_cpu().xsave().xcr0_valid(held) {
        held
    } else {
        set_xcr0(known);
        known
    }
}

impl FpuArea {
    pub fn new() -> Option<Arc<FpuArea>> {
        let frame = mm::Frame::zeroed()?;
        // The initial MXCSR (0x1f80: all exceptions masked) at offset 24 of the legacy area.
        // SAFETY: the frame was just allocated and is mapped by the direct map.
        unsafe { core::ptr::write((frame.virt() + 24) as *mut u32, 0x1f80) };
        Some(Arc::new(FpuArea { frame }))
    }

    fn ptr(&self) -> *mut u8 {
        self.frame.virt() as *mut u8
    }

    /// Make this area's state the CPU's (saving the previous owner's), with `xcr0` loaded.
    pub fn activate(self: &Arc<Self>, xcr0: u64) {
        let me = Arc::as_ptr(self) as *mut FpuArea;
        let owner = OWNER.load(Ordering::Relaxed);
        let xsave = supported_xcr0() != 0;
        if owner != me {
            if !owner.is_null() {
                // SAFETY: the owner pointer is cleared by the owner's Drop before its frame is
                // freed, so a non-null owner is alive.
                let area = unsafe { (*owner).ptr() };
                // SAFETY: XSAVE writes the owner's 64-byte-aligned page.
                unsafe { save(area, xsave) };
            }
            // XRSTOR is #GP if the area's XSTATE_BV has a bit XCR0 lacks, and the area may have
            // been saved under a larger XCR0 than the guest has now (it set x87|SSE, another vCPU
            // ran, it went back to x87): restore under every component Keel allows (a superset
            // of any guest's XCR0), then load the guest's. See: SDM Vol 1 13.8 (XRSTOR #GP).
            if xsave {
                set_xcr0(supported_xcr0());
            }
            // SAFETY: our own page holds a state XSAVE wrote (under an XCR0 within
            // supported_xcr0) or the initial state (MXCSR valid, XSTATE_BV 0: components start in
            // their init state).
            unsafe { restore(self.ptr(), xsave) };
            if xsave {
                set_xcr0(xcr0);
            }
            OWNER.store(me, Ordering::Relaxed);
        } else if xsave {
            set_xcr0(xcr0);
        }
    }
}

/// # Safety
/// `area` must be a writable, 64-byte aligned page.
unsafe fn save(area: *mut u8, xsave: bool) {
    if xsave {
        // SAFETY: per the contract; the mask EDX:EAX = all ones saves every enabled component.
        unsafe {
            core::arch::asm!("xsave64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
        };
    } else {
        // SAFETY: per the contract.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) area, options(nostack)) };
    }
}

/// # Safety
/// `area` must be a 64-byte aligned page holding a valid XSAVE/FXSAVE image.
unsafe fn restore(area: *const u8, xsave: bool) {
    if xsave {
        // SAFETY: per the contract.
        unsafe {
            core::arch::asm!("xrstor64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
        };
    } else {
        // SAFETY: per the contract.
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) area, options(nostack)) };
    }
}

impl Drop for FpuArea {
    fn drop(&mut self) {
        let me = self as *mut FpuArea;
        // The frame itself is freed by its own Drop, after this.
        let _ = OWNER.compare_exchange(me, core::ptr::null_mut(), Ordering::Relaxed, Ordering::Relaxed);
    }
}
