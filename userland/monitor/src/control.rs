//! The control area shared with vmd (keel-vmproto), mapped once at start-up.

use alloc::string::String;

use keel_abi::prot;
use keel_rt::sys;
use keel_vmproto::{ControlArea, CONTROL_PAGES};

use crate::H_CONTROL;

pub fn map() -> Result<&'static ControlArea, String> {
    let addr = sys::shm_map(H_CONTROL, 0, prot::READ | prot::WRITE).map_err(|e| alloc::format!("{e}"))?;
    // SAFETY: the kernel mapped vmd's control area (CONTROL_PAGES pages, zeroed then written by
    // vmd) read-write at `addr` for the life of this process; ControlArea is all atomics, valid
    // for any bytes, and fits (size asserted in keel-vmproto).
    let ctl: &'static ControlArea = unsafe { &*(addr as *const ControlArea) };
    let _ = CONTROL_PAGES;
    if !ctl.is_configured() {
        return Err(String::from("control area not configured by vmd"));
    }
    Ok(ctl)
}

/// A text field as a String (lossy: the field is vmd's, but check anyway).
pub fn text<const N: usize>(t: &keel_vmproto::Text<N>) -> String {
    let mut buf = [0u8; N];
    let n = t.get(&mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
