//! MSRs that would break isolation if a guest reached the host's: each is #GP or a harmless
//! emulation (kernel/hv/src/msr.rs is the policy), and the guest goes on.

use keel_guest_rt::check::Checks;

use crate::group::Group;
use crate::rng::Rng;
use crate::trap::guarded;
use crate::trap::{Fault, Outcome, GP};

pub const EFER: u32 = 0xC000_0080;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_SVME: u64 = 1 << 12;
const VM_HSAVE_PA: u32 = 0xC001_0117;
const VM_CR: u32 = 0xC001_0114;
const FEATURE_CONTROL: u32 = 0x3A;
const APIC_BASE: u32 = 0x1B;
const PAT: u32 = 0x277;
const KVM_WALL_CLOCK: u32 = 0x4B56_4D00;
const KVM_SYSTEM_TIME: u32 = 0x4B56_4D01;

pub fn rdmsr(index: u32) -> Result<u64, Fault> {
    let (lo, hi): (u32, u32);
    // RDMSR only reads; a refused index is #GP, which the guard catches.
    match guarded!(["rdmsr"], in("ecx") index, inout("eax") 0u32 => lo, inout("edx") 0u32 => hi, options(nostack)) {
        None => Ok((u64::from(hi) << 32) | u64::from(lo)),
        Some(f) => Err(f),
    }
}

pub fn wrmsr(index: u32, value: u64) -> Result<(), Fault> {
    // WRMSR of the values this module picks: each either is refused (#GP, caught) or changes only
    // this guest's own state, which the module restores where it matters.
    match guarded!(["wrmsr"], in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack))
    {
        None => Ok(()),
        Some(f) => Err(f),
    }
}

fn is_gp<T>(r: &Result<T, Fault>) -> bool {
    matches!(r, Err(Fault { vector: GP, .. }))
}

fn outcome<T>(r: &Result<T, Fault>) -> Outcome {
    Outcome(r.as_ref().err().copied())
}

/// A write that must be refused with #GP, leaving the MSR as it was.
fn expect_refused(g: &mut Group, c: &Checks, name: &str, index: u32, value: u64) {
    let before = rdmsr(index);
    let w = wrmsr(index, value);
    let after = rdmsr(index);
    g.item(
        c,
        is_gp(&w) && before == after,
        name,
        format_args!(
            "wrmsr {index:#x} = {value:#x}: want #GP and no change, got {} ({before:x?} -> {after:x?})",
            outcome(&w)
        ),
    );
}

pub fn efer(c: &mut Checks) {
    let efer = match rdmsr(EFER) {
        Ok(v) => v,
        Err(f) => {
            c.check(false, format_args!("rdmsr EFER (got {f})"));
            return;
        }
    };
    let mut g = Group::new();
    g.item(
        c,
        efer & (EFER_LME | EFER_LMA) == EFER_LME | EFER_LMA && efer & EFER_SVME == 0,
        "reads LME|LMA without SVME",
        format_args!("EFER reads {efer:#x}"),
    );
    expect_refused(&mut g, c, "+SVME #GP", EFER, efer | EFER_SVME);
    expect_refused(&mut g, c, "-LME while paging #GP", EFER, efer & !EFER_LME);
    expect_refused(&mut g, c, "+bit 1 #GP", EFER, efer | (1 << 1));
    expect_refused(&mut g, c, "+bit 63 #GP", EFER, efer | (1 << 63));
    // LMA is read-only: a write without it is taken, and long mode stays active.
    let w = wrmsr(EFER, efer & !EFER_LMA);
    let after = rdmsr(EFER);
    g.item(
        c,
        w.is_ok() && after == Ok(efer),
        "-LMA taken, LMA kept",
        format_args!("got {}, EFER {after:x?}", outcome(&w)),
    );
    g.finish(c, format_args!("EFER (reads {efer:#x})"));
}

