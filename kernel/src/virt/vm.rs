//! The VM object: its nested page tables (NPT or EPT, over the shared memory the monitor maps
//! into it) and bounds-checked copies to and from guest RAM. It does not run anything (vcpu.rs)
//! or decide what the guest sees (the CPU model, exits).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use keel_abi::vcpu::gprot;
use keel_abi::Error;
use keel_addr::{Gpa, Hpa};
use keel_mm::paging::{Access, Ept, PageSize, PageTable, X86};
use keel_mm::PAGE_SIZE;

use super::{backend, Backend};
use crate::mm::{self, KernelTableMemory};
use crate::objects::SharedMemory;

static NEXT_VM_ID: AtomicU32 = AtomicU32::new(1);

/// The most guest-physical space a VM may map (bounded by RAM anyway).
const MAX_GPA: u64 = 1 << 40;
// The largest VM's RAM fits, even with all of it above the 32-bit MMIO hole (from 4 GiB).
const _: () = assert!((4 << 30) + keel_abi::MAX_VM_MEMORY <= MAX_GPA);

/// The nested page tables in the vendor's format (NPT: x86 entries with the user bit; EPT).
pub enum NestedTable {
    Npt(PageTable<X86>),
    Ept(PageTable<Ept>),
}

impl NestedTable {
    pub fn root(&self) -> u64 {
        match self {
            NestedTable::Npt(t) => t.root,
            NestedTable::Ept(t) => t.root,
        }
    }
    fn map(
        &self,
        mem: &mut KernelTableMemory,
        gpa: u64,
        hpa: u64,
        size: PageSize,
        access: Access,
    ) -> Result<(), keel_mm::paging::MapError> {
        match self {
            NestedTable::Npt(t) => t.map(mem, gpa, hpa, size, access),
            NestedTable::Ept(t) => t.map(mem, gpa, hpa, size, access),
        }
    }
    /// Remove the leaf at `gpa`; returns its size (0 if nothing was mapped).
    fn unmap(&self, mem: &mut KernelTableMemory, gpa: u64) -> u64 {
        match self {
            NestedTable::Npt(t) => t.unmap_any(mem, gpa),
            NestedTable::Ept(t) => t.unmap_any(mem, gpa),
        }
        .map_or(0, |(_, size)| size)
    }
    fn translate(&self, mem: &KernelTableMemory, gpa: u64) -> Option<u64> {
        match self {
            NestedTable::Npt(t) => t.translate(mem, gpa),
            NestedTable::Ept(t) => t.translate(mem, gpa),
        }
    }
    fn free_all(&self, mem: &mut KernelTableMemory) {
        match self {
            NestedTable::Npt(t) => t.free_lower_levels(mem, 0, 512, &mut |_, _| {}),
            NestedTable::Ept(t) => t.free_lower_levels(mem, 0, 512, &mut |_, _| {}),
        }
    }
}

pub struct Vm {
    pub id: u32,
    table: Mutex<NestedTable>,
    /// The shared memory behind each mapping (kept alive while mapped): (gpa, object).
    mappings: Mutex<Vec<(Gpa, Arc<SharedMemory>)>>,
    pub asid: u32,
    /// Bumped when mappings change, so vCPUs flush their TLB.
    pub generation: AtomicU32,
}

impl Vm {
    pub fn new() -> Result<Arc<Vm>, Error> {
        let Some(backend) = backend() else {
            return Err(Error::NotSupported);
        };
        let id = NEXT_VM_ID.fetch_add(1, Ordering::Relaxed);
        let asid = match backend {
            Backend::Svm { asids } => 1 + (id - 1) % asids.saturating_sub(1).max(1),
            Backend::Vmx => id,
        };
        let mut mem = KernelTableMemory;
        let table = match backend {
            Backend::Svm { .. } => {
                NestedTable::Npt(PageTable::new(&mut mem, X86 { nx: mm::nx_enabled() }).ok_or(Error::NoMemory)?)
            }
            Backend::Vmx => NestedTable::Ept(PageTable::new(&mut mem, Ept).ok_or(Error::NoMemory)?),
        };
        Ok(Arc::new(Vm {
            id,
            table: Mutex::new(table),
            mappings: Mutex::new(Vec::new()),
            asid,
            generation: AtomicU32::new(0),
        }))
    }

    pub fn nested_root(&self) -> u64 {
        self.table.lock().root()
    }

