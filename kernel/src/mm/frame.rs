//! An owned physical frame: allocated zeroed, freed when dropped, so that a structure built
//! from several allocations cannot leak one when a later one fails (SVM's vCPU creation once
//! leaked its VMCB when the FPU area could not be allocated). It does not map anything: the
//! frame is reached through the direct map (`phys_to_virt`).

/// One 4 KiB frame of RAM, owned.
pub struct Frame(u64);

impl Frame {
    /// A zeroed frame anywhere in RAM.
    pub fn zeroed() -> Option<Frame> {
        super::alloc_zeroed_frame().map(Frame)
    }

    /// A zeroed frame below `limit` (a structure whose address must fit in 32 bits).
    pub fn zeroed_below(limit: u64) -> Option<Frame> {
        let frame = Frame(super::alloc_frame_below(limit)?);
        // SAFETY: the frame was just allocated for this owner alone and the direct map covers it.
        unsafe { core::ptr::write_bytes(frame.virt() as *mut u8, 0, keel_mm::PAGE_SIZE as usize) };
        Some(frame)
    }

    /// Its physical address.
    pub fn phys(&self) -> u64 {
        self.0
    }

    /// Its address in the direct map.
    pub fn virt(&self) -> u64 {
        super::phys_to_virt(self.0)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        super::free_frame(self.0);
    }
}
