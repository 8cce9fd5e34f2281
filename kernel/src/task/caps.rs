//! Per-process capability tables: a handle is an index into the table, naming a kernel object
//! with rights. Every syscall that takes a handle looks it up here, and `get` checks the object's
//! type and the rights the call needs, so a forged or stale handle gets an error, never an object.

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_abi::{Error, Handle, Rights};

use super::notify::Notification;
use super::process::Process;
use crate::objects::SharedMemory;

/// The kernel objects a handle can name.
#[derive(Clone)]
pub enum Object {
    /// The serial console: write, read input, claim it from the kernel log, read the kernel log.
    Console,
    /// The boot modules: read them, spawn programs from them.
    Modules,
    /// Machine-wide operations (reboot).
    System,
    Notification(Arc<Notification>),
    Process(Arc<Process>),
    SharedMemory(Arc<SharedMemory>),
    Vm(Arc<crate::virt::Vm>),
    Vcpu(Arc<crate::virt::Vcpu>),
    /// The machine's devices: make port, device-memory, DMA and interrupt handles (hw.rs).
    Hardware,
    IoPorts(crate::hw::IoPorts),
    Irq(Arc<crate::hw::IrqLine>),
}

impl Object {
    #[inline(always)]
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Console => "console",
            Object::Modules => "modules",
            Object::System => "system",
            Object::Notification(_) => "notification",
            Object::Process(_) => "process",
            Object::SharedMemory(_) => "shared memory",
            Object::Vm(_) => "vm",
            Object::Vcpu(_) => "vcpu",
            Object::Hardware => "hardware",
            Object::IoPorts(_) => "io ports",
            Object::Irq(_) => "irq",
        }
    }
}

#[derive(Clone)]
pub struct Capability {
    pub object: Object,
    pub rights: Rights,
}

/// At most this many handles per process (a process cannot exhaust kernel memory with handles).
pub const MAX_HANDLES: usize = 256;

#[derive(Default)]
pub struct CapTable {
    slots: Vec<Option<Capability>>,
}

impl CapTable {
    /// Insert at the lowest free handle (handles start at 1).
    pub fn insert(&mut self, cap: Capability) -> Result<Handle, Error> {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            self.slots[i] = Some(cap);
            return Ok(i as Handle + 1);
        }
        if self.slots.len() >= MAX_HANDLES {
            return Err(Error::NoMemory);
        }
        self.slots.push(Some(cap));
        Ok(self.slots.len() as Handle)
    }

    // The lookups are on every system call's path (VcpuRun's on every exit to the monitor):
    // always inlined, whatever else calls them (docs/performance.md).
    #[inline(always)]
    fn slot(&self, handle: Handle) -> Result<&Capability, Error> {
        let i = (handle as usize).checked_sub(1).ok_or(Error::InvalidHandle)?;
        self.slots.get(i).and_then(Option::as_ref).ok_or(Error::InvalidHandle)
    }

    /// The capability, if it carries `rights`.
    #[inline(always)]
    pub fn get(&self, handle: Handle, rights: Rights) -> Result<&Capability, Error> {
        let cap = self.slot(handle)?;
        if !cap.rights.contains(rights) {
            return Err(Error::NoRights);
        }
        Ok(cap)
    }

    /// The capability, if it names a `kind` object (else WrongType) and carries `rights` (else
    /// NoRights): the type is checked first, so using a handle for the wrong thing says so.
    #[inline(always)]
    pub fn get_kind(&self, handle: Handle, kind: &'static str, rights: Rights) -> Result<&Capability, Error> {
        let cap = self.slot(handle)?;
        if cap.object.kind() != kind {
            return Err(Error::WrongType);
        }
        self.get(handle, rights)
    }

    pub fn remove(&mut self, handle: Handle) -> Result<Capability, Error> {
        self.slot(handle)?;
        Ok(self.slots[handle as usize - 1].take().expect("checked above"))
    }
}

/// Type checks: the object behind a capability, or WrongType.
pub fn expect_notification(cap: &Capability) -> Result<Arc<Notification>, Error> {
    match &cap.object {
        Object::Notification(n) => Ok(n.clone()),
        _ => Err(Error::WrongType),
    }
}

pub fn expect_process(cap: &Capability) -> Result<Arc<Process>, Error> {
    match &cap.object {
        Object::Process(p) => Ok(p.clone()),
        _ => Err(Error::WrongType),
    }
}

pub fn expect_shm(cap: &Capability) -> Result<Arc<SharedMemory>, Error> {
    match &cap.object {
        Object::SharedMemory(s) => Ok(s.clone()),
        _ => Err(Error::WrongType),
    }
}

pub fn expect_vm(cap: &Capability) -> Result<Arc<crate::virt::Vm>, Error> {
    match &cap.object {
        Object::Vm(v) => Ok(v.clone()),
        _ => Err(Error::WrongType),
    }
}

pub fn expect_vcpu(cap: &Capability) -> Result<Arc<crate::virt::Vcpu>, Error> {
    match &cap.object {
        Object::Vcpu(v) => Ok(v.clone()),
        _ => Err(Error::WrongType),
    }
}
