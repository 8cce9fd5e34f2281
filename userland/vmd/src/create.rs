//! `create [-b base | -i disk] [-s size] path`: vmctl(8)'s create, on the datastore. The
//! image's format comes from its name (keel-diskimage's `format_for_path`: qcow2 for `.qcow2`,
//! else raw), `-b` makes a qcow2 overlay, `-i` copies an image (converting between formats,
//! keeping it sparse). The messages are vmctl's: `vmctl: qcow2 imagefile created`, and
//! `vmctl: create imagefile operation failed: REASON` when it fails.
//!
//! A failed create removes the file it made; an existing file is never replaced. What it does
//! not do: run in the background (a long copy prints its progress and holds the shell).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;

use keel_diskimage::{copy, create, format_for_path, CreateOptions, Format, Image, OpenOptions};
use keel_rt::image_file::{DatastoreOpener, StorageFile};
use keel_rt::storage::StorageClient;

/// A path as the datastore names it: absolute.
pub fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        String::from(path)
    } else {
        format!("/{path}")
    }
}

/// What `create` was asked.
pub struct CreateArgs {
    pub path: String,
    pub size: Option<u64>,
    pub base: Option<String>,
    pub input: Option<String>,
}

/// Make the image; `progress` hears how far a copy is (bytes done, total). Returns vmctl's
/// success line, or the reason for its failure line.
pub fn run(client: &StorageClient, args: &CreateArgs, progress: &mut dyn FnMut(u64, u64)) -> Result<String, String> {
    let path = absolute(&args.path);
    let format = format_for_path(&path);
    let mut probe = client.clone();
    if probe.file_size(&path)?.is_some() {
        return Err(format!("{path}: File exists"));
    }
    if args.base.is_some() && format != Format::Qcow2 {
        return Err(String::from("base images require qcow2 disk format"));
    }
    let mut opener = DatastoreOpener { client: client.clone() };
    // The input first: a missing or unreadable one makes no file.
    let mut input = match &args.input {
        Some(name) => {
            let name = absolute(name);
            let file = StorageFile::open(client, &name, false, false).map_err(|e| format!("{name}: {e}"))?;
            let image = Image::open(Box::new(file), &name, OpenOptions { read_only: true, format: None }, &mut opener)
                .map_err(|e| format!("{e}"))?;
            if args.size.is_some_and(|s| s < image.size()) {
                return Err(String::from("size cannot be smaller than input disk size"));
            }
            Some(image)
        }
        None => None,
    };
    if let Some(base) = &args.base {
        // Recorded as given (relative names resolve against the overlay's directory, as QEMU
        // reads them); checked now so that a missing base makes no file.
        let resolved = keel_diskimage::resolve_backing_path(&path, base);
        if probe.file_size(&resolved)?.is_none() {
            return Err(format!("{resolved}: base image not found"));
        }
    }
    let file = StorageFile::open(client, &path, true, true).map_err(|e| format!("{e}"))?;
    let options = match (&args.base, &input) {
        (Some(base), _) => CreateOptions { size: args.size, ..CreateOptions::overlay(base) },
        (None, Some(src)) => CreateOptions::new(format, args.size.unwrap_or(src.size())),
        (None, None) => CreateOptions::new(format, args.size.unwrap_or(0)),
    };
    let made = create(Box::new(file), &path, options, &mut opener).and_then(|mut image| {
        if let Some(src) = input.as_mut() {
            copy(src, &mut image, progress)?;
        }
        image.flush()
    });
    match made {
        Ok(()) => Ok(format!("{} imagefile created", format.name())),
        Err(e) => {
            let _ = probe.remove(&path);
            Err(format!("{e}"))
        }
    }
}
