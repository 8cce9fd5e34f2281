//! A process's address space: its own PML4 with the kernel half shared, user mappings in the
//! lower half, and bounds- and permission-checked copies between user memory and the kernel.
//!
//! User memory is 4 KiB pages, never writable and executable at once (W^X); shared memory made of
//! 2 MiB chunks (guest RAM) is mapped with 2 MiB pages where aligned, so a VM's monitor needs no
//! page table per 2 MiB of guest RAM. Copies walk the page tables in software first, so a bad
//! user pointer is an error (BadAddress), never a kernel fault.
//! Device memory (a driver's registers) is mapped uncached, like shared memory otherwise.
//! Does not: demand paging, copy-on-write, or large pages for anonymous memory.

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_abi::{prot, Error, USER_END};
use keel_mm::paging::{Access, PageSize, PageTable, X86, X86_PRESENT, X86_USER, X86_WRITABLE};
use keel_mm::PAGE_SIZE;

use crate::mm::{self, KernelTableMemory};
use crate::objects::SharedMemory;

/// The lowest user address (the null page stays unmapped).
pub const USER_START: u64 = 0x1000;
/// The highest mappable address: the last page below the canonical hole is never mapped, so a
/// SYSCALL there cannot return to a non-canonical RIP.
pub const USER_LIMIT: u64 = USER_END - PAGE_SIZE;
/// Where the kernel places mappings when the caller lets it choose.
const CHOSEN_BASE: u64 = 0x0000_1000_0000_0000;
/// A 2 MiB page.
const LARGE: u64 = 2 << 20;
/// The most memory one process may map: the largest VM's RAM (a monitor maps all of it) plus
/// 1 GiB of its own (heap, stacks, a boot image and an initrd of up to 256 MiB each). Free RAM
/// bounds it anyway; this bounds the page tables a process can make the kernel build by mapping
/// one shared-memory object again and again.
pub const MAX_PAGES: u64 = (keel_abi::MAX_VM_MEMORY + (1 << 30)) / PAGE_SIZE;

pub struct AddressSpace {
    table: PageTable<X86>,
    next_chosen: u64,
    pages: u64,
    /// Ranges mapping shared memory, with the object (kept alive while mapped: it owns the frames).
    shared: Vec<(u64, u64, Arc<SharedMemory>)>,
}

fn access(prot_bits: u64) -> Result<Access, Error> {
    if prot_bits & !(prot::READ | prot::WRITE | prot::EXEC) != 0 {
        return Err(Error::InvalidArgument);
    }
    let writable = prot_bits & prot::WRITE != 0;
    let executable = prot_bits & prot::EXEC != 0;
    if writable && executable {
        return Err(Error::InvalidArgument);
    }
    Ok(Access { writable, executable, user: true, uncached: false })
}

fn check_range(addr: u64, len: u64) -> Result<(), Error> {
    if len == 0 || !addr.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
        return Err(Error::InvalidArgument);
    }
    let end = addr.checked_add(len).ok_or(Error::BadAddress)?;
    if addr < USER_START || end > USER_LIMIT {
        return Err(Error::BadAddress);
    }
    Ok(())
}

impl AddressSpace {
    pub fn new() -> Result<Self, Error> {
        let mut mem = KernelTableMemory;
        let table = PageTable::new(&mut mem, X86 { nx: mm::nx_enabled() }).ok_or(Error::NoMemory)?;
        table.share_top_level(&mut mem, mm::kernel_root(), 256, 512);
        Ok(Self { table, next_chosen: CHOSEN_BASE, pages: 0, shared: Vec::new() })
    }

    pub fn root(&self) -> u64 {
        self.table.root
    }

    pub fn pages(&self) -> u64 {
        self.pages
    }

    fn choose(&mut self, len: u64) -> Result<u64, Error> {
        // 2 MiB-aligned for 2 MiB or more, so that shared memory can use 2 MiB pages.
        let align = if len >= LARGE { LARGE } else { PAGE_SIZE };
        let addr = self.next_chosen.checked_next_multiple_of(align).ok_or(Error::NoMemory)?;
        let end = addr.checked_add(len).filter(|&e| e <= USER_LIMIT).ok_or(Error::NoMemory)?;
        // A guard page between kernel-chosen mappings.
        self.next_chosen = end + PAGE_SIZE;
        Ok(addr)
    }

