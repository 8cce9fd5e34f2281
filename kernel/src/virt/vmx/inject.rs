//! Event injection at VM entry: a pending exception, NMI or interrupt, or an exit when the
//! guest can take the interrupt (interrupt-window exiting). See: SDM Vol 3C 27.6, 25.8.3.
use super::*;

impl VmxVcpu {
    /// RFLAGS.IF set and no STI/MOV SS shadow.
    pub(super) fn interruptible_now(&self) -> bool {
        let shadow = interruptibility::BLOCKING_BY_STI | interruptibility::BLOCKING_BY_MOV_SS;
        read(field::GUEST_RFLAGS) & RFLAGS_IF != 0 && read(field::GUEST_INTERRUPTIBILITY) as u32 & shadow == 0
    }

    pub(super) fn interruptible(&self) -> bool {
        self.event.is_none() && self.interruptible_now()
    }

    pub(super) fn clear_interrupt_shadow(&mut self) {
        let shadow = interruptibility::BLOCKING_BY_STI | interruptibility::BLOCKING_BY_MOV_SS;
        let i = read(field::GUEST_INTERRUPTIBILITY) as u32;
        if i & shadow != 0 {
            write(field::GUEST_INTERRUPTIBILITY, u64::from(i & !shadow));
        }
    }

    /// A hardware exception at the next entry. Real mode (CR0.PE = 0) pushes no error code.
    /// See: SDM Vol 3C 27.2.1.3 (checks on the VM-entry event-injection fields).
    pub(super) fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        let mut info = u32::from(vector) | intr::TYPE_HARDWARE_EXCEPTION | intr::VALID;
        let protected = read(field::GUEST_CR0) & hv::CR0_PE != 0;
        let error_code = error_code.filter(|_| protected && matches!(vector, 8 | 10..=14 | 17));
        if error_code.is_some() {
            info |= intr::DELIVER_ERROR_CODE;
        }
        self.event = Some(Event { info, error_code: error_code.unwrap_or(0), length: 0 });
    }

    /// Deliver the monitor's pending event if the guest can take it now; otherwise ask for an
    /// exit when it can (interrupt-window exiting). See: SDM Vol 3C 25.6.2, 27.6 (event
    /// injection), 27.7.5 (interrupt-window exiting).
    pub(super) fn prepare_injection(&mut self, vcpu: &Vcpu) {
        let req = vcpu.inject_request();
        let mut window = false;
        if req.pending != 0 {
            if self.event.is_none() && (req.kind != INJECT_INTERRUPT || self.interruptible()) {
                match req.kind {
                    INJECT_EXCEPTION => {
                        self.inject_exception(req.vector & 31, (req.has_error_code != 0).then_some(req.error_code))
                    }
                    INJECT_NMI => {
                        self.event = Some(Event { info: 2 | intr::TYPE_NMI | intr::VALID, error_code: 0, length: 0 })
                    }
                    _ => {
                        let info = u32::from(req.vector) | intr::TYPE_EXTERNAL | intr::VALID;
                        self.event = Some(Event { info, error_code: 0, length: 0 });
                    }
                }
                vcpu.clear_inject();
            } else {
                window = true;
            }
        }
        let wanted = if window { caps().proc | proc::INTERRUPT_WINDOW_EXITING } else { caps().proc };
        if wanted != self.proc {
            self.proc = wanted;
            write(field::PROCESSOR_BASED_CONTROLS, u64::from(wanted));
        }
    }
}