pub fn virtualization_msrs(c: &mut Checks) {
    let mut g = Group::new();
    let r = rdmsr(VM_HSAVE_PA);
    g.item(c, is_gp(&r), "VM_HSAVE_PA read #GP", format_args!("got {}", outcome(&r)));
    expect_refused(&mut g, c, "VM_HSAVE_PA=0 #GP", VM_HSAVE_PA, 0);
    expect_refused(&mut g, c, "VM_HSAVE_PA=1M #GP", VM_HSAVE_PA, 0x10_0000);

    match rdmsr(VM_CR) {
        Ok(v) => {
            g.item(c, v & (1 << 4) != 0, "VM_CR reads SVMDIS", format_args!("VM_CR reads {v:#x}"));
            expect_refused(&mut g, c, "VM_CR=0 #GP", VM_CR, 0);
            expect_refused(&mut g, c, "VM_CR+LOCK #GP", VM_CR, v | (1 << 3));
        }
        Err(f) => {
            g.item(c, f.vector == GP, "VM_CR read #GP", format_args!("got {f}"));
        }
    }

    match rdmsr(FEATURE_CONTROL) {
        Ok(v) => {
            g.item(
                c,
                v & 1 != 0 && v & 0b110 == 0,
                "FEATURE_CONTROL locked, VMX off",
                format_args!("IA32_FEATURE_CONTROL reads {v:#x}"),
            );
            expect_refused(&mut g, c, "FEATURE_CONTROL+VMX #GP", FEATURE_CONTROL, 0b101);
            expect_refused(&mut g, c, "FEATURE_CONTROL=0 #GP", FEATURE_CONTROL, 0);
        }
        Err(f) => {
            g.item(c, f.vector == GP, "FEATURE_CONTROL read #GP", format_args!("got {f}"));
        }
    }

    let mut refused = 0;
    for index in 0x480..=0x491 {
        if is_gp(&rdmsr(index)) {
            refused += 1;
        }
    }
    g.item(c, refused == 18, "VMX capability MSRs read #GP", format_args!("{refused} of 18 (0x480-0x491) give #GP"));
    expect_refused(&mut g, c, "VMX_BASIC write #GP", 0x480, 0);
    g.finish(c, format_args!("SVM and VMX control MSRs refused"));
}

pub fn apic_base(c: &mut Checks) {
    let Ok(v) = rdmsr(APIC_BASE) else {
        c.check(false, format_args!("rdmsr APIC_BASE"));
        return;
    };
    let mut g = Group::new();
    g.item(c, v & !0xFFF == 0xFEE0_0000, "at 0xfee00000", format_args!("APIC_BASE reads {v:#x}"));
    expect_refused(&mut g, c, "onto the test register #GP", APIC_BASE, 0xFEB0_0000 | (v & 0xFFF));
    expect_refused(&mut g, c, "to 4 GiB #GP", APIC_BASE, 0x1_0000_0000 | (v & 0xFFF));
    expect_refused(&mut g, c, "x2APIC #GP", APIC_BASE, v | (1 << 10));
    let w = wrmsr(APIC_BASE, v);
    g.item(c, w.is_ok(), "own value taken", format_args!("got {}", outcome(&w)));
    g.finish(c, format_args!("APIC_BASE ({v:#x}) cannot be relocated"));
}

/// Address MSRs refuse non-canonical values (the kernel loads some of them into the CPU: a
/// non-canonical one would fault in the host) and take canonical ones.
pub fn canonical(c: &mut Checks) {
    let msrs: [(&str, u32); 7] = [
        ("LSTAR", 0xC000_0082),
        ("CSTAR", 0xC000_0083),
        ("KERNEL_GS_BASE", 0xC000_0102),
        ("FS_BASE", 0xC000_0100),
        ("GS_BASE", 0xC000_0101),
        ("SYSENTER_ESP", 0x175),
        ("SYSENTER_EIP", 0x176),
    ];
    let mut g = Group::new();
    let bad = [0x0000_8000_0000_0000, 0x8000_0000_0000_0000, 0xDEAD_BEEF_DEAD_BEEF, 0x7FFF_FFFF_FFFF_F000];
    let good = 0xFFFF_8000_DEAD_B000;
    for (name, index) in msrs {
        let Ok(old) = rdmsr(index) else {
            g.item(c, false, name, format_args!("rdmsr {index:#x} faults"));
            continue;
        };
        let mut refused = 0;
        for value in bad {
            let w = wrmsr(index, value);
            if is_gp(&w) && rdmsr(index) == Ok(old) {
                refused += 1;
            }
        }
        let w = wrmsr(index, good);
        let back = rdmsr(index);
        let _ = wrmsr(index, old);
        g.item(
            c,
            refused == bad.len() && w.is_ok() && back == Ok(good),
            name,
            format_args!(
                "{refused} of {} non-canonical values refused; {good:#x}: {}, read back {back:x?}",
                bad.len(),
                outcome(&w)
            ),
        );
    }
    g.finish(c, format_args!("non-canonical values refused with #GP, canonical {good:#x} taken"));
    // Values with every bit set: taken (masked) or refused, never a fault in the host.
    let mut g = Group::new();
    for (name, index) in [("STAR", 0xC000_0081), ("SFMASK", 0xC000_0084), ("SYSENTER_CS", 0x174)] {
        let old = rdmsr(index).unwrap_or(0);
        let w = wrmsr(index, u64::MAX);
        let back = rdmsr(index);
        let _ = wrmsr(index, old);
        g.item(c, w.is_ok() || is_gp(&w), name, format_args!("got {}, read back {back:x?}", outcome(&w)));
    }
    let old = rdmsr(PAT).unwrap_or(0x0007_0406_0007_0406);
    expect_refused(&mut g, c, "PAT type 2 #GP", PAT, 0x0202_0202_0202_0202);
    expect_refused(&mut g, c, "PAT type 8 #GP", PAT, 0x0008_0406_0007_0406);
    let now = rdmsr(PAT);
    g.item(c, now == Ok(old), "PAT kept", format_args!("PAT {now:x?}, was {old:#x}"));
    g.finish(c, format_args!("all-ones STAR/SFMASK/SYSENTER_CS taken or #GP; invalid PAT #GP"));
}

