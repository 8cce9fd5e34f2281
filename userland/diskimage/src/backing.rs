//! Backing file names: how a name recorded in an image resolves ([`resolve_backing_path`]: a
//! relative name is relative to the directory of the image that records it, as QEMU reads it),
//! and [`HostOpener`] (feature `std`), which opens backing files on the host by that rule.
//!
//! Not here: the datastore opener (the monitor and vmd implement [`crate::BackingOpener`] over
//! the storage service, with the same [`resolve_backing_path`]).

use alloc::string::String;

/// The path a backing file name recorded in the image at `image` refers to.
pub fn resolve_backing_path(image: &str, backing: &str) -> String {
    if backing.starts_with('/') {
        return String::from(backing);
    }
    match image.rfind('/') {
        Some(slash) => {
            let mut path = String::from(&image[..=slash]);
            path.push_str(backing);
            path
        }
        None => String::from(backing),
    }
}

/// Opens backing files on the host, read-only, by [`resolve_backing_path`]; names are made
/// canonical so that a chain that loops through different spellings is still caught.
#[cfg(feature = "std")]
pub struct HostOpener;

#[cfg(feature = "std")]
impl crate::BackingOpener for HostOpener {
    fn open_backing(
        &mut self,
        image: &str,
        backing: &str,
    ) -> Result<(alloc::boxed::Box<dyn crate::ImageFile>, String), crate::Error> {
        let path = resolve_backing_path(image, backing);
        let file = std::fs::File::open(&path).map_err(|e| crate::Error::Io(alloc::format!("{path}: {e}")))?;
        let resolved = std::fs::canonicalize(&path).map(|p| p.to_string_lossy().into_owned()).unwrap_or(path);
        Ok((alloc::boxed::Box::new(file), resolved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_are_relative_to_the_image() {
        assert_eq!(resolve_backing_path("/vm/disks/top.qcow2", "base.qcow2"), "/vm/disks/base.qcow2");
        assert_eq!(resolve_backing_path("/vm/top.qcow2", "../base.img"), "/vm/../base.img");
        assert_eq!(resolve_backing_path("top.qcow2", "base.qcow2"), "base.qcow2");
        assert_eq!(resolve_backing_path("/vm/top.qcow2", "/images/base.img"), "/images/base.img");
    }
}
