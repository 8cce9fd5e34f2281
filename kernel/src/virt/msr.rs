//! The guest's MSRs outside the VMCB/VMCS: the per-vCPU shadows (MISC_ENABLE and the like, the
//! MTRRs, TSC_AUX), the paravirtual clock MSRs, and RDMSR/WRMSR answered by keel-hv's policy
//! (`keel_hv::msr`). The vendor's own MSR fields come in through `GuestMsrs`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use keel_addr::Gpa;
use keel_hv::msr::{self, GuestMsr, MsrKind};
use keel_hv::mtrr::Mtrrs;

use super::{guest_cpu, Vm};

/// Per-vCPU MSR values the guest owns outside the VMCB/VMCS.
pub struct MsrShadow {
    values: [u64; msr::SHADOW_SLOTS],
    mtrrs: Mtrrs,
    tsc_aux: u64,
    kvm_system_time: u64,
}

impl MsrShadow {
    pub fn new() -> Self {
        let mut values = [0; msr::SHADOW_SLOTS];
        for (i, &(_, v)) in msr::SHADOWED.iter().enumerate() {
            values[i] = v;
        }
        Self { values, mtrrs: Mtrrs::firmware_state(), tsc_aux: 0, kvm_system_time: 0 }
    }
}

/// Fill the guest's pvclock structure at `gpa`: version odd while writing, then even.
/// See: Linux arch/x86/include/asm/pvclock-abi.h (struct pvclock_vcpu_time_info).
fn write_pvclock(vm: &Vm, gpa: Gpa) {
    let (mul, shift) = keel_hv::pvclock::pvclock_scale(crate::time::tsc_hz());
    let tsc = crate::time::rdtsc();
    let mut b = [0u8; 32];
    b[0..4].copy_from_slice(&1u32.to_le_bytes());
    let _ = vm.write_guest(gpa, &b[0..4]);
    b[8..16].copy_from_slice(&tsc.to_le_bytes());
    b[16..24].copy_from_slice(&crate::time::tsc_to_ns(tsc).to_le_bytes());
    b[24..28].copy_from_slice(&mul.to_le_bytes());
    b[28] = shift as u8;
    b[29] = 1; // PVCLOCK_TSC_STABLE_BIT
    b[0..4].copy_from_slice(&2u32.to_le_bytes());
    let _ = vm.write_guest(gpa, &b);
}

/// The wall clock at system time 0 (struct pvclock_wall_clock: version, sec, nsec).
fn write_wall_clock(vm: &Vm, gpa: Gpa) {
    let epoch = crate::time::epoch_at_zero_ns();
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&2u32.to_le_bytes());
    b[4..8].copy_from_slice(&((epoch / 1_000_000_000) as u32).to_le_bytes());
    b[8..12].copy_from_slice(&((epoch % 1_000_000_000) as u32).to_le_bytes());
    let _ = vm.write_guest(gpa, &b);
}

/// The TSC_AUX value the CPU holds (u64::MAX: unknown, as firmware left it). Keel never reads
/// TSC_AUX itself (no RDTSCP or RDPID in the kernel or its programs), so the value of the vCPU
/// that ran last can stay loaded; RDTSCP and RDPID are not intercepted and read it natively.
/// Only the boot CPU runs guests for now, so this is one global (per CPU with SMP).
static LOADED_TSC_AUX: AtomicU64 = AtomicU64::new(u64::MAX);
/// Whether guests are shown RDTSCP or RDPID (set once by `init`).
pub(super) static TSC_AUX_SHOWN: AtomicBool = AtomicBool::new(false);

impl MsrShadow {
    /// Load this vCPU's TSC_AUX into the CPU, if another value is there: when another vCPU ran
    /// since this one last did (the backends call it when they switch VMCB or VMCS), and when the
    /// guest writes it. See: SDM Vol 2B RDTSCP, RDPID.
    #[inline]
    pub fn activate_tsc_aux(&self) {
        if !TSC_AUX_SHOWN.load(Ordering::Relaxed) {
            return;
        }
        if LOADED_TSC_AUX.swap(self.tsc_aux, Ordering::Relaxed) != self.tsc_aux {
            // SAFETY: the host has TSC_AUX (the guest CPU shows RDTSCP or RDPID only when the
            // host does) and it takes any 32-bit value (check_tsc_aux kept the reserved bits
            // clear); Keel itself does not use it.
            unsafe { crate::arch::x86_64::instructions::wrmsr(msr::TSC_AUX, self.tsc_aux) };
        }
    }
}

/// Vendor state behind `GuestMsr` (VMCB or VMCS fields).
pub trait GuestMsrs {
    fn get(&self, which: GuestMsr) -> u64;
    fn set(&mut self, which: GuestMsr, value: u64);
}

/// RDMSR for the guest: the value, or None for #GP.
pub fn msr_read(index: u32, state: &impl GuestMsrs, shadow: &MsrShadow) -> Option<u64> {
    match msr::classify(index) {
        MsrKind::GuestState(which) => Some(state.get(which)),
        MsrKind::Tsc => Some(crate::time::rdtsc()),
        MsrKind::Fixed(v) => Some(v),
        MsrKind::Shadow(i) => shadow.values.get(i as usize).copied(),
        MsrKind::Mtrr => shadow.mtrrs.read(index),
        MsrKind::TscAux => Some(shadow.tsc_aux),
        MsrKind::Refused => {
            // Debug level: a hostile guest probes thousands of MSRs.
            log::debug!("msr: RDMSR {index:#x} refused (#GP)");
            None
        }
        MsrKind::KvmSystemTime => Some(shadow.kvm_system_time),
        MsrKind::KvmWallClock => Some(0),
    }
}

/// WRMSR for the guest: Ok, or Err for #GP.
/// `vm` is the VM of the vCPU that wrote: the paravirtual clock MSRs write its memory. (It was
/// once a global "current VM", set around the run loop; a vCPU thread that was rescheduled in
/// the middle of its loop then saw another VM's pointer, and a guest's pvclock structure could be
/// written into another guest's RAM.)
pub fn msr_write(
    vm: &Vm,
    index: u32,
    value: u64,
    state: &mut impl GuestMsrs,
    shadow: &mut MsrShadow,
) -> Result<(), ()> {
    match msr::classify(index) {
        MsrKind::GuestState(which) => {
            let v = msr::check_write(which, value)?;
            state.set(which, v);
            Ok(())
        }
        MsrKind::Tsc => Ok(()),
        MsrKind::Fixed(v) if v == value => Ok(()),
        MsrKind::Fixed(_) => Err(()),
        MsrKind::Shadow(i) => {
            *shadow.values.get_mut(i as usize).ok_or(())? = value;
            Ok(())
        }
        MsrKind::Mtrr => shadow.mtrrs.write(index, value, guest_cpu().phys_bits()),
        MsrKind::TscAux => {
            shadow.tsc_aux = msr::check_tsc_aux(value)?;
            // This vCPU's TSC_AUX is the one in the CPU (a vCPU switch loads it: see
            // activate_tsc_aux), so a write takes effect at once.
            shadow.activate_tsc_aux();
            Ok(())
        }
        MsrKind::Refused => {
            log::debug!("msr: WRMSR {index:#x} <- {value:#x} refused (#GP)");
            Err(())
        }
        MsrKind::KvmSystemTime => {
            shadow.kvm_system_time = value;
            if value & 1 != 0 {
                write_pvclock(vm, Gpa(value & !1));
            }
            Ok(())
        }
        MsrKind::KvmWallClock => {
            write_wall_clock(vm, Gpa(value));
            Ok(())
        }
    }
}