#[repr(C, align(4096))]
struct Sentinel(core::cell::UnsafeCell<[u8; 4096]>);

// SAFETY: one CPU; written by this module and (if a check fails) by the hypervisor.
unsafe impl Sync for Sentinel {}

static SENTINEL: Sentinel = Sentinel(core::cell::UnsafeCell::new([0; 4096]));
const SENTINEL_BYTE: u8 = 0xA5;

fn sentinel_fill() {
    for i in 0..64 {
        // SAFETY: the page is this module's; volatile, because the hypervisor may write it.
        unsafe { core::ptr::write_volatile(sentinel_byte(i), SENTINEL_BYTE) };
    }
}

fn sentinel_intact() -> bool {
    // SAFETY: as in sentinel_fill.
    (0..64).all(|i| unsafe { core::ptr::read_volatile(sentinel_byte(i)) } == SENTINEL_BYTE)
}

/// Byte `i` (below 64) of the sentinel page.
fn sentinel_byte(i: usize) -> *mut u8 {
    // SAFETY: `i` is below 64, inside the 4096-byte page.
    unsafe { (SENTINEL.0.get() as *mut u8).add(i) }
}

/// The KVM-compatible clock MSRs make the hypervisor write guest memory at an address the guest
/// names: addresses outside its RAM must be ignored, never wrapped onto RAM (or anything else).
pub fn paravirtual_clock(c: &mut Checks, ram_size: u64) {
    let page = SENTINEL.0.get() as u64;
    let mut g = Group::new();
    // First the control: a valid address is written (version 2 in the first 4 bytes).
    sentinel_fill();
    let w = wrmsr(KVM_SYSTEM_TIME, page | 1);
    // SAFETY: as in sentinel_fill.
    let version = unsafe { core::ptr::read_volatile(page as *const u32) };
    let _ = wrmsr(KVM_SYSTEM_TIME, 0);
    g.item(
        c,
        w.is_ok() && version != u32::from_le_bytes([SENTINEL_BYTE; 4]),
        "RAM written",
        format_args!("system time at {page:#x}: {}, version {version:#x}", outcome(&w)),
    );
    for high in [1u64 << 40, 1 << 48, 1 << 52, 1 << 63, 0xFFFF_0000_0000_0000] {
        sentinel_fill();
        let w1 = wrmsr(KVM_SYSTEM_TIME, (high | page) | 1);
        let _ = wrmsr(KVM_SYSTEM_TIME, 0);
        let w2 = wrmsr(KVM_WALL_CLOCK, high | page);
        let mut name = keel_guest_rt::check::FixedStr::<32>::new();
        let _ = core::fmt::Write::write_fmt(&mut name, format_args!("{:#x} no alias", high | page));
        g.item(
            c,
            sentinel_intact(),
            name.as_str(),
            format_args!("RAM at {page:#x} was written (system time: {}, wall clock: {})", outcome(&w1), outcome(&w2)),
        );
    }
    // Addresses at the edges: past the end of RAM, straddling it, the very top.
    for gpa in [ram_size, ram_size - 4, !1u64, u64::MAX - 3] {
        let w1 = wrmsr(KVM_SYSTEM_TIME, gpa | 1);
        let _ = wrmsr(KVM_SYSTEM_TIME, 0);
        let w2 = wrmsr(KVM_WALL_CLOCK, gpa);
        let mut name = keel_guest_rt::check::FixedStr::<32>::new();
        let _ = core::fmt::Write::write_fmt(&mut name, format_args!("{gpa:#x}"));
        g.item(
            c,
            (w1.is_ok() || is_gp(&w1)) && (w2.is_ok() || is_gp(&w2)),
            name.as_str(),
            format_args!("system time: {}, wall clock: {}", outcome(&w1), outcome(&w2)),
        );
    }
    g.finish(c, format_args!("pvclock MSRs write RAM only at RAM addresses"));
}

