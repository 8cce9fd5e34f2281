//! The CPU the guest is shown must be one it can trust: walks the CPUID leaves and checks them
//! against each other, against what the instructions they announce do, and against the MSRs
//! they imply. The rules are the architecture's (SDM Vol 1 13.2-13.4 for XSAVE, Vol 3A 12.11
//! for the MTRRs, Vol 4 for the MSRs), written here independently of Keel's own model
//! (kernel/hv/src/guest_cpu): a disagreement is a bug in one of them.
//!
//! What it checks: the XSAVE sizes (sub-leaves 0 and 1, for several XCR0 values) follow the
//! standard and compacted layout rules, XSAVE and XSAVEC write nothing past the size CPUID gives,
//! AVX executes when shown, AVX and AVX-512 come with their state components; every MSR of a
//! shown feature (TSC, APIC, SYSENTER, PAT, MTRRs as MTRRcap counts them, SYSCALL, long mode,
//! TSC_AUX, AMD's SYSCFG/HWCR) answers, and MTRR writes are checked as the hardware checks
//! them; the address sizes and the one-processor topology agree with the feature bits.

use core::ptr::addr_of_mut;

use keel_guest_rt::check::Checks;
use keel_guest_rt::cpu::cpuid;

use crate::group::Group;
use crate::msrs::{rdmsr, wrmsr};
use crate::trap::{guarded, Fault, Loaded, Outcome, GP};

fn bit(r: u32, n: u32) -> bool {
    r & (1 << n) != 0
}

/// A page for XSAVE images, 64-byte aligned.
#[repr(C, align(64))]
struct Area([u8; 4096]);
static mut AREA: Area = Area([0; 4096]);
const PATTERN: u8 = 0xA5;

fn xsetbv0(value: u64) -> Option<Fault> {
    guarded!(["xsetbv"], in("ecx") 0, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack))
}

fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV reads XCR0 (CR4.OSXSAVE is set by the caller).
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Fill the area with PATTERN, save into it (`compacted`: XSAVEC, else XSAVE; every component
/// of XCR0), and return the end of the last byte written (0 on an exception).
fn saved_extent(compacted: bool) -> Result<usize, Fault> {
    let area = addr_of_mut!(AREA);
    // SAFETY: only this module touches AREA, from the one vCPU, not re-entrantly.
    let area = unsafe { &mut *area };
    area.0.fill(PATTERN);
    let ptr = area.0.as_mut_ptr();
    // xsave64 [rdi] = 48 0F AE 27, xsavec64 [rdi] = 48 0F C7 27 (as bytes: the guest is built
    // without the XSAVE target features). EDX:EAX all ones: every component XCR0 enables. They
    // write only the 4 KiB page (the sizes checked are far below it).
    let fault = if compacted {
        guarded!([".byte 0x48, 0x0f, 0xc7, 0x27"], in("rdi") ptr, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
    } else {
        guarded!([".byte 0x48, 0x0f, 0xae, 0x27"], in("rdi") ptr, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
    };
    if let Some(f) = fault {
        return Err(f);
    }
    Ok(area.0.iter().rposition(|&b| b != PATTERN).map_or(0, |i| i + 1))
}

/// The XSAVE sizes by the SDM's rules, from the sub-leaves: (standard, compacted).
fn rule_sizes(xcr0: u64) -> (u32, u32) {
    let (mut standard, mut compacted) = (576u32, 576u32);
    for i in 2..64 {
        if xcr0 & (1 << i) == 0 {
            continue;
        }
        let s = cpuid(0xD, i);
        standard = standard.max(s.ebx.saturating_add(s.eax));
        if bit(s.ecx, 1) {
            compacted = compacted.next_multiple_of(64);
        }
        compacted = compacted.saturating_add(s.eax);
    }
    (standard, compacted)
}

/// Leaf 0xD against the layout rules and the instructions.
pub fn xsave(c: &mut Checks) {
    let l1 = cpuid(1, 0);
    let max_basic = cpuid(0, 0).eax;
    if !bit(l1.ecx, 26) {
        let avx = bit(l1.ecx, 28);
        c.check(!avx, format_args!("no XSAVE shown, and so no AVX (leaf 1 ECX {:#x})", l1.ecx));
        return;
    }
    let mut g = Group::new();
    g.item(c, max_basic >= 0xD, "leaf 0xD exists", format_args!("max basic leaf {max_basic:#x}"));
    let d0 = cpuid(0xD, 0);
    let d1 = cpuid(0xD, 1);
    let supported = (u64::from(d0.edx) << 32) | u64::from(d0.eax);
    g.item(c, supported & 3 == 3, "x87 and SSE", format_args!("supported {supported:#x}"));
    let mut layout_ok = true;
    for i in 2..64u32 {
        let s = cpuid(0xD, i);
        let shown = supported & (1 << i) != 0;
        if shown && (s.eax == 0 || s.ebx < 576 || bit(s.ecx, 0)) || !shown && s.eax != 0 && !bit(s.ecx, 0) {
            layout_ok = false;
            c.note(format_args!("leaf 0xD.{i}: {s:x?} for supported {supported:#x}"));
        }
    }
    g.item(c, layout_ok, "sub-leaf per component", format_args!("see above"));
    let all = rule_sizes(supported).0;
    g.item(c, d0.ecx == all, "ECX = size of all", format_args!("ECX {} vs rule {all}", d0.ecx));
    let avx = bit(l1.ecx, 28);
    let avx512f = bit(cpuid(7, 0).ebx, 16);
    g.item(c, !avx || supported & 4 != 0, "AVX has its state", format_args!("supported {supported:#x}"));
    g.item(c, !avx512f || supported & 0xE0 == 0xE0, "AVX-512 has its state", format_args!("{supported:#x}"));
    let avx_family = bit(l1.ecx, 12) || bit(l1.ecx, 29) || bit(cpuid(7, 0).ebx, 5);
    g.item(c, !avx_family || avx, "FMA/F16C/AVX2 come with AVX", format_args!("leaf 1 ECX {:#x}", l1.ecx));
    let xsavec = bit(d1.eax, 1);

    let before = xgetbv0();
    let mut tries = [1u64, 3, 7, supported];
    for x in tries.iter_mut() {
        *x &= supported;
    }
    for xcr0 in tries {
        if xcr0 & 1 == 0 || (xcr0 & 4 != 0 && xcr0 & 2 == 0) {
            continue;
        }
        let fault = xsetbv0(xcr0);
        if !g.item(c, fault.is_none(), "xsetbv", format_args!("XCR0 {xcr0:#x}: {}", Outcome(fault))) {
            continue;
        }
        let osxsave = bit(cpuid(1, 0).ecx, 27);
        g.item(c, osxsave, "OSXSAVE mirrors CR4", format_args!("leaf 1 ECX {:#x}", cpuid(1, 0).ecx));
        let (standard, compacted) = rule_sizes(xcr0);
        let ebx0 = cpuid(0xD, 0).ebx;
        g.item(c, ebx0 == standard, "0xD.0 EBX", format_args!("XCR0 {xcr0:#x}: EBX {ebx0} vs rule {standard}"));
        let written = saved_extent(false);
        g.item(
            c,
            matches!(written, Ok(n) if n <= standard as usize),
            "XSAVE stays in EBX",
            format_args!("XCR0 {xcr0:#x}: wrote up to {written:?}, EBX {standard}"),
        );
        if xsavec {
            let ebx1 = cpuid(0xD, 1).ebx;
            g.item(c, ebx1 == compacted, "0xD.1 EBX", format_args!("XCR0 {xcr0:#x}: EBX {ebx1} vs rule {compacted}"));
            let written = saved_extent(true);
            g.item(
                c,
                matches!(written, Ok(n) if n <= compacted as usize),
                "XSAVEC stays in 0xD.1 EBX",
                format_args!("XCR0 {xcr0:#x}: wrote up to {written:?}, size {compacted}"),
            );
        }
        if xcr0 & 4 != 0 && avx {
            // vxorps ymm0, ymm0, ymm0 (C5 FC 57 C0): nothing else in this guest uses YMM0.
            let fault = guarded!([".byte 0xc5, 0xfc, 0x57, 0xc0"], options(nostack));
            g.item(c, fault.is_none(), "AVX executes", format_args!("vxorps ymm0: {}", Outcome(fault)));
        }
    }
    let _ = xsetbv0(before);
    g.finish(c, format_args!("XSAVE leaves, sizes and instructions agree (supported {supported:#x})"));
}

fn readable(g: &mut Group, c: &Checks, name: &str, index: u32) -> bool {
    let r = rdmsr(index);
    g.item(c, r.is_ok(), name, format_args!("rdmsr {index:#x}: {}", Loaded(r)))
}

/// Every MSR a shown feature implies answers; the MTRRs as MTRRcap describes them.
pub fn implied_msrs(c: &mut Checks) {
    let l1 = cpuid(1, 0);
    let e1 = cpuid(0x8000_0001, 0);
    let mut g = Group::new();
    if bit(l1.edx, 4) {
        readable(&mut g, c, "TSC", 0x10);
    }
    if bit(l1.edx, 9) {
        readable(&mut g, c, "APIC_BASE", 0x1B);
    }
    if bit(l1.edx, 11) {
        for m in [0x174, 0x175, 0x176] {
            readable(&mut g, c, "SYSENTER", m);
        }
    }
    if bit(l1.edx, 16) {
        readable(&mut g, c, "PAT", 0x277);
    }
    if bit(e1.edx, 11) {
        for m in 0xC000_0081..=0xC000_0084 {
            readable(&mut g, c, "SYSCALL", m);
        }
    }
    if bit(e1.edx, 29) {
        for m in [0xC000_0080, 0xC000_0100, 0xC000_0101, 0xC000_0102] {
            readable(&mut g, c, "long mode", m);
        }
    }
    if bit(e1.edx, 27) && readable(&mut g, c, "TSC_AUX", 0xC000_0103) {
        let w = wrmsr(0xC000_0103, 0x2A);
        let aux: u32;
        // RDTSCP (0F 01 F9) returns TSC_AUX in ECX.
        let fault = guarded!([".byte 0x0f, 0x01, 0xf9"], out("ecx") aux, out("eax") _, out("edx") _, options(nostack));
        g.item(
            c,
            w.is_ok() && fault.is_none() && aux == 0x2A,
            "RDTSCP",
            format_args!("wrmsr {:?}, rdtscp {} ECX {aux:#x}", w.is_ok(), Outcome(fault)),
        );
    }
    let amd = [cpuid(0, 0).ebx, cpuid(0, 0).ecx, cpuid(0, 0).edx] == [0x6874_7541, 0x444D_4163, 0x6974_6E65];
    if amd {
        for (name, m) in [("SYSCFG", 0xC001_0010), ("HWCR", 0xC001_0015), ("INT_PENDING_MSG", 0xC001_0055)] {
            readable(&mut g, c, name, m);
        }
    }
    if !bit(l1.ecx, 21) {
        let r = rdmsr(0x802);
        g.item(c, matches!(r, Err(Fault { vector: GP, .. })), "no x2APIC MSRs", format_args!("rdmsr 0x802: {r:x?}"));
    }
    if bit(l1.edx, 12) {
        mtrrs(&mut g, c);
    }
    g.finish(c, format_args!("the MSRs the shown features imply"));
}

/// MTRRcap's count of variable ranges, the fixed ranges, and the hardware's write checks.
fn mtrrs(g: &mut Group, c: &Checks) {
    let Ok(cap) = rdmsr(0xFE) else {
        g.item(c, false, "MTRRcap", format_args!("rdmsr 0xfe faults with MTRR shown"));
        return;
    };
    let vcnt = (cap & 0xFF) as u32;
    readable(g, c, "MTRRdefType", 0x2FF);
    for i in 0..2 * vcnt {
        readable(g, c, "variable MTRR", 0x200 + i);
    }
    if cap & (1 << 8) != 0 {
        for m in [0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F] {
            readable(g, c, "fixed MTRR", m);
        }
    }
    let past = rdmsr(0x200 + 2 * vcnt);
    g.item(c, past.is_err(), "no range past VCNT", format_args!("rdmsr {:#x}: {past:x?}", 0x200 + 2 * vcnt));
    if vcnt == 0 {
        return;
    }
    let phys = crate::memory::phys_bits();
    let addr_mask = ((1u64 << phys) - 1) & !0xFFF;
    // Range 0: 256 MiB at 0, write-back; read back; then the reserved encodings are #GP.
    let base = 6u64;
    let mask = (addr_mask & !((256 << 20) - 1)) | (1 << 11);
    let (old_base, old_mask) = (rdmsr(0x200), rdmsr(0x201));
    let wb = wrmsr(0x200, base).and(wrmsr(0x201, mask));
    let back = (rdmsr(0x200), rdmsr(0x201));
    g.item(
        c,
        wb.is_ok() && back == (Ok(base), Ok(mask)),
        "variable MTRR reads back",
        format_args!("wrote {base:#x}/{mask:#x}: {wb:?}, read {back:x?}"),
    );
    let bad_type = wrmsr(0x200, 2);
    g.item(c, matches!(bad_type, Err(Fault { vector: GP, .. })), "type 2 is #GP", format_args!("{bad_type:?}"));
    if phys < 52 {
        let wide = wrmsr(0x201, mask | (1u64 << phys));
        g.item(c, matches!(wide, Err(Fault { vector: GP, .. })), "mask past MAXPHYADDR #GP", format_args!("{wide:?}"));
    }
    let cap_write = wrmsr(0xFE, cap);
    g.item(c, cap_write.is_err(), "MTRRcap is read-only", format_args!("{cap_write:?}"));
    if let (Ok(b), Ok(m)) = (old_base, old_mask) {
        let _ = wrmsr(0x201, m).and(wrmsr(0x200, b));
    }
}

/// Address sizes and topology agree with the feature bits.
pub fn sizes_and_topology(c: &mut Checks) {
    let mut g = Group::new();
    let max_ext = cpuid(0x8000_0000, 0).eax;
    let lm = bit(cpuid(0x8000_0001, 0).edx, 29);
    g.item(c, !lm || max_ext >= 0x8000_0008, "0x80000008 with LM", format_args!("max extended {max_ext:#x}"));
    let a = cpuid(0x8000_0008, 0).eax;
    let (phys, linear) = (a & 0xFF, (a >> 8) & 0xFF);
    let la57 = bit(cpuid(7, 0).ecx, 16);
    g.item(c, (36..=52).contains(&phys), "physical width", format_args!("{phys} bits"));
    g.item(c, linear == if la57 { 57 } else { 48 }, "linear width", format_args!("{linear} bits, LA57 {la57}"));
    let l1 = cpuid(1, 0);
    let logical = (l1.ebx >> 16) & 0xFF;
    g.item(c, logical >= 1, "logical processors", format_args!("leaf 1 EBX {:#x}", l1.ebx));
    let hv = cpuid(0x4000_0000, 0).eax;
    g.item(c, (0x4000_0000..0x4001_0000).contains(&hv), "hypervisor leaf maximum", format_args!("{hv:#x}"));
    g.finish(c, format_args!("address sizes, topology and hypervisor leaves agree"));
}
