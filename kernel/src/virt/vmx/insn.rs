//! The VMX instructions Keel uses, in one place. Each needs VMX operation on the calling CPU
//! (after VMXON; outside it they raise #UD) and reports VMfailInvalid (CF) or VMfailValid (ZF)
//! as `Err`. See: SDM Vol 3C 31.2 (conventions), 31.3 (VMCLEAR, VMPTRLD, VMREAD, VMWRITE, VMXON,
//! INVEPT).

use core::arch::asm;

/// How a VMX instruction failed. See: SDM Vol 3C 31.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmFail {
    /// CF: no current VMCS, or an operand the CPU rejects before looking at a VMCS.
    Invalid,
    /// ZF: the VM-instruction error field of the current VMCS says why.
    Valid,
}

fn status(cf: u8, zf: u8) -> Result<(), VmFail> {
    if cf != 0 {
        Err(VmFail::Invalid)
    } else if zf != 0 {
        Err(VmFail::Valid)
    } else {
        Ok(())
    }
}

/// Enter VMX root operation with the VMXON region at physical `region`.
///
/// # Safety
/// CR4.VMXE must be set, CR0/CR4 must meet the VMX fixed bits, IA32_FEATURE_CONTROL must allow
/// VMX outside SMX, and `region` must be a page-aligned frame holding the VMCS revision that
/// stays reserved for this CPU's VMX operation. See: SDM Vol 3C 24.7, 24.11.5.
pub unsafe fn vmxon(region: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: per the contract; the operand is a stack slot holding the address.
    unsafe {
        asm!("vmxon [{p}]", "setc {cf}", "setz {zf}", p = in(reg) &region, cf = out(reg_byte) cf, zf = out(reg_byte) zf,
            options(nostack))
    };
    status(cf, zf)
}

/// Flush the VMCS at physical `vmcs` to memory and make it clear (not current, not launched).
///
/// # Safety
/// VMX operation on this CPU; `vmcs` must be a page-aligned frame that is (or will be) a VMCS
/// region owned by the caller, not the VMXON region.
pub unsafe fn vmclear(vmcs: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: per the contract; the operand is a stack slot holding the address.
    unsafe {
        asm!("vmclear [{p}]", "setc {cf}", "setz {zf}", p = in(reg) &vmcs, cf = out(reg_byte) cf, zf = out(reg_byte) zf,
            options(nostack))
    };
    status(cf, zf)
}

/// Make the VMCS at physical `vmcs` the current VMCS of this CPU.
///
/// # Safety
/// VMX operation on this CPU; `vmcs` must be a VMCS region with the right revision identifier,
/// owned by the caller, which stays allocated while it is current (or until VMCLEAR).
pub unsafe fn vmptrld(vmcs: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: per the contract; the operand is a stack slot holding the address.
    unsafe {
        asm!("vmptrld [{p}]", "setc {cf}", "setz {zf}", p = in(reg) &vmcs, cf = out(reg_byte) cf, zf = out(reg_byte) zf,
            options(nostack))
    };
    status(cf, zf)
}

/// Read a field of the current VMCS (0 if there is none or the field does not exist).
///
/// # Safety
/// VMX operation on this CPU (otherwise #UD).
pub unsafe fn vmread(field: u32) -> u64 {
    let value: u64;
    // SAFETY: per the contract; VMREAD only reads the current VMCS and sets flags.
    unsafe { asm!("vmread {v}, {f}", v = out(reg) value, f = in(reg) u64::from(field), options(nostack)) };
    value
}

/// Write a field of the current VMCS.
///
/// # Safety
/// VMX operation on this CPU (otherwise #UD). Host-state fields decide what the CPU loads at the
/// next VM exit: the caller must give values the host can run with.
pub unsafe fn vmwrite(field: u32, value: u64) -> Result<(), VmFail> {
    let (cf, zf): (u8, u8);
    // SAFETY: per the contract; VMWRITE only writes the current VMCS and sets flags.
    unsafe {
        asm!("vmwrite {f}, {v}", "setc {cf}", "setz {zf}", f = in(reg) u64::from(field), v = in(reg) value,
            cf = out(reg_byte) cf, zf = out(reg_byte) zf, options(nostack))
    };
    status(cf, zf)
}

/// INVEPT types. See: SDM Vol 3C 29.4.3.1.
pub const INVEPT_SINGLE_CONTEXT: u64 = 1;
pub const INVEPT_ALL_CONTEXT: u64 = 2;

/// Invalidate cached EPT-derived translations (for `eptp`, or all with INVEPT_ALL_CONTEXT).
///
/// # Safety
/// VMX operation on this CPU with INVEPT of that type supported (IA32_VMX_EPT_VPID_CAP).
pub unsafe fn invept(kind: u64, eptp: u64) -> Result<(), VmFail> {
    let descriptor: [u64; 2] = [eptp, 0];
    let (cf, zf): (u8, u8);
    // SAFETY: per the contract; the descriptor is a 16-byte stack buffer INVEPT only reads.
    unsafe {
        asm!("invept {k}, [{d}]", "setc {cf}", "setz {zf}", k = in(reg) kind, d = in(reg) &descriptor,
            cf = out(reg_byte) cf, zf = out(reg_byte) zf, options(nostack))
    };
    status(cf, zf)
}
