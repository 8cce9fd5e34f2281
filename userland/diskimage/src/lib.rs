//! Guest disk images: raw and qcow2 (versions 2 and 3), over any byte-addressed file. The
//! per-VM monitor serves a guest's virtio-blk disk from an [`Image`]; vmd creates images
//! ([`create`], `vmctl create`) and copies them ([`copy`], `vmctl create -i`).
//!
//! - [`ImageFile`]: the file underneath (a datastore file in Keel; [`MemFile`] in memory;
//!   `std::fs::File` with the `std` feature).
//! - [`Image`]: open ([`Image::open`], format by [`OpenOptions`] or by magic), `size`, `read`,
//!   `write`, `flush`, `discard`, `write_zeroes`, `read_only`, `block_status`.
//! - [`BackingOpener`]: how a qcow2 image's backing file is opened by name
//!   ([`resolve_backing_path`] is the naming rule; [`HostOpener`] on the host).
//! - [`create`] with [`CreateOptions`], [`copy`] / [`Copier`], [`format_for_path`].
//!
//! qcow2 writes are ordered so a crash leaves at worst leaked clusters (qcow2/write.rs), and a
//! hostile image is an error, never a panic, a huge allocation or an endless loop: every table
//! is checked against the file and QEMU's size limits, every entry where it is used, and a
//! backing chain is at most [`MAX_BACKING_DEPTH`] deep and never loops.
//!
//! Not here: encryption, external data files, extended L2 entries, zstd, writing internal
//! snapshots or compressed clusters (qcow2/mod.rs), and printing anything.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod backing;
mod copy;
mod create;
mod error;
mod file;
mod format;
mod image;
mod qcow2;
mod raw;

pub use backing::resolve_backing_path;
#[cfg(feature = "std")]
pub use backing::HostOpener;
pub use copy::{copy, Copier, COPY_CHUNK};
pub use create::{create, CreateOptions, DEFAULT_CLUSTER_BITS};
pub use error::Error;
pub use file::{sink_zeros, ImageFile, MemFile, Sink, Source};
pub use format::{detect, format_for_path, split_disk_spec, Format, QCOW2_MAGIC};
pub use image::{BackingOpener, BlockStatus, Image, NoBacking, OpenOptions, ReadOnlyReason, MAX_BACKING_DEPTH};