    /// Map all of `shm` at guest-physical `gpa`, with 2 MiB pages where the memory allows. Returns
    /// the bytes mapped.
    pub fn map(&self, shm: Arc<SharedMemory>, gpa: Gpa, prot: u64) -> Result<u64, Error> {
        let Gpa(gpa) = gpa;
        let len = shm.pages() as u64 * PAGE_SIZE;
        if !gpa.is_multiple_of(PAGE_SIZE) || prot & !gprot::ALL != 0 || prot & gprot::READ == 0 {
            return Err(Error::InvalidArgument);
        }
        // A host device's registers are never a guest's (no device passthrough).
        if shm.is_device() {
            return Err(Error::InvalidArgument);
        }
        let end = gpa.checked_add(len).ok_or(Error::InvalidArgument)?;
        if end > MAX_GPA {
            return Err(Error::InvalidArgument);
        }
        if self.mappings.lock().iter().any(|(Gpa(g), m)| gpa < g + m.pages() as u64 * PAGE_SIZE && *g < end) {
            return Err(Error::Exists);
        }
        let access = Access {
            writable: prot & gprot::WRITE != 0,
            executable: prot & gprot::EXEC != 0,
            user: true,
            uncached: false,
        };
        let table = self.table.lock();
        let mut mem = KernelTableMemory;
        let mut i = 0;
        while i < shm.pages() {
            let at = gpa + i as u64 * PAGE_SIZE;
            let (size, step) = if at.is_multiple_of(2 << 20) && shm.is_large_at(i) {
                (PageSize::Size2M, 512)
            } else {
                (PageSize::Size4K, 1)
            };
            if table.map(&mut mem, at, shm.frame(i), size, access).is_err() {
                let mut done = gpa;
                while done < at {
                    done += table.unmap(&mut mem, done).max(PAGE_SIZE);
                }
                return Err(Error::NoMemory);
            }
            i += step;
        }
        drop(table);
        self.mappings.lock().push((Gpa(gpa), shm));
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(len)
    }

    /// Remove the mapping that starts at `gpa` (the vCPUs flush their TLBs before they run again).
    pub fn unmap(&self, gpa: Gpa) -> Result<u64, Error> {
        let shm = {
            let mut mappings = self.mappings.lock();
            let i = mappings.iter().position(|(g, _)| *g == gpa).ok_or(Error::NotFound)?;
            mappings.swap_remove(i).1
        };
        let len = shm.pages() as u64 * PAGE_SIZE;
        let table = self.table.lock();
        let mut mem = KernelTableMemory;
        let Gpa(start) = gpa;
        let mut at = start;
        while at < start + len {
            at += table.unmap(&mut mem, at).max(PAGE_SIZE);
        }
        drop(table);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(len)
    }

    /// The host-physical address backing guest-physical `gpa`, if it is RAM. The table walk uses
    /// bits 47:12 only: an address at or above MAX_GPA (a guest-chosen one, e.g. the pvclock
    /// MSRs') must not wrap onto RAM (tests: the `hostile` guest).
    fn host_phys(&self, gpa: Gpa) -> Option<Hpa> {
        if gpa.0 >= MAX_GPA {
            return None;
        }
        self.table.lock().translate(&KernelTableMemory, gpa.0).map(Hpa)
    }

    /// Copy guest RAM at `gpa` into `out`; false if any byte is not RAM.
    pub fn read_guest(&self, gpa: Gpa, out: &mut [u8]) -> bool {
        let mut done = 0;
        while done < out.len() {
            let Some(addr) = gpa.checked_add(done as u64) else { return false };
            let Some(Hpa(pa)) = self.host_phys(addr) else { return false };
            let chunk = ((PAGE_SIZE - addr.page_offset()) as usize).min(out.len() - done);
            // SAFETY: `pa..pa+chunk` lies in one page of guest RAM (shared memory owned by this
            // VM's mappings), reached through the direct map; `out` is a kernel buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(mm::phys_to_virt(pa) as *const u8, out[done..].as_mut_ptr(), chunk)
            };
            done += chunk;
        }
        true
    }

    /// Copy `data` into guest RAM at `gpa`; false if any byte is not RAM.
    pub fn write_guest(&self, gpa: Gpa, data: &[u8]) -> bool {
        let mut done = 0;
        while done < data.len() {
            let Some(addr) = gpa.checked_add(done as u64) else { return false };
            let Some(Hpa(pa)) = self.host_phys(addr) else { return false };
            let chunk = ((PAGE_SIZE - addr.page_offset()) as usize).min(data.len() - done);
            // SAFETY: as in read_guest: one page of this VM's RAM, through the direct map.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), mm::phys_to_virt(pa) as *mut u8, chunk) };
            done += chunk;
        }
        true
    }

    pub fn read_guest_u64(&self, gpa: Gpa) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_guest(gpa, &mut b).then(|| u64::from_le_bytes(b))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Mapped frames belong to the shared memory objects: only the tables are freed here.
        let table = self.table.lock();
        let mut mem = KernelTableMemory;
        table.free_all(&mut mem);
        mm::free_frame(table.root());
    }
}
