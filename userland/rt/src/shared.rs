//! Shared memory viewed as a typed value: the control area vmd shares with each VM's monitor
//! (keel-vmproto), created and mapped here so that neither program casts an address itself.

use keel_abi::{prot, Error, Handle};
use keel_vmproto::{ControlArea, CONTROL_PAGES};

use crate::sys;

/// Create a control area (CONTROL_PAGES zeroed pages) and map it read-write: its handle (to
/// grant to a monitor) and the area, for the rest of the process.
pub fn control_area_create() -> Result<(Handle, &'static ControlArea), Error> {
    let shm = sys::shm_create(CONTROL_PAGES * 4096)?;
    Ok((shm, control_area_map(shm)?))
}

/// Map the control area `handle` names (one `control_area_create` made: CONTROL_PAGES pages)
/// read-write, for the rest of the process.
pub fn control_area_map(handle: Handle) -> Result<&'static ControlArea, Error> {
    let addr = sys::shm_map(handle, 0, prot::READ | prot::WRITE)?;
    // SAFETY: the kernel mapped the area's CONTROL_PAGES pages read-write at `addr` (page
    // aligned); they stay mapped for the process's life (no program unmaps its control area);
    // ControlArea is all atomics, valid for any bytes (zero included), shared by design, and
    // fits (size asserted in keel-vmproto).
    Ok(unsafe { &*(addr as *const ControlArea) })
}
