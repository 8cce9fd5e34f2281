//! Virtualization instructions (SVM, VMX, SMX and a few neighbours): each must give the guest
//! #UD. Keel intercepts the SVM instructions (VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT,
//! INVLPGA, RDPRU) and the VMX ones (which always exit in VMX non-root operation) and injects #UD;
//! the other vendor's instructions are #UD on the hardware anyway. MONITOR/MWAIT are hidden by
//! CPUID and must be #UD too. The instructions are written as bytes, so the assembler's idea of
//! which of them exist does not matter. RAX (and RCX, RDX) point at a scratch page of guest RAM,
//! so even an instruction that ran would only touch this guest's memory.
//!
//! Also here: INVD (harmless: Keel skips it), CR4.VMXE (#GP: the guest cannot turn VMX on) and
//! XSETBV with invalid values (#GP).

use core::sync::atomic::{AtomicU32, Ordering};

use keel_guest_rt::check::Checks;
use keel_guest_rt::idt::{self, InterruptFrame};
use keel_guest_rt::{cpu, pic, pit};

use crate::group::Group;
use crate::trap::guarded;
use crate::trap::{Fault, Outcome, GP, UD};

#[repr(C, align(4096))]
struct Scratch(core::cell::UnsafeCell<[u8; 4096]>);

// SAFETY: only the CPU writes it, if an instruction that should fault did not.
unsafe impl Sync for Scratch {}

/// What the instructions' memory operands point at (in guest RAM).
static SCRATCH: Scratch = Scratch(core::cell::UnsafeCell::new([0; 4096]));

/// Runs one instruction given as bytes under a guard, with RAX = the scratch page and RCX = RDX
/// = 0; evaluates to the exception it raised.
macro_rules! try_bytes {
    ($bytes:literal) => {{
        let page = SCRATCH.0.get() as u64;
        guarded!(
            [$bytes],
            inout("rax") page => _,
            inout("rcx") 0u64 => _,
            inout("rdx") 0u64 => _,
        )
    }};
}

fn expect_ud(g: &mut Group, c: &Checks, name: &str, fault: Option<Fault>) {
    g.item(c, matches!(fault, Some(Fault { vector: UD, .. })), name, format_args!("want #UD, got {}", Outcome(fault)));
}

pub fn virtualization_instructions(c: &mut Checks) {
    let mut g = Group::new();
    // SVM.
    expect_ud(&mut g, c, "vmrun", try_bytes!(".byte 0x0f, 0x01, 0xd8"));
    expect_ud(&mut g, c, "vmmcall", try_bytes!(".byte 0x0f, 0x01, 0xd9"));
    expect_ud(&mut g, c, "vmload", try_bytes!(".byte 0x0f, 0x01, 0xda"));
    expect_ud(&mut g, c, "vmsave", try_bytes!(".byte 0x0f, 0x01, 0xdb"));
    expect_ud(&mut g, c, "stgi", try_bytes!(".byte 0x0f, 0x01, 0xdc"));
    expect_ud(&mut g, c, "clgi", try_bytes!(".byte 0x0f, 0x01, 0xdd"));
    expect_ud(&mut g, c, "skinit", try_bytes!(".byte 0x0f, 0x01, 0xde"));
    expect_ud(&mut g, c, "invlpga", try_bytes!(".byte 0x0f, 0x01, 0xdf"));
    expect_ud(&mut g, c, "vmgexit", try_bytes!(".byte 0xf3, 0x0f, 0x01, 0xd9"));
    expect_ud(&mut g, c, "rdpru", try_bytes!(".byte 0x0f, 0x01, 0xfd"));
    // VMX: the memory forms use [rax] (ModRM 0x30 = /6, 0x38 = /7, 0x08 = rcx, [rax]).
    expect_ud(&mut g, c, "vmxon", try_bytes!(".byte 0xf3, 0x0f, 0xc7, 0x30"));
    expect_ud(&mut g, c, "vmcall", try_bytes!(".byte 0x0f, 0x01, 0xc1"));
    expect_ud(&mut g, c, "vmlaunch", try_bytes!(".byte 0x0f, 0x01, 0xc2"));
    expect_ud(&mut g, c, "vmresume", try_bytes!(".byte 0x0f, 0x01, 0xc3"));
    expect_ud(&mut g, c, "vmxoff", try_bytes!(".byte 0x0f, 0x01, 0xc4"));
    expect_ud(&mut g, c, "vmptrld", try_bytes!(".byte 0x0f, 0xc7, 0x30"));
    expect_ud(&mut g, c, "vmptrst", try_bytes!(".byte 0x0f, 0xc7, 0x38"));
    expect_ud(&mut g, c, "vmclear", try_bytes!(".byte 0x66, 0x0f, 0xc7, 0x30"));
    expect_ud(&mut g, c, "vmread", try_bytes!(".byte 0x0f, 0x78, 0xc8"));
    expect_ud(&mut g, c, "vmwrite", try_bytes!(".byte 0x0f, 0x79, 0xc8"));
    expect_ud(&mut g, c, "invept", try_bytes!(".byte 0x66, 0x0f, 0x38, 0x80, 0x08"));
    expect_ud(&mut g, c, "invvpid", try_bytes!(".byte 0x66, 0x0f, 0x38, 0x81, 0x08"));
    expect_ud(&mut g, c, "vmfunc", try_bytes!(".byte 0x0f, 0x01, 0xd4"));
    // SMX.
    expect_ud(&mut g, c, "getsec", try_bytes!(".byte 0x0f, 0x37"));
    // MONITOR/MWAIT (hidden by CPUID) and AMD's MONITORX/MWAITX.
    expect_ud(&mut g, c, "monitor", try_bytes!(".byte 0x0f, 0x01, 0xc8"));
    expect_ud(&mut g, c, "mwait", try_bytes!(".byte 0x0f, 0x01, 0xc9"));
    expect_ud(&mut g, c, "monitorx", try_bytes!(".byte 0x0f, 0x01, 0xfa"));
    expect_ud(&mut g, c, "mwaitx", try_bytes!(".byte 0x0f, 0x01, 0xfb"));
    g.finish(c, format_args!("virtualization instructions give #UD"));

    // INVD: Keel intercepts it and skips it (the guest's caches are the host's).
    let fault = try_bytes!(".byte 0x0f, 0x08");
    c.check(fault.is_none(), format_args!("invd is harmless (got {})", Outcome(fault)));
}

