//! The control area shared with vmd (keel-vmproto), mapped once at start-up.

use alloc::string::String;

use keel_vmproto::ControlArea;

use crate::H_CONTROL;

pub fn map() -> Result<&'static ControlArea, String> {
    // vmd's control area (made by keel_rt::shared::control_area_create, then written by vmd).
    let ctl = keel_rt::shared::control_area_map(H_CONTROL).map_err(|e| alloc::format!("{e}"))?;
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