/// MSRs that reach the machine: microcode loading, SMM, memory map, speculation controls,
/// x2APIC (IPIs to host CPUs), P-states, performance counters, other hypervisors' interfaces.
/// Each must be #GP for reads and writes.
pub fn dangerous(c: &mut Checks) {
    let list: &[(&str, u32)] = &[
        ("BIOS_UPDT_TRIG (microcode load)", 0x79),
        ("PATCH_LOADER (AMD microcode load)", 0xC001_0020),
        ("SMBASE", 0x9E),
        ("SMRR_PHYSBASE", 0x1F2),
        ("SMRR_PHYSMASK", 0x1F3),
        ("SMM_BASE", 0xC001_0111),
        ("SMM_ADDR", 0xC001_0112),
        ("SMM_MASK", 0xC001_0113),
        ("TOP_MEM", 0xC001_001A),
        ("TOM2", 0xC001_001D),
        ("MMIO_CFG_BASE", 0xC001_0058),
        ("SEV_STATUS", 0xC001_0131),
        ("SPEC_CTRL", 0x48),
        ("PRED_CMD", 0x49),
        ("ARCH_CAPABILITIES", 0x10A),
        ("FLUSH_CMD", 0x10B),
        ("DEBUGCTL", 0x1D9),
        ("IA32_XSS", 0xDA0),
        ("x2APIC ID", 0x802),
        ("x2APIC EOI", 0x80B),
        ("x2APIC ICR (IPIs)", 0x830),
        ("PERF_CTL (P-state)", 0x199),
        ("AMD P-state control", 0xC001_0062),
        ("PERFEVTSEL0", 0x186),
        ("PERF_GLOBAL_CTRL", 0x38F),
        ("AMD PERF_CTL0", 0xC001_0000),
        ("Hyper-V GUEST_OS_ID", 0x4000_0000),
        ("Hyper-V HYPERCALL", 0x4000_0001),
        ("KVM async page fault", 0x4B56_4D02),
        ("KVM steal time", 0x4B56_4D03),
        ("KVM PV EOI", 0x4B56_4D04),
    ];
    let mut bad = 0;
    for &(name, index) in list {
        let r = rdmsr(index);
        let w = wrmsr(index, 0);
        let w2 = wrmsr(index, u64::MAX);
        if !(is_gp(&r) && is_gp(&w) && is_gp(&w2)) {
            bad += 1;
            c.note(format_args!(
                "{name} ({index:#x}): read {}, write 0 {}, write all ones {}",
                outcome(&r),
                outcome(&w),
                outcome(&w2)
            ));
        }
    }
    c.check(bad == 0, format_args!("{} machine-level MSRs give #GP on read and write ({bad} do not)", list.len()));
    // AMD registers Linux reads unguarded get fixed values: readable, and no other value is taken
    // (the host's registers are never reached).
    let fixed: &[(&str, u32)] = &[("SYSCFG", 0xC001_0010), ("HWCR", 0xC001_0015), ("INT_PENDING_MSG", 0xC001_0055)];
    let mut g = Group::new();
    for &(name, index) in fixed {
        let before = rdmsr(index);
        let w = wrmsr(index, u64::MAX);
        let after = rdmsr(index);
        g.item(
            c,
            before.is_ok() && is_gp(&w) && before == after,
            name,
            format_args!("read {before:x?}, write all ones {}, then {after:x?}", outcome(&w)),
        );
    }
    g.finish(c, format_args!("AMD's SYSCFG, HWCR and interrupt pending register read fixed values"));
}

/// Random MSR indices: a readable one takes its own value back (harmless by construction); a
/// refused one refuses a random write too.
pub fn random(c: &mut Checks, rng: &mut Rng, count: u32) {
    let (mut readable, mut refused, mut odd) = (0u32, 0u32, 0u32);
    for _ in 0..count {
        let index = match rng.below(6) {
            0 => rng.below(0x2000) as u32,
            1 => 0x4000_0000 + rng.below(0x200) as u32,
            2 => 0xC000_0000 + rng.below(0x2000) as u32,
            3 => 0xC001_0000 + rng.below(0x2000) as u32,
            _ => rng.next() as u32,
        };
        match rdmsr(index) {
            Ok(value) => {
                readable += 1;
                let w = wrmsr(index, value);
                if w.is_err() && odd < 8 {
                    c.note(format_args!("MSR {index:#x}: read {value:#x}, but writing it back gives {}", outcome(&w)));
                }
                odd += u32::from(w.is_err());
            }
            Err(f) if f.vector == GP => {
                refused += 1;
                let w = wrmsr(index, rng.next());
                if !is_gp(&w) {
                    if odd < 8 {
                        c.note(format_args!("MSR {index:#x}: read gives #GP, but a write gives {}", outcome(&w)));
                    }
                    odd += 1;
                }
            }
            Err(f) => {
                if odd < 8 {
                    c.note(format_args!("MSR {index:#x}: read gives {f}"));
                }
                odd += 1;
            }
        }
    }
    c.check(
        odd == 0,
        format_args!(
            "{count} random MSRs: {readable} read and rewritten, {refused} #GP on read and write, {odd} otherwise"
        ),
    );
}
