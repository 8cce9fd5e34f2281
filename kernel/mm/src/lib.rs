//! Memory-management logic that needs no hardware: the physical frame allocator and the
//! page-table builder. The kernel plugs in the real memory (through its direct map); the host
//! tests plug in a fake one.
//!
//! Does not: touch CR3, flush TLBs or know where the direct map is. Those are kernel glue.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod frames;
pub mod paging;
pub mod range;

/// Size of a base page and of a physical frame.
pub const PAGE_SIZE: u64 = 4096;