/// Whether the CPU says GenuineIntel.
pub fn is_intel() -> bool {
    let r = cpu::cpuid(0, 0);
    [r.ebx, r.edx, r.ecx] == [0x756E_6547, 0x4965_6E69, 0x6C65_746E]
}

/// CR4.VMXE cannot be set: #GP (Intel's VMXE belongs to Keel, which keeps it from the guest).
/// Tried on Intel only: on AMD bit 13 is reserved, which the hardware enforces (#GP) without
/// Keel, and QEMU's TCG does not enforce it: the guest's CR4 keeps the bit, VMRUN refuses the
/// state and the VM is stopped ("the CPU refused the guest state") - harmless, but the end of
/// this guest.
pub fn cr4_vmxe(c: &mut Checks) {
    if !is_intel() {
        c.note(format_args!("CR4.VMXE: not tried (not an Intel CPU: bit 13 is reserved there)"));
        return;
    }
    let cr4: u64;
    // SAFETY: reading CR4 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags)) };
    let value = cr4 | (1 << 13);
    // Setting VMXE changes nothing the guest relies on if it were accepted.
    let fault = guarded!(["mov cr4, {v}"], v = in(reg) value, options(nostack));
    let after: u64;
    // SAFETY: as above.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) after, options(nomem, nostack, preserves_flags)) };
    c.check(
        matches!(fault, Some(Fault { vector: GP, .. })) && after & (1 << 13) == 0,
        format_args!("mov cr4 with VMXE set gives #GP (got {}, cr4 now {after:#x})", Outcome(fault)),
    );
}

fn xsetbv(index: u32, value: u64) -> Option<Fault> {
    // XSETBV loads XCR[index]; the values tried keep x87 (the guest is soft-float anyway).
    guarded!(
        ["xsetbv"],
        in("ecx") index,
        in("eax") value as u32,
        in("edx") (value >> 32) as u32,
        options(nostack)
    )
}

fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV reads XCR0 (CR4.OSXSAVE is set by the caller).
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// XSETBV: invalid values are #GP and leave XCR0 alone; a valid one (x87|SSE) is taken.
pub fn xsetbv_values(c: &mut Checks) {
    if cpu::cpuid(1, 0).ecx & (1 << 26) == 0 {
        c.note(format_args!("no XSAVE in CPUID: xsetbv is #UD; checking that"));
        let fault = xsetbv(0, 1);
        c.check(
            matches!(fault, Some(Fault { vector: UD, .. })),
            format_args!("xsetbv without XSAVE gives #UD (got {})", Outcome(fault)),
        );
        return;
    }
    let cr4: u64;
    // SAFETY: reading CR4 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags)) };
    let fault = guarded!(["mov cr4, {v}"], v = in(reg) cr4 | (1 << 18), options(nostack));
    if !c.check(fault.is_none(), format_args!("CR4.OSXSAVE can be set (XSAVE is in CPUID) (got {})", Outcome(fault))) {
        return;
    }
    let supported = {
        let r = cpu::cpuid(0xD, 0);
        (u64::from(r.edx) << 32) | u64::from(r.eax)
    };
    c.note(format_args!("XCR0 {:#x}, CPUID.0xD supported components {supported:#x}", xgetbv0()));
    let before = xgetbv0();
    let mut g = Group::new();
    let invalid: [(&str, u32, u64); 6] = [
        ("XCR0=0", 0, 0),
        ("XCR0=x87|AVX", 0, 0b101),
        ("XCR0=~0", 0, u64::MAX),
        ("XCR0 bit 63", 0, 1 | (1 << 63)),
        ("XCR1=1", 1, 1),
        ("XCR 0xffffffff", 0xFFFF_FFFF, 1),
    ];
    for (name, index, value) in invalid {
        let fault = xsetbv(index, value);
        let now = xgetbv0();
        g.item(
            c,
            matches!(fault, Some(Fault { vector: GP, .. })) && now == before,
            name,
            format_args!("want #GP and XCR0 {before:#x}, got {} and XCR0 {now:#x}", Outcome(fault)),
        );
    }
    g.finish(c, format_args!("xsetbv with invalid values gives #GP, XCR0 unchanged"));
    if supported & 0b11 == 0b11 {
        // x87|SSE with SSE state in use (OSFXSR on, XMM0 all ones), then back to x87 only, with
        // halts in between so that other vCPUs run (the FPU area changes hands): the area saved
        // under x87|SSE is restored under the smaller XCR0 (an XRSTOR #GP in the host, a kernel
        // panic, before fpu.rs restored under every allowed component). Another VM must be
        // running for this to mean anything (the system test runs `spinner`).
        let fault = xsetbv(0, 0b11);
        let now = xgetbv0();
        let sse = guarded!(["mov cr4, {v}"], v = in(reg) cr4 | (1 << 18) | (1 << 9), options(nostack)).or_else(|| {
            // pcmpeqd xmm0, xmm0 (as bytes: the guest is built without SSE; nothing else uses XMM0).
            guarded!([".byte 0x66, 0x0f, 0x76, 0xc0"], options(nostack))
        });
        c.note(format_args!("XCR0 {now:#x}, SSE state in use ({}); halting so that other vCPUs run", Outcome(sse)));
        let_others_run();
        let fault1 = xsetbv(0, 1);
        let now1 = xgetbv0();
        c.note(format_args!("XCR0 back to {now1:#x}; halting again"));
        let_others_run();
        c.check(
            fault.is_none() && now == 0b11 && sse.is_none() && fault1.is_none() && xgetbv0() == 1,
            format_args!(
                "xsetbv XCR0 = x87|SSE, SSE used, then x87, with vCPU switches between (got {} and XCR0 {now:#x}, then {} and XCR0 {now1:#x})",
                Outcome(fault),
                Outcome(fault1)
            ),
        );
    }
}

static TICKS: AtomicU32 = AtomicU32::new(0);

/// IRQ 0-15 (vectors 0x20-0x2F): count timer ticks; EOI all but the spurious IRQ 7 and 15.
fn irq(frame: &mut InterruptFrame) {
    let line = (frame.vector - 0x20) as u8;
    if line == 0 {
        TICKS.fetch_add(1, Ordering::SeqCst);
    }
    if line != 7 && line != 15 {
        pic::eoi(line);
    }
}

/// Halts until 3 timer ticks (PIT at 100 Hz through the PIC) have passed: the vCPU thread blocks,
/// so other VMs' vCPUs run on the CPU meanwhile (and take the FPU over). Leaves every IRQ masked
/// and interrupts off.
fn let_others_run() {
    pic::remap(0x20, 0x28);
    for vector in 0x20..0x30 {
        idt::set_handler(vector, irq);
    }
    pic::set_masks(!1, 0xFF);
    pit::start_periodic(100);
    let start = TICKS.load(Ordering::SeqCst);
    while TICKS.load(Ordering::SeqCst) < start + 3 {
        // SAFETY: every vector has a gate (trap::install), IRQ vectors have `irq`; the STI shadow
        // keeps a tick from arriving between the check and the HLT.
        unsafe { cpu::enable_and_halt() };
        cpu::cli();
    }
    pic::set_masks(0xFF, 0xFF);
}
