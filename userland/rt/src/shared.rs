//! Shared memory viewed as a typed value: the control area vmd shares with each VM's monitor
//! (keel-vmproto) and the storage channel between the storage service and its clients
//! (keel-storeproto), created and mapped here so that no program casts an address itself.

use keel_abi::{prot, Error, Handle};
use keel_storeproto::{Channel, CHANNEL_PAGES};
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

/// Create a storage channel (CHANNEL_PAGES zeroed pages, made a fresh channel) and map it
/// read-write: its handle (to grant to the storage service) and the channel.
pub fn store_channel_create() -> Result<(Handle, &'static Channel), Error> {
    let shm = sys::shm_create(CHANNEL_PAGES * 4096)?;
    let channel = store_channel_map(shm)?;
    channel.reset();
    Ok((shm, channel))
}

/// Map the storage channel `handle` names (one `store_channel_create` made) read-write, for the
/// rest of the process.
pub fn store_channel_map(handle: Handle) -> Result<&'static Channel, Error> {
    let addr = sys::shm_map(handle, 0, prot::READ | prot::WRITE)?;
    // SAFETY: the kernel mapped the channel's CHANNEL_PAGES pages read-write at `addr` (page
    // aligned); they stay mapped for the process's life; Channel is all atomics, valid for any
    // bytes (zero included), shared by design, and fits in CHANNEL_PAGES (its size rounded up).
    Ok(unsafe { &*(addr as *const Channel) })
}

/// A storage channel mapped until this value is dropped (the service's view of a client that
/// may go away): it derefs to the channel, and unmaps it on drop.
pub struct ChannelMapping {
    addr: u64,
}

impl ChannelMapping {
    /// Map the storage channel `handle` names read-write.
    pub fn map(handle: Handle) -> Result<ChannelMapping, Error> {
        Ok(ChannelMapping { addr: sys::shm_map(handle, 0, prot::READ | prot::WRITE)? })
    }
}

impl core::ops::Deref for ChannelMapping {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        // SAFETY: as in store_channel_map: the channel's pages are mapped read-write at `addr`
        // until Drop, which cannot run while this borrow lives; Channel is all atomics.
        unsafe { &*(self.addr as *const Channel) }
    }
}

impl Drop for ChannelMapping {
    fn drop(&mut self) {
        let _ = sys::mem_unmap(self.addr, CHANNEL_PAGES * 4096);
    }
}
