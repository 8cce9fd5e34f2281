//! Guest RAM as the monitor sees it: a shared-memory object mapped both into the VM (at GPA 0)
//! and into this process. Accesses are bounds-checked copies through a raw pointer (the guest
//! may change the memory whenever its vCPU runs, so no Rust reference is kept into it).

use keel_abi::{prot, vcpu::gprot, Handle};
use keel_addr::Gpa;
use keel_rt::sys;

pub struct GuestRam {
    base: *mut u8,
    len: u64,
}

impl GuestRam {
    /// Create `len` bytes of RAM, map it here and at GPA 0 of `vm`.
    pub fn create(vm: Handle, len: u64) -> Result<GuestRam, keel_abi::Error> {
        let shm = sys::shm_create(len)?;
        let base = sys::shm_map(shm, 0, prot::READ | prot::WRITE)?;
        sys::vm_map(vm, shm, Gpa(0), gprot::ALL)?;
        Ok(GuestRam { base: base as *mut u8, len })
    }

    /// Copy `data` to guest-physical `gpa`; false if it does not fit in RAM.
    pub fn write(&self, gpa: Gpa, data: &[u8]) -> bool {
        let Gpa(gpa) = gpa;
        let Some(end) = gpa.checked_add(data.len() as u64) else { return false };
        if end > self.len {
            return false;
        }
        // SAFETY: `gpa..end` is inside the RAM mapping (checked above).
        let dst = unsafe { self.base.add(gpa as usize) };
        // SAFETY: `dst..dst + data.len()` is inside the RAM mapping, which stays mapped read-write
        // for the life of this process; a raw copy creates no reference into it.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        true
    }

    /// Copy from guest-physical `gpa` into `out`; false if it is not all RAM.
    pub fn read(&self, gpa: Gpa, out: &mut [u8]) -> bool {
        let Gpa(gpa) = gpa;
        let Some(end) = gpa.checked_add(out.len() as u64) else { return false };
        if end > self.len {
            return false;
        }
        // SAFETY: as in `write`: inside the mapping.
        let src = unsafe { self.base.add(gpa as usize) };
        // SAFETY: as in `write`: inside the mapping, a raw copy, no reference kept.
        unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
        true
    }

    /// Zero `len` bytes at `gpa`.
    pub fn zero(&self, gpa: Gpa, len: u64) -> bool {
        let Gpa(gpa) = gpa;
        let Some(end) = gpa.checked_add(len) else { return false };
        if end > self.len {
            return false;
        }
        // SAFETY: as in `write`: inside the mapping.
        let dst = unsafe { self.base.add(gpa as usize) };
        // SAFETY: as in `write`: inside the mapping, a raw write, no reference kept.
        unsafe { core::ptr::write_bytes(dst, 0, len as usize) };
        true
    }
}

/// Device models (virtio queues) reach guest memory through this, bounds-checked.
impl keel_devices::guest_memory::GuestMemory for GuestRam {
    fn read(&self, gpa: Gpa, buf: &mut [u8]) -> bool {
        GuestRam::read(self, gpa, buf)
    }
    fn write(&mut self, gpa: Gpa, data: &[u8]) -> bool {
        GuestRam::write(self, gpa, data)
    }
}
