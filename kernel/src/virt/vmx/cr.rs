//! Guest control-register accesses VMX intercepts: MOV to CR0/CR4 touching a pinned bit,
//! CR3 and CR8 moves, CLTS and LMSW. See: SDM Vol 3C 26.1.3, 28.1.3.
use super::*;

impl VmxVcpu {
    /// Guest MOV to CR0 (or CLTS/LMSW) that touched a bit VMX pins. `Err`: #GP.
    /// See: SDM Vol 2A MOV to control registers (#GP conditions), Vol 3A 10.8.5 (IA-32e mode).
    pub(super) fn write_cr0(&mut self, value: u64) -> Result<(), ()> {
        if value >> 32 != 0
            || (value & hv::CR0_PG != 0 && value & hv::CR0_PE == 0)
            || (value & CR0_NW != 0 && value & CR0_CD == 0)
        {
            return Err(());
        }
        let old = self.cr0();
        let mut efer = read(field::GUEST_IA32_EFER);
        if value & hv::CR0_PG != 0 && old & hv::CR0_PG == 0 && efer & EFER_LME != 0 {
            if self.cr4() & CR4_PAE == 0 {
                return Err(());
            }
            efer |= EFER_LMA;
        }
        if value & hv::CR0_PG == 0 {
            efer &= !EFER_LMA;
        }
        write(field::GUEST_IA32_EFER, efer);
        self.set_cr0(value);
        self.flush = true;
        self.reload_pdptes = true;
        Ok(())
    }

    pub(super) fn write_cr4(&mut self, value: u64) -> Result<(), ()> {
        let allowed = caps().cr4.may_be_one & !hv::CR4_VMXE;
        let long = read(field::GUEST_IA32_EFER) & EFER_LMA != 0;
        if value & !allowed != 0 || (long && value & CR4_PAE == 0) {
            return Err(());
        }
        self.set_cr4(value);
        self.flush = true;
        self.reload_pdptes = true;
        Ok(())
    }

    /// A control-register access that exited. `Err`: #GP. See: SDM Vol 3C 26.1.3 (which CR
    /// accesses exit), 28.2.1 (Table 28-3).
    pub(super) fn cr_access(&mut self, qualification: u64) -> Result<(), ()> {
        match hv::decode_cr_access(qualification) {
            CrAccess::MovTo { cr: 0, gpr } => self.write_cr0(self.gpr(gpr))?,
            CrAccess::MovTo { cr: 4, gpr } => self.write_cr4(self.gpr(gpr))?,
            CrAccess::MovTo { cr: 3, gpr } => {
                // Bit 63 (PCID "no flush") is not part of CR3; flushing anyway is correct.
                write(field::GUEST_CR3, self.gpr(gpr) & !(1 << 63));
                self.flush = true;
                self.reload_pdptes = true;
            }
            CrAccess::MovTo { cr: 8, gpr } => {
                let value = self.gpr(gpr);
                if value > 15 {
                    return Err(());
                }
                self.cr8 = value;
            }
            CrAccess::MovFrom { cr: 3, gpr } => self.set_gpr(gpr, read(field::GUEST_CR3)),
            CrAccess::MovFrom { cr: 8, gpr } => self.set_gpr(gpr, self.cr8),
            CrAccess::Clts => self.write_cr0(self.cr0() & !CR0_TS)?,
            CrAccess::Lmsw { source } => {
                // LMSW sets PE, MP, EM, TS; it can set PE but not clear it.
                let old = self.cr0();
                self.write_cr0((old & !0xf) | u64::from(source & 0xf) | (old & hv::CR0_PE))?;
            }
            _ => return Err(()),
        }
        self.skip();
        Ok(())
    }
}
