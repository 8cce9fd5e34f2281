//! The log after the CPU refused the guest state: the fields VM entry checks most (the CPU
//! does not say which check failed). See: SDM Vol 3C 27.3.1, 27.8.
use super::*;

/// The guest-state fields VM entry checks most, for the log after an entry failure (the CPU
/// does not say which check failed). See: SDM Vol 3C 27.3.1, 27.8.
pub(super) fn log_guest_state(vm: u32) {
    log::warn!(
        "vmx: vm {vm}: CR0 {:#x} (shadow {:#x}) CR4 {:#x} EFER {:#x} RFLAGS {:#x} RIP {:#x} entry controls {:#x} \
         activity {} interruptibility {:#x}",
        read(field::GUEST_CR0),
        read(field::CR0_READ_SHADOW),
        read(field::GUEST_CR4),
        read(field::GUEST_IA32_EFER),
        read(field::GUEST_RFLAGS),
        read(field::GUEST_RIP),
        read(field::ENTRY_CONTROLS),
        read(field::GUEST_ACTIVITY_STATE),
        read(field::GUEST_INTERRUPTIBILITY),
    );
    for (i, name) in ["ES", "CS", "SS", "DS", "FS", "GS", "LDTR", "TR"].iter().enumerate() {
        log::warn!(
            "vmx: vm {vm}: {name} selector {:#x} base {:#x} limit {:#x} access rights {:#x}",
            read(field::guest_selector(i)),
            read(field::guest_base(i)),
            read(field::guest_limit(i)),
            read(field::guest_access_rights(i)),
        );
    }
}
