//! Event injection at VMRUN: a pending exception, NMI or interrupt through EVENTINJ, or a
//! virtual interrupt request with the VINTR intercept when the guest cannot take it yet.
//! See: APM Vol 2 15.20, 15.21.
use super::*;

impl SvmVcpu {
    pub(super) fn interruptible(&mut self) -> bool {
        let v = self.vmcb();
        v.save.rflags & (1 << 9) != 0
            && v.control.interrupt_shadow & 1 == 0
            && v.control.event_inject & eventinj::VALID == 0
    }

    pub(super) fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        let mut e = u64::from(vector) | eventinj::TYPE_EXCEPTION | eventinj::VALID;
        if let Some(code) = error_code {
            e |= eventinj::ERROR_VALID | (u64::from(code) << 32);
        }
        self.vmcb().control.event_inject = e;
    }

    /// Deliver the monitor's pending event if the guest can take it now; otherwise ask for an
    /// exit when it can (virtual interrupt request + VINTR intercept). See: APM Vol 2 15.20-15.21.
    pub(super) fn prepare_injection(&mut self, vcpu: &Vcpu) {
        let req = vcpu.inject_request();
        let v = self.vmcb();
        v.control.v_intr &= !(vintr::V_IRQ | vintr::V_IGN_TPR | (0xf << vintr::V_INTR_PRIO_SHIFT));
        v.control.intercept_misc1 &= !misc1::VINTR;
        if req.pending == 0 {
            return;
        }
        let ty = match req.kind {
            INJECT_NMI => eventinj::TYPE_NMI,
            INJECT_EXCEPTION => eventinj::TYPE_EXCEPTION,
            _ => eventinj::TYPE_INTR,
        };
        if req.kind != INJECT_INTERRUPT || self.interruptible() {
            let mut e = u64::from(req.vector) | ty | eventinj::VALID;
            if req.kind == INJECT_EXCEPTION && req.has_error_code != 0 {
                e |= eventinj::ERROR_VALID | (u64::from(req.error_code) << 32);
            }
            // An event the hardware was already delivering (EXITINTINFO) goes first.
            if self.vmcb().control.event_inject & eventinj::VALID == 0 {
                self.vmcb().control.event_inject = e;
                vcpu.clear_inject();
                return;
            }
        }
        let v = self.vmcb();
        v.control.v_intr |= vintr::V_IRQ | vintr::V_IGN_TPR | (0xf << vintr::V_INTR_PRIO_SHIFT);
        v.control.intercept_misc1 |= misc1::VINTR;
    }
}