    fn is_free(&self, addr: u64, len: u64) -> bool {
        let mem = KernelTableMemory;
        (0..len / PAGE_SIZE).all(|i| self.table.translate(&mem, addr + i * PAGE_SIZE).is_none())
    }

    /// Map zeroed memory. `addr` 0 lets the kernel choose. Returns the address.
    pub fn map_anonymous(&mut self, addr: u64, len: u64, prot_bits: u64) -> Result<u64, Error> {
        let len = len.div_ceil(PAGE_SIZE).checked_mul(PAGE_SIZE).ok_or(Error::TooLarge)?;
        let access = access(prot_bits)?;
        let addr = if addr == 0 { self.choose(len)? } else { addr };
        check_range(addr, len)?;
        if self.pages + len / PAGE_SIZE > MAX_PAGES {
            return Err(Error::NoMemory);
        }
        if !self.is_free(addr, len) {
            return Err(Error::Exists);
        }
        let mut mem = KernelTableMemory;
        for i in 0..len / PAGE_SIZE {
            let va = addr + i * PAGE_SIZE;
            let frame = mm::alloc_zeroed_frame();
            let mapped = frame.ok_or(Error::NoMemory).and_then(|f| {
                self.table.map(&mut mem, va, f, PageSize::Size4K, access).map_err(|_| {
                    mm::free_frame(f);
                    Error::NoMemory
                })
            });
            if let Err(e) = mapped {
                self.unmap_pages(addr, i);
                return Err(e);
            }
            self.pages += 1;
        }
        Ok(addr)
    }

    /// Map a shared-memory object (all of it). Returns the address.
    pub fn map_shared(&mut self, addr: u64, shm: Arc<SharedMemory>, prot_bits: u64) -> Result<u64, Error> {
        let len = shm.pages() as u64 * PAGE_SIZE;
        // A device's registers are uncached: every access must reach the device, in order.
        let access = Access { uncached: shm.is_device(), ..access(prot_bits)? };
        let addr = if addr == 0 { self.choose(len)? } else { addr };
        check_range(addr, len)?;
        if !self.is_free(addr, len) {
            return Err(Error::Exists);
        }
        let mut mem = KernelTableMemory;
        let mut i = 0;
        while i < shm.pages() {
            let va = addr + i as u64 * PAGE_SIZE;
            let (size, step) = if va.is_multiple_of(LARGE) && shm.is_large_at(i) {
                (PageSize::Size2M, (LARGE / PAGE_SIZE) as usize)
            } else {
                (PageSize::Size4K, 1)
            };
            if self.table.map(&mut mem, va, shm.frame(i), size, access).is_err() {
                self.unmap_leaves(addr, va);
                return Err(Error::NoMemory);
            }
            i += step;
        }
        self.shared.push((addr, addr + len, shm.clone()));
        Ok(addr)
    }

    fn is_shared(&self, va: u64) -> bool {
        self.shared.iter().any(|&(s, e, _)| va >= s && va < e)
    }

    /// Remove the leaves (4 KiB or 2 MiB) that map `[addr, end)`, without freeing frames (shared
    /// memory owns its frames). A 2 MiB leaf goes whole.
    fn unmap_leaves(&mut self, addr: u64, end: u64) {
        let mut mem = KernelTableMemory;
        let mut va = addr;
        while va < end {
            let size = self.table.unmap_any(&mut mem, va).map_or(PAGE_SIZE, |(_, size)| size);
            va = (va & !(size - 1)) + size;
        }
    }

