//! The kernel heap: a linked-list allocator over contiguous frames, reached through the direct map.
//!
//! Does not: grow. 8 MiB is plenty for the foundation (per-CPU tables and stacks); later issues
//! that allocate per VM should allocate frames, not heap.

use linked_list_allocator::LockedHeap;

const HEAP_FRAMES: u64 = 2048; // 8 MiB

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub struct HeapStats {
    pub size: usize,
    pub used: usize,
}

pub fn init() -> Result<(), &'static str> {
    let base = super::alloc_contiguous(HEAP_FRAMES).ok_or("no contiguous 8 MiB for the kernel heap")?;
    let size = (HEAP_FRAMES * keel_mm::PAGE_SIZE) as usize;
    // SAFETY: the frames were just allocated for the heap alone and are mapped writable by the
    // direct map; `init` runs once, before anything allocates.
    unsafe { HEAP.lock().init(super::phys_to_virt(base) as *mut u8, size) };
    Ok(())
}

pub fn stats() -> HeapStats {
    let heap = HEAP.lock();
    HeapStats { size: heap.size(), used: heap.used() }
}
