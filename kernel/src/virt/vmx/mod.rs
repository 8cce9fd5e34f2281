//! The Intel VMX backend (VMXON, one VMCS per vCPU with EPT). Not written yet: `enable_this_cpu`
//! reports that, so a VMX machine boots and says guests cannot run.

use keel_abi::vcpu::{ExitKind, VcpuState};

use super::{Vcpu, Vm};

pub fn enable_this_cpu() -> Result<(), &'static str> {
    Err("the VMX backend is not in this build yet")
}

pub struct VmxVcpu;

impl VmxVcpu {
    pub fn new(_vm: &Vm) -> Result<Self, keel_abi::Error> {
        Err(keel_abi::Error::NotSupported)
    }
    pub fn apply(&mut self, _st: &VcpuState) {}
    pub fn export(&mut self, _st: &mut VcpuState) {}
    pub fn run_until_monitor(&mut self, _vcpu: &Vcpu, _st: &mut VcpuState) -> ExitKind {
        ExitKind::Unhandled
    }
}