    fn unmap_pages(&mut self, addr: u64, count: u64) {
        let mut mem = KernelTableMemory;
        let end = addr + count * PAGE_SIZE;
        let mut va = addr;
        while va < end {
            // Anonymous memory is in 4 KiB pages; only shared memory has 2 MiB ones.
            let size = match self.table.unmap_any(&mut mem, va) {
                Some((frame, size)) => {
                    if !self.is_shared(va) {
                        mm::free_frame(frame);
                        self.pages -= 1;
                    }
                    size
                }
                None => PAGE_SIZE,
            };
            va = (va & !(size - 1)) + size;
        }
    }

    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        let len = len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        check_range(addr, len)?;
        self.unmap_pages(addr, len / PAGE_SIZE);
        self.shared.retain(|&(s, e, _)| !(s >= addr && e <= addr + len));
        // The TLB may still hold the old translations: flush this address space's entries.
        if crate::arch::x86_64::instructions::read_cr3() & !0xfff == self.table.root {
            // SAFETY: reloading the current CR3 flushes non-global TLB entries; it maps the same.
            unsafe { crate::arch::x86_64::instructions::write_cr3(self.table.root) };
        }
        Ok(())
    }

    /// The physical address of user byte `va`, if mapped for user access (and writable if asked).
    fn user_phys(&self, va: u64, write: bool) -> Option<u64> {
        if !(USER_START..USER_LIMIT).contains(&va) {
            return None;
        }
        let mem = KernelTableMemory;
        let entry = self.table.leaf_entry(&mem, va)?;
        let need = X86_PRESENT | X86_USER | if write { X86_WRITABLE } else { 0 };
        if entry & need != need {
            return None;
        }
        self.table.translate(&mem, va)
    }

    /// Whether every byte of `[addr, addr + len)` is mapped writable for the user.
    pub fn check_writable(&self, addr: u64, len: u64) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let last = addr.checked_add(len - 1).ok_or(Error::BadAddress)?;
        let mut page = addr / PAGE_SIZE * PAGE_SIZE;
        while page <= last {
            self.user_phys(page.max(addr), true).ok_or(Error::BadAddress)?;
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Copy `out.len()` bytes from user address `addr`.
    pub fn copy_from_user(&self, addr: u64, out: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < out.len() {
            let va = addr.checked_add(done as u64).ok_or(Error::BadAddress)?;
            let pa = self.user_phys(va, false).ok_or(Error::BadAddress)?;
            let chunk = ((PAGE_SIZE - va % PAGE_SIZE) as usize).min(out.len() - done);
            // SAFETY: `pa..pa+chunk` lies in one user page that is mapped (so it is RAM we own,
            // reached through the direct map); `out` is a kernel buffer of sufficient length.
            unsafe {
                core::ptr::copy_nonoverlapping(mm::phys_to_virt(pa) as *const u8, out[done..].as_mut_ptr(), chunk)
            };
            done += chunk;
        }
        Ok(())
    }

    /// Copy `data` to user address `addr` (which must be mapped writable).
    pub fn copy_to_user(&self, addr: u64, data: &[u8]) -> Result<(), Error> {
        let mut done = 0;
        while done < data.len() {
            let va = addr.checked_add(done as u64).ok_or(Error::BadAddress)?;
            let pa = self.user_phys(va, true).ok_or(Error::BadAddress)?;
            let chunk = ((PAGE_SIZE - va % PAGE_SIZE) as usize).min(data.len() - done);
            // SAFETY: as in copy_from_user; the page is mapped writable for the user and owned by
            // this address space (or its shared memory).
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), mm::phys_to_virt(pa) as *mut u8, chunk) };
            done += chunk;
        }
        Ok(())
    }

    /// Write into user memory regardless of the user's write permission (program loading).
    pub fn fill(&self, addr: u64, data: &[u8]) -> Result<(), Error> {
        let mem = KernelTableMemory;
        let mut done = 0;
        while done < data.len() {
            let va = addr + done as u64;
            let pa = self.table.translate(&mem, va).ok_or(Error::BadAddress)?;
            let chunk = ((PAGE_SIZE - va % PAGE_SIZE) as usize).min(data.len() - done);
            // SAFETY: the page was just mapped by the loader for this process (RAM, direct map).
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), mm::phys_to_virt(pa) as *mut u8, chunk) };
            done += chunk;
        }
        Ok(())
    }

    /// Free every user frame (except shared ones, which their SharedMemory objects own) and the
    /// lower-half tables. The root stays until Drop. Must not run while this space is in CR3.
    pub fn teardown(&mut self) {
        let mut mem = KernelTableMemory;
        for (start, end, _shm) in core::mem::take(&mut self.shared) {
            self.unmap_leaves(start, end);
        }
        self.table.free_lower_levels(&mut mem, 0, 256, &mut |frame, _| mm::free_frame(frame));
        self.pages = 0;
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        self.teardown();
        mm::free_frame(self.table.root);
    }
}
