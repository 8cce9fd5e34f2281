//! `cpuid`: checks what Keel's CPUID shows a guest (docs/guests.md): the hypervisor bit set,
//! VMX and SVM hidden, the `KeelKeelKeel` leaf at 0x40000000, and leaves that agree with each
//! other and with the mode the guest runs in (long mode, so LM and PAE must be reported).
//!
//! Verdict: `PASS cpuid`, or `FAIL cpuid: <first failed check>`.
#![no_std]
#![no_main]

use keel_guest_rt::check::Checks;
use keel_guest_rt::cpu::{cpuid, Cpuid};

keel_guest_rt::entry!(run);

const HYPERVISOR_BASE: u32 = 0x4000_0000;
const EXTENDED_BASE: u32 = 0x8000_0000;

/// Leaf 1 ECX bit 5: VMX.
const ECX1_VMX: u32 = 1 << 5;
/// Leaf 1 ECX bit 31: running under a hypervisor.
const ECX1_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX bit 6: PAE.
const EDX1_PAE: u32 = 1 << 6;
/// Leaf 0x80000001 ECX bit 2: SVM.
const ECX_EXT1_SVM: u32 = 1 << 2;
/// Leaf 0x80000001 EDX bit 29: long mode.
const EDX_EXT1_LM: u32 = 1 << 29;

/// The 12 vendor bytes in EBX, EDX, ECX order (leaf 0) or EBX, ECX, EDX order (0x40000000).
fn vendor(a: u32, b: u32, c: u32) -> [u8; 12] {
    let mut v = [0; 12];
    v[0..4].copy_from_slice(&a.to_le_bytes());
    v[4..8].copy_from_slice(&b.to_le_bytes());
    v[8..12].copy_from_slice(&c.to_le_bytes());
    v
}

/// The bytes as text if they are printable ASCII, else `"?"`.
fn text(bytes: &[u8]) -> &str {
    if bytes.iter().all(|b| (0x20..0x7F).contains(b)) {
        core::str::from_utf8(bytes).unwrap_or("?")
    } else {
        "?"
    }
}

fn run(_ram_size: u64) -> ! {
    let mut c = Checks::new("cpuid");

    let leaf0 = cpuid(0, 0);
    let max_basic = leaf0.eax;
    let cpu_vendor = vendor(leaf0.ebx, leaf0.edx, leaf0.ecx);
    c.note(format_args!("leaf 0x0: max basic leaf {max_basic:#x}, vendor \"{}\"", text(&cpu_vendor)));
    c.check(max_basic >= 1, format_args!("leaf 0x0 EAX (max basic leaf) {max_basic:#x} >= 0x1"));
    c.check(
        cpu_vendor.iter().all(|b| (0x20..0x7F).contains(b)),
        format_args!("leaf 0x0 vendor string is printable ASCII"),
    );

    let leaf1 = cpuid(1, 0);
    c.note(format_args!(
        "leaf 0x1: eax {:#010x} ebx {:#010x} ecx {:#010x} edx {:#010x}",
        leaf1.eax, leaf1.ebx, leaf1.ecx, leaf1.edx
    ));
    c.check(
        leaf1.ecx & ECX1_HYPERVISOR != 0,
        format_args!("leaf 0x1 ECX bit 31 (hypervisor) is set (ecx {:#010x})", leaf1.ecx),
    );
    c.check(leaf1.ecx & ECX1_VMX == 0, format_args!("leaf 0x1 ECX bit 5 (VMX) is clear (ecx {:#010x})", leaf1.ecx));
    c.check(
        leaf1.edx & EDX1_PAE != 0,
        format_args!("leaf 0x1 EDX bit 6 (PAE) is set, as the guest runs with PAE paging (edx {:#010x})", leaf1.edx),
    );

    let ext0 = cpuid(EXTENDED_BASE, 0);
    let max_ext = ext0.eax;
    c.note(format_args!("leaf 0x80000000: max extended leaf {max_ext:#x}"));
    c.check(
        (EXTENDED_BASE + 1..=EXTENDED_BASE + 0xFF).contains(&max_ext),
        format_args!("leaf 0x80000000 EAX (max extended leaf) {max_ext:#x} is in 0x80000001..=0x800000ff"),
    );
    if max_ext > EXTENDED_BASE {
        let ext1 = cpuid(EXTENDED_BASE + 1, 0);
        c.check(
            ext1.ecx & ECX_EXT1_SVM == 0,
            format_args!("leaf 0x80000001 ECX bit 2 (SVM) is clear (ecx {:#010x})", ext1.ecx),
        );
        c.check(
            ext1.edx & EDX_EXT1_LM != 0,
            format_args!(
                "leaf 0x80000001 EDX bit 29 (long mode) is set, as the guest runs in it (edx {:#010x})",
                ext1.edx
            ),
        );
    }
    if max_ext >= EXTENDED_BASE + 8 {
        let ext8 = cpuid(EXTENDED_BASE + 8, 0);
        let phys_bits = ext8.eax & 0xFF;
        let linear_bits = (ext8.eax >> 8) & 0xFF;
        c.check(
            (32..=52).contains(&phys_bits),
            format_args!("leaf 0x80000008 (present: max extended leaf >= it) EAX[7:0] physical address bits {phys_bits} in 32..=52"),
        );
        c.check(
            linear_bits == 48 || linear_bits == 57,
            format_args!("leaf 0x80000008 EAX[15:8] linear address bits {linear_bits} is 48 or 57"),
        );
    } else {
        c.note(format_args!("max extended leaf {max_ext:#x} < 0x80000008: no address-size leaf to check"));
    }

    let hv: Cpuid = cpuid(HYPERVISOR_BASE, 0);
    let hv_vendor = vendor(hv.ebx, hv.ecx, hv.edx);
    c.check(
        &hv_vendor == b"KeelKeelKeel",
        format_args!(
            "leaf 0x40000000 EBX/ECX/EDX spell \"KeelKeelKeel\" (got \"{}\": {:#010x} {:#010x} {:#010x})",
            text(&hv_vendor),
            hv.ebx,
            hv.ecx,
            hv.edx
        ),
    );
    c.check(
        (HYPERVISOR_BASE..=HYPERVISOR_BASE + 0xFF).contains(&hv.eax),
        format_args!("leaf 0x40000000 EAX (max hypervisor leaf) {:#x} is in 0x40000000..=0x400000ff", hv.eax),
    );

    c.finish()
}
