//! Image formats: [`Format`], how a file's format is recognised ([`detect`], by the qcow2 magic),
//! and the one rule for picking a new image's format from its name ([`format_for_path`]: vmctl's
//! `create disk.qcow2` makes qcow2, any other name raw).
//!
//! Not here: any parsing beyond the magic; the qcow2 header is `qcow2::header`'s.

use core::fmt;

use crate::{Error, ImageFile};

/// The qcow2 magic, "QFI\xfb" (qcow2 spec, "Header", bytes 0-3).
pub const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";

/// An image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The disk's bytes as they are, in a sparse file.
    Raw,
    /// QEMU's copy-on-write format, versions 2 and 3.
    Qcow2,
}

impl Format {
    /// The name qcow2's backing format extension and qemu-img use ("raw", "qcow2").
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }

    /// The format named `name` (as a backing format extension records it).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "raw" => Some(Format::Raw),
            "qcow2" => Some(Format::Qcow2),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The format a new image at `path` gets: qcow2 when the name ends in `.qcow2` (any case), raw
/// otherwise. vmctl's `create` and vmd use this one rule.
pub fn format_for_path(path: &str) -> Format {
    let name = path.rsplit('/').next().unwrap_or(path);
    let is_qcow2 = name.len() > ".qcow2".len()
        && name.get(name.len() - ".qcow2".len()..).is_some_and(|ext| ext.eq_ignore_ascii_case(".qcow2"));
    if is_qcow2 {
        Format::Qcow2
    } else {
        Format::Raw
    }
}

/// A disk as `start -d` takes it and vmd hands it to the monitor: `qcow2:PATH` or `raw:PATH`
/// names the format, a bare `PATH` leaves it to the image's first bytes ([`detect`]). The one
/// rule for the prefix, in the shell, vmd and the monitor.
pub fn split_disk_spec(spec: &str) -> (Option<Format>, &str) {
    for format in [Format::Raw, Format::Qcow2] {
        if let Some(path) = spec.strip_prefix(format.name()).and_then(|rest| rest.strip_prefix(':')) {
            return (Some(format), path);
        }
    }
    (None, spec)
}

/// The format of an existing image, by its first bytes: qcow2 if it starts with the magic, raw
/// otherwise (an empty file is raw).
pub fn detect(file: &mut dyn ImageFile) -> Result<Format, Error> {
    let mut magic = [0u8; 4];
    file.read_at(0, &mut magic)?;
    Ok(if magic == QCOW2_MAGIC { Format::Qcow2 } else { Format::Raw })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemFile;

    #[test]
    fn disk_specs_name_their_format_or_leave_it_to_the_image() {
        assert_eq!(split_disk_spec("qcow2:/a.img"), (Some(Format::Qcow2), "/a.img"));
        assert_eq!(split_disk_spec("raw:b"), (Some(Format::Raw), "b"));
        assert_eq!(split_disk_spec("/c.qcow2"), (None, "/c.qcow2"));
        assert_eq!(split_disk_spec("qcow2:"), (Some(Format::Qcow2), ""));
        assert_eq!(split_disk_spec("vmdk:/d"), (None, "vmdk:/d"));
    }

    #[test]
    fn names_pick_the_format() {
        assert_eq!(format_for_path("disk.qcow2"), Format::Qcow2);
        assert_eq!(format_for_path("/vm/Disk.QCOW2"), Format::Qcow2);
        assert_eq!(format_for_path("disk.img"), Format::Raw);
        assert_eq!(format_for_path(".qcow2"), Format::Raw);
        assert_eq!(format_for_path("qcow2.d/disk"), Format::Raw);
        assert_eq!(format_for_path("disk.qcow2é"), Format::Raw);
        assert_eq!(Format::from_name("qcow2"), Some(Format::Qcow2));
        assert_eq!(Format::from_name("vmdk"), None);
    }

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&mut MemFile::new(b"QFI\xfb\0\0\0\x03".to_vec())).unwrap(), Format::Qcow2);
        assert_eq!(detect(&mut MemFile::new(b"QFI".to_vec())).unwrap(), Format::Raw);
        assert_eq!(detect(&mut MemFile::default()).unwrap(), Format::Raw);
    }
}
