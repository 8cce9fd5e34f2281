//! [`VcpuPage`]: the one way the kernel and the monitor reach the shared vCPU state page
//! ([`VcpuState`]), each access a volatile read or write of one field through a raw pointer.
//!
//! The page is written by two parties: the kernel stores the guest's registers and the exit, the
//! monitor edits registers and `dirty`, `inject` and `deadline_ns`. Neither may hold a Rust
//! reference into it (the compiler would assume nobody else writes it); both go through this
//! type instead. Every field is plain integers, so any value a racing write leaves is valid; the
//! kernel validates what it loads. A field is read or written whole, as before: no copy of the
//! page, so the exit path costs the same (docs/performance.md).
//!
//! Pure and host-tested (over a page in a Box).
#![cfg_attr(not(test), no_std)]

use core::ptr::NonNull;

use keel_addr::Gpa;

pub use keel_abi::vcpu::{ExitInfo, Inject, Segment, Table, VcpuState};

/// A handle to a shared [`VcpuState`] page. Copies name the same page.
#[derive(Clone, Copy, Debug)]
pub struct VcpuPage {
    page: NonNull<VcpuState>,
}

/// The getter and setter of each field: one volatile access each.
macro_rules! fields {
    ($($(#[$doc:meta])* $get:ident, $set:ident: $ty:ty;)*) => {
        impl VcpuPage {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $get(&self) -> $ty {
                    // SAFETY: `new`'s contract: the page is a live, aligned VcpuState, so the
                    // field is in bounds; a raw pointer, no reference is formed.
                    let field = unsafe { &raw const (*self.page.as_ptr()).$get };
                    // SAFETY: as above; volatile, because the other party may write it.
                    unsafe { field.read_volatile() }
                }

                #[doc = concat!("Writes `", stringify!($get), "`.")]
                #[inline(always)]
                pub fn $set(&self, value: $ty) {
                    // SAFETY: as in the getter.
                    let field = unsafe { &raw mut (*self.page.as_ptr()).$get };
                    // SAFETY: as in the getter: writable (`new`'s contract); volatile, because
                    // the other party reads it.
                    unsafe { field.write_volatile(value) }
                }
            )*
        }
    };
}

fields! {
    gprs, set_gprs: [u64; 16];
    rip, set_rip: u64;
    rflags, set_rflags: u64;
    cr0, set_cr0: u64;
    cr2, set_cr2: u64;
    cr3, set_cr3: u64;
    cr4, set_cr4: u64;
    efer, set_efer: u64;
    segs, set_segs: [Segment; 8];
    gdtr, set_gdtr: Table;
    idtr, set_idtr: Table;
    dirty, set_dirty: u64;
    exit, set_exit: ExitInfo;
    inject, set_inject: Inject;
    interruptible, set_interruptible: u32;
    system_current, set_system_current: u32;
    deadline_ns, set_deadline_ns: u64;
    kernel_exits, set_kernel_exits: u64;
    monitor_exits, set_monitor_exits: u64;
    exit_tsc, set_exit_tsc: u64;
    exit_idle_tsc, set_exit_idle_tsc: u64;
    entry_tsc, set_entry_tsc: u64;
    entry_idle_tsc, set_entry_idle_tsc: u64;
}

/// Getters (and for `inject`, setters) of single fields inside `exit` and `inject`: the exit
/// path reads the few it uses, not a copy of the whole record, and writes only what it changes.
macro_rules! nested {
    ($($get:ident $(, $set:ident)? = $first:ident . $field:ident: $ty:ty;)*) => {
        impl VcpuPage {
            $(
                #[doc = concat!("Reads `", stringify!($first), ".", stringify!($field), "`.")]
                #[inline(always)]
                pub fn $get(&self) -> $ty {
                    // SAFETY: as in the field getters.
                    let field = unsafe { &raw const (*self.page.as_ptr()).$first.$field };
                    // SAFETY: as in the field getters.
                    unsafe { field.read_volatile() }
                }
                $(
                    #[doc = concat!("Writes `", stringify!($first), ".", stringify!($field), "`.")]
                    #[inline(always)]
                    pub fn $set(&self, value: $ty) {
                        // SAFETY: as in the field setters.
                        let field = unsafe { &raw mut (*self.page.as_ptr()).$first.$field };
                        // SAFETY: as in the field setters.
                        unsafe { field.write_volatile(value) }
                    }
                )?
            )*
        }
    };
}

nested! {
    exit_kind = exit.kind: u32;
    exit_port = exit.port: u16;
    exit_size = exit.size: u8;
    exit_write = exit.write: u8;
    exit_data = exit.data: u64;
    exit_gpa = exit.gpa: Gpa;
    exit_detail = exit.detail: u64;
    exit_code_bits = exit.code_bits: u8;
    inject_pending, set_inject_pending = inject.pending: u32;
    inject_kind, set_inject_kind = inject.kind: u8;
    inject_vector, set_inject_vector = inject.vector: u8;
    inject_has_error_code, set_inject_has_error_code = inject.has_error_code: u8;
    inject_error_code, set_inject_error_code = inject.error_code: u32;
}

// `exit_insn` reads `insn_len` and `insn` as two aligned words.
const _: () = assert!(
    core::mem::offset_of!(ExitInfo, insn_len) % 8 == 0
        && core::mem::offset_of!(ExitInfo, insn) == core::mem::offset_of!(ExitInfo, insn_len) + 1
        && core::mem::offset_of!(VcpuState, exit) % 8 == 0
);

impl VcpuPage {
    /// # Safety
    /// `page` points to a `VcpuState` (aligned, mapped readable and writable) for as long as this
    /// value or a copy of it is used, and no Rust reference into that memory exists meanwhile.
    /// Another party (the kernel, the monitor) may read and write it concurrently.
    #[inline(always)]
    pub const unsafe fn new(page: NonNull<VcpuState>) -> Self {
        Self { page }
    }

    /// The page's address.
    pub fn as_ptr(&self) -> *mut VcpuState {
        self.page.as_ptr()
    }

    /// `gprs[index]` (`keel_abi::vcpu::reg`); panics if `index` is 16 or more.
    #[inline(always)]
    pub fn gpr(&self, index: usize) -> u64 {
        // SAFETY: as in the field getters; indexing the array place is bounds-checked.
        let field = unsafe { &raw const (*self.page.as_ptr()).gprs[index] };
        // SAFETY: as in the field getters.
        unsafe { field.read_volatile() }
    }

    /// Writes `gprs[index]`; panics if `index` is 16 or more.
    #[inline(always)]
    pub fn set_gpr(&self, index: usize, value: u64) {
        // SAFETY: as in `gpr`.
        let field = unsafe { &raw mut (*self.page.as_ptr()).gprs[index] };
        // SAFETY: as in the field setters.
        unsafe { field.write_volatile(value) }
    }

    /// `segs[index]` (`keel_abi::vcpu::seg`); panics if `index` is 8 or more.
    #[inline(always)]
    pub fn seg(&self, index: usize) -> Segment {
        // SAFETY: as in `gpr`.
        let field = unsafe { &raw const (*self.page.as_ptr()).segs[index] };
        // SAFETY: as in the field getters.
        unsafe { field.read_volatile() }
    }

    /// `exit.insn_len` and `exit.insn`: 16 bytes read as two volatile, aligned words (asserted
    /// above), not byte by byte.
    #[inline(always)]
    pub fn exit_insn(&self) -> (u8, [u8; 15]) {
        // SAFETY: as in the field getters.
        let field = unsafe { &raw const (*self.page.as_ptr()).exit.insn_len };
        // SAFETY: as in the field getters: `insn_len` and `insn` are 16 bytes of the page,
        // 8-aligned (asserted above); any bytes are valid words.
        let [lo, hi] = unsafe { field.cast::<[u64; 2]>().read_volatile() };
        let mut insn = [0u8; 15];
        insn[..7].copy_from_slice(&lo.to_le_bytes()[1..]);
        insn[7..].copy_from_slice(&hi.to_le_bytes());
        (lo as u8, insn)
    }

    /// Marks `bits` (`keel_abi::vcpu::dirty`) dirty, keeping the others.
    #[inline(always)]
    pub fn mark_dirty(&self, bits: u64) {
        self.set_dirty(self.dirty() | bits);
    }

    /// Writes the whole page (the monitor's initial state, before the vCPU first runs).
    pub fn store_all(&self, state: &VcpuState) {
        // SAFETY: as in the field setters (the whole page, one volatile write).
        unsafe { self.page.as_ptr().write_volatile(*state) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_abi::vcpu::{dirty, reg};

    fn page() -> (Box<VcpuState>, VcpuPage) {
        let mut b = Box::new(VcpuState::default());
        // SAFETY: the Box outlives the page in each test, and no reference into it is used meanwhile.
        let p = unsafe { VcpuPage::new(NonNull::from(&mut *b)) };
        (b, p)
    }

    #[test]
    fn fields_round_trip_and_land_in_the_page() {
        let (b, p) = page();
        p.set_rip(0x1234);
        p.set_gpr(reg::RAX, 7);
        p.set_dirty(dirty::RIP);
        p.mark_dirty(dirty::GPRS);
        p.set_inject(Inject { pending: 1, vector: 32, ..Default::default() });
        p.set_inject_pending(0);
        assert_eq!((p.rip(), p.gpr(reg::RAX), p.dirty()), (0x1234, 7, dirty::RIP | dirty::GPRS));
        assert_eq!((p.inject_pending(), p.inject().vector), (0, 32));
        p.set_exit(ExitInfo { port: 0x3f8, size: 1, data: 0x41, code_bits: 64, ..Default::default() });
        assert_eq!((p.exit_port(), p.exit_size(), p.exit_data(), p.exit_code_bits()), (0x3f8, 1, 0x41, 64));
        let insn: [u8; 15] = core::array::from_fn(|i| i as u8 + 1);
        p.set_exit(ExitInfo { insn_len: 15, insn, ..Default::default() });
        assert_eq!(p.exit_insn(), (15, insn));
        let mut segs = [Segment::default(); 8];
        segs[2].base = 0x1000;
        p.set_segs(segs);
        assert_eq!(p.seg(2).base, 0x1000);
        let st = *b;
        assert_eq!((st.rip, st.gprs[reg::RAX], st.dirty, st.inject.vector), (0x1234, 7, dirty::RIP | dirty::GPRS, 32));
    }

    #[test]
    fn store_all_writes_every_field() {
        let (b, p) = page();
        let st = VcpuState { rip: 5, cr3: 0x1000, deadline_ns: 9, ..Default::default() };
        p.store_all(&st);
        assert_eq!(*b, st);
        assert_eq!((p.cr3(), p.deadline_ns()), (0x1000, 9));
    }

    #[test]
    #[should_panic]
    fn gpr_index_is_bounds_checked() {
        let (_b, p) = page();
        p.gpr(16);
    }
}
