//! Guest RAM as the monitor sees it: shared-memory objects mapped both into the VM and into this
//! process, one below the 32-bit MMIO hole (from GPA 0) and, for a VM larger than that, one from
//! 4 GiB (keel-guestboot's `ram_ranges`). Accesses are bounds-checked copies through a raw pointer
//! (the guest may change the memory whenever its vCPU runs, so no Rust reference is kept into
//! it); an access must lie in one piece (the hole is between them).

use alloc::vec::Vec;

use keel_abi::{prot, vcpu::gprot, Handle};
use keel_addr::Gpa;
use keel_rt::sys;

/// One piece of RAM: `len` bytes at guest-physical `gpa`, mapped here at `base`.
struct Piece {
    gpa: Gpa,
    base: *mut u8,
    len: u64,
}

pub struct GuestRam {
    pieces: Vec<Piece>,
}

impl GuestRam {
    /// Create `memory` bytes of RAM, map it here and in `vm` where keel-guestboot's layout says.
    pub fn create(vm: Handle, memory: u64) -> Result<GuestRam, keel_abi::Error> {
        let mut pieces = Vec::new();
        for (gpa, len) in keel_guestboot::ram_ranges(memory) {
            if len == 0 {
                continue;
            }
            let shm = sys::shm_create(len)?;
            let base = sys::shm_map(shm, 0, prot::READ | prot::WRITE)?;
            sys::vm_map(vm, shm, gpa, gprot::ALL)?;
            pieces.push(Piece { gpa, base: base as *mut u8, len });
        }
        Ok(GuestRam { pieces })
    }

    /// Where `len` bytes at guest-physical `gpa` are in this process, if they all lie in one piece
    /// of RAM (an empty access may sit at a piece's end).
    fn at(&self, gpa: Gpa, len: u64) -> Option<*mut u8> {
        let piece = self.pieces.iter().find(|p| gpa >= p.gpa && gpa.0 - p.gpa.0 <= p.len)?;
        let offset = gpa.0 - piece.gpa.0;
        if offset.checked_add(len)? > piece.len {
            return None;
        }
        // SAFETY: `offset + len <= piece.len` (checked above), so the result is inside (or one past
        // the end of) the piece's mapping, which stays mapped for the life of this process.
        Some(unsafe { piece.base.add(offset as usize) })
    }

    /// Copy `data` to guest-physical `gpa`; false if it does not fit in RAM.
    pub fn write(&self, gpa: Gpa, data: &[u8]) -> bool {
        let Some(dst) = self.at(gpa, data.len() as u64) else { return false };
        // SAFETY: `dst..dst + data.len()` is inside a RAM mapping (`at` checked it), which stays
        // mapped read-write for the life of this process; a raw copy creates no reference into it.
        unsafe { copy(data.as_ptr(), dst, data.len()) };
        true
    }

    /// Copy from guest-physical `gpa` into `out`; false if it is not all RAM.
    pub fn read(&self, gpa: Gpa, out: &mut [u8]) -> bool {
        let Some(src) = self.at(gpa, out.len() as u64) else { return false };
        // SAFETY: as in `write`: inside a mapping, a raw copy, no reference kept.
        unsafe { copy(src, out.as_mut_ptr(), out.len()) };
        true
    }

    /// Zero `len` bytes at `gpa`.
    pub fn zero(&self, gpa: Gpa, len: u64) -> bool {
        let Some(dst) = self.at(gpa, len) else { return false };
        // SAFETY: as in `write`: inside a mapping, a raw write, no reference kept.
        unsafe { core::ptr::write_bytes(dst, 0, len as usize) };
        true
    }
}

/// Copies `len` bytes. The sizes the virtqueues use most (ring indices, descriptors, request
/// headers: 2, 4, 8 and 16 bytes) are one unaligned move each instead of a `memcpy` call, which
/// about halves what reading a descriptor chain costs.
///
/// # Safety
///
/// `src` must be valid for reading and `dst` for writing `len` bytes, and they must not overlap.
unsafe fn copy(src: *const u8, dst: *mut u8, len: usize) {
    match len {
        // SAFETY: the caller's contract covers the `len` bytes each arm moves.
        2 => unsafe { move_one::<u16>(src, dst) },
        // SAFETY: as above.
        4 => unsafe { move_one::<u32>(src, dst) },
        // SAFETY: as above.
        8 => unsafe { move_one::<u64>(src, dst) },
        // SAFETY: as above.
        16 => unsafe { move_one::<u128>(src, dst) },
        // SAFETY: as above.
        _ => unsafe { core::ptr::copy_nonoverlapping(src, dst, len) },
    }
}

/// Moves one `T` (unaligned) from `src` to `dst`.
///
/// # Safety
///
/// `src` must be valid for reading and `dst` for writing `size_of::<T>()` bytes.
unsafe fn move_one<T: Copy>(src: *const u8, dst: *mut u8) {
    // SAFETY: the caller's contract; an unaligned read has no alignment requirement, and `T`
    // (an integer here) is valid for any bits.
    let value = unsafe { src.cast::<T>().read_unaligned() };
    // SAFETY: as above, for writing.
    unsafe { dst.cast::<T>().write_unaligned(value) }
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
