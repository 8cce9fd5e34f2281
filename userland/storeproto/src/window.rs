//! Bulk copies into and out of a channel's data window. The window is an array of atomic
//! words, so that each side may touch it through a shared reference; copying it word by word
//! cost several instructions per byte (the storage benchmark's sequential read), one
//! `copy_nonoverlapping` (a `rep movsq`) costs an eighth of one.
//!
//! Why a plain copy is sound here: the protocol hands the window to one side at a time (the
//! client until it posts, the service until it answers; the state word's Release/Acquire orders
//! the bytes). A peer that breaks the protocol and writes while the other side copies can only
//! make the copied bytes garbage, which any `u8` may hold; the reader treats window contents as
//! untrusted either way. Nothing here keeps a reference into the window past the copy.
#![allow(unsafe_code)]

use core::sync::atomic::AtomicU64;

/// The window's bytes from `offset` for `len` bytes, as a raw pointer, if they are inside it.
fn bytes_at(window: &[AtomicU64], offset: usize, len: usize) -> Option<*mut u8> {
    let end = offset.checked_add(len)?;
    if end > core::mem::size_of_val(window) {
        return None;
    }
    // `AtomicU64::as_ptr` gives the word's interior (UnsafeCell) pointer, which may be written
    // through while shared references exist; the offset stays inside the array (checked above).
    Some(window.as_ptr().cast::<u8>().cast_mut().wrapping_add(offset))
}

/// Copy `bytes` into the window at `offset`; bytes past the window's end are left out by the
/// caller (a range outside it copies nothing).
pub(crate) fn copy_in(window: &[AtomicU64], offset: usize, bytes: &[u8]) {
    let Some(to) = bytes_at(window, offset, bytes.len()) else { return };
    // SAFETY: `to..to+len` lies inside `window` (checked by `bytes_at`), which is interior-
    // mutable memory (atomics) this side owns under the protocol (module doc); `bytes` is a
    // separate slice, so the ranges do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len()) };
}

/// Copy from the window at `offset` into `out`; a range outside the window copies nothing.
pub(crate) fn copy_out(window: &[AtomicU64], offset: usize, out: &mut [u8]) {
    let Some(from) = bytes_at(window, offset, out.len()) else { return };
    // SAFETY: `from..from+len` lies inside `window` (checked by `bytes_at`); any byte values are
    // valid for `u8`, so a racing peer can only garble them (module doc); `out` is an exclusive
    // slice of this side's memory, not the window.
    unsafe { core::ptr::copy_nonoverlapping(from.cast_const(), out.as_mut_ptr(), out.len()) };
}

/// Run `f` on the window's first `len` bytes as a slice of this side's (clamped to the window):
/// the storage service reads a file straight into a client's window, and writes from it, with
/// no copy of its own.
pub(crate) fn with_slice<R>(window: &[AtomicU64], len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let len = len.min(core::mem::size_of_val(window));
    let Some(start) = bytes_at(window, 0, len) else { return f(&mut []) };
    // SAFETY: `start..start+len` lies inside `window` (checked by `bytes_at`), interior-mutable
    // memory this side owns under the protocol while it holds the request (module doc); the
    // slice lives only for the call, during which this side touches the window through nothing
    // else. A peer that writes meanwhile breaks the protocol and can only garble the bytes of its
    // own request or reply: any bit pattern is a valid `u8`.
    let bytes = unsafe { core::slice::from_raw_parts_mut(start, len) };
    f(bytes)
}
