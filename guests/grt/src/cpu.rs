//! CPU instructions the guests use: CPUID, RDTSC, the interrupt flag, HLT and LIDT.

use core::arch::asm;

/// The four registers CPUID returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpuid {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Executes CPUID with EAX = `leaf` and ECX = `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> Cpuid {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: CPUID only writes the four registers named here; RBX is reserved by LLVM, so it is
    // saved in a scratch register and restored around the instruction.
    unsafe {
        asm!(
            "mov {saved:r}, rbx",
            "cpuid",
            "xchg {saved:r}, rbx",
            saved = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nomem, nostack, preserves_flags),
        )
    };
    Cpuid { eax, ebx, ecx, edx }
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC only writes EDX:EAX (CR4.TSD is clear in the start state, so it is allowed at
    // CPL 0 in any case).
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Clears RFLAGS.IF.
pub fn cli() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Sets RFLAGS.IF.
///
/// # Safety
///
/// Every vector that can then arrive must have a gate in the loaded IDT ([`crate::idt::install`]
/// gives all 256 one).
pub unsafe fn sti() {
    // SAFETY: the caller guarantees the IDT is ready.
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// `sti; hlt`: enables interrupts and halts until the next one, with no window between the two
/// in which an interrupt could be taken before the halt (STI's interrupt shadow). Returns after
/// the interrupt's handler, with interrupts enabled.
///
/// # Safety
///
/// As for [`sti`].
pub unsafe fn enable_and_halt() {
    // SAFETY: the caller guarantees the IDT is ready; the handler that runs saves and restores
    // every register (idt.rs), and `nomem` is not claimed because handlers write memory.
    unsafe { asm!("sti", "hlt", options(nostack)) };
}

/// Whether RFLAGS.IF is set.
pub fn interrupts_enabled() -> bool {
    let rflags: u64;
    // SAFETY: pushfq; pop reads RFLAGS through the stack, which is balanced again afterwards.
    unsafe { asm!("pushfq", "pop {}", out(reg) rflags, options(nomem, preserves_flags)) };
    rflags & (1 << 9) != 0
}

/// The pseudo-descriptor LIDT loads: a 16-bit limit and a 64-bit base.
#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Loads IDTR with `base` and `limit`.
///
/// # Safety
///
/// Until another LIDT, every interrupt and exception is delivered through the table at `base`:
/// it must stay valid (or the guest must mean to fault, as the `fault` guest does).
pub unsafe fn lidt(base: u64, limit: u16) {
    let pointer = DescriptorPointer { limit, base };
    // SAFETY: LIDT reads the 10-byte pseudo-descriptor on our stack; the caller vouches for the
    // table it names.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
}

/// Reads CR2 (the faulting address of the last page fault).
pub fn cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}
