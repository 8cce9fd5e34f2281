//! Wrappers for the privileged instructions Keel uses: port I/O, MSRs, control registers, halt.
//!
//! Writing an MSR or port is `unsafe` (it can change how the machine runs); reading CPUID is safe.
//! `rdmsr_safe` probes MSRs that may not exist: a #GP there is caught by the exception handler
//! (see `try_fixup_msr_probe`) instead of stopping the kernel.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

pub use raw_cpuid::CpuIdResult;

use super::interrupts::TrapFrame;

pub fn cpuid(leaf: u32, subleaf: u32) -> CpuIdResult {
    raw_cpuid::cpuid!(leaf, subleaf)
}

/// # Safety
/// Reading a port can have side effects on the device behind it; the caller knows the device.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the port; `in` touches no memory.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// Writing a port changes device state; the caller knows the device.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the port; `out` touches no memory.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// # Safety
/// The MSR must exist (else #GP) and reading it must have no side effect the caller is not ready for.
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller vouches for the MSR.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// # Safety
/// Writing an MSR changes how the CPU runs; the caller must know the value is valid and safe.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller vouches for the MSR and the value.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

static MSR_PROBE_LOCK: spin::Mutex<()> = spin::Mutex::new(());
static MSR_PROBING: AtomicBool = AtomicBool::new(false);
static MSR_PROBE_FAULTED: AtomicBool = AtomicBool::new(false);

/// Read an MSR that may not exist; `None` if the read raised #GP.
/// Only for capability and status MSRs, whose reads have no side effects.
pub fn rdmsr_safe(msr: u32) -> Option<u64> {
    let _one_prober = MSR_PROBE_LOCK.lock();
    MSR_PROBE_FAULTED.store(false, Ordering::SeqCst);
    MSR_PROBING.store(true, Ordering::SeqCst);
    // SAFETY: the MSRs probed this way are read-only capability/status registers; if the MSR does
    // not exist, the #GP handler sees MSR_PROBING and skips the instruction (try_fixup_msr_probe).
    let value = unsafe { rdmsr(msr) };
    MSR_PROBING.store(false, Ordering::SeqCst);
    if MSR_PROBE_FAULTED.load(Ordering::SeqCst) {
        None
    } else {
        Some(value)
    }
}

/// Called by the #GP handler: if the fault is an `rdmsr` inside `rdmsr_safe`, skip it (EDX:EAX = 0)
/// and report the fault to the prober.
pub fn try_fixup_msr_probe(frame: &mut TrapFrame) -> bool {
    if !MSR_PROBING.load(Ordering::SeqCst) || frame.cs & 3 != 0 {
        return false;
    }
    // SAFETY: the fault came from ring 0 (checked above), so RIP points into the kernel's own
    // mapped code, which is readable.
    let opcode = unsafe { core::ptr::read_volatile(frame.rip as *const [u8; 2]) };
    if opcode != [0x0f, 0x32] {
        return false;
    }
    frame.rip += 2;
    frame.rax = 0;
    frame.rdx = 0;
    MSR_PROBE_FAULTED.store(true, Ordering::SeqCst);
    MSR_PROBING.store(false, Ordering::SeqCst);
    true
}

pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// # Safety
/// `root` must be a valid PML4 that maps the running code, its stack and all data in use.
pub unsafe fn write_cr3(root: u64) {
    // SAFETY: the caller guarantees the new tables map everything in use.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
}

/// Halt until the next interrupt, with interrupts enabled only across the `hlt` (no lost wake-up).
pub fn enable_interrupts_and_halt() {
    // SAFETY: `sti; hlt` enables interrupts for the halt; the kernel's handlers are installed.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Stop this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts off, `hlt` only stops this CPU (an NMI would resume the loop).
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

// One home for the architectural numbers: keel_hv::x86.
pub use keel_hv::x86::efer::NXE as EFER_NXE;
pub use keel_hv::x86::msr::{APIC_BASE as MSR_APIC_BASE, EFER as MSR_EFER};
