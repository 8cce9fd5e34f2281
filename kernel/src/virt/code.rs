//! The instruction at the guest's CS:RIP, fetched through its own page tables for the monitor
//! (MMIO and string I/O exits, which the monitor decodes), and the few guest fields that needs.

use keel_abi::vcpu::VcpuState;
use keel_mm::PAGE_SIZE;

use super::Vm;

/// What fetching the instruction at CS:RIP needs of the guest state (a backend reads these few
/// fields at an MMIO exit instead of exporting every system register).
pub struct CodeView {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub cs_base: u64,
    /// CS attributes in the state page's format (bit 9 L, bit 10 D/B).
    pub cs_attrib: u16,
    pub rip: u64,
}

impl CodeView {
    pub fn of_state(st: &VcpuState) -> CodeView {
        use keel_abi::vcpu::seg;
        let cs = st.segs[seg::CS];
        CodeView {
            cr0: st.cr0,
            cr3: st.cr3,
            cr4: st.cr4,
            efer: st.efer,
            cs_base: cs.base,
            cs_attrib: cs.attrib,
            rip: st.rip,
        }
    }

    fn long_code(&self) -> bool {
        self.cs_attrib & (1 << 9) != 0 && self.efer & (1 << 10) != 0
    }

    /// 16, 32 or 64: the code size (EFER.LMA and CS.L, else CR0.PE and CS.D). See: SDM Vol 3A
    /// 3.4.5 (the L and D/B flags).
    pub fn code_bits(&self) -> u8 {
        if self.long_code() {
            64
        } else if self.cr0 & 1 != 0 && self.cs_attrib & (1 << 10) != 0 {
            32
        } else {
            16
        }
    }
}

/// Put the instruction at the view's CS:RIP, and the code size, into the exit record (MMIO and
/// string I/O exits: the monitor decodes them).
pub fn record_instruction(vm: &Vm, view: &CodeView, st: &mut VcpuState) {
    let mut insn = [0u8; 15];
    st.exit.insn_len = fetch_instruction(vm, view, &mut insn);
    st.exit.insn = insn;
    st.exit.code_bits = view.code_bits();
}

/// Fetch up to 15 instruction bytes at the guest's CS:RIP through its page tables.
pub fn fetch_instruction(vm: &Vm, view: &CodeView, out: &mut [u8; 15]) -> u8 {
    let mode = keel_hv::walk::paging_mode(view.cr0, view.cr4, view.efer);
    let base = if view.long_code() { 0 } else { view.cs_base };
    let mut n = 0;
    while n < 15 {
        let va = base.wrapping_add(view.rip).wrapping_add(n as u64);
        let Some(gpa) = keel_hv::walk::translate(mode, view.cr3, va, |a| vm.read_guest_u64(a)) else { break };
        // Up to the end of this page.
        let chunk = ((PAGE_SIZE - gpa.page_offset()) as usize).min(15 - n);
        if !vm.read_guest(gpa, &mut out[n..n + chunk]) {
            break;
        }
        n += chunk;
    }
    n as u8
}
