//! The facts about a VM that Keel's two front ends and vmd share, each defined once: what a
//! VM or switch may be called, how a size is written, how much memory a VM may have, how long
//! an image's path may be, and how many disks and network interfaces a VM may have.
//!
//! - [`name`]: VM and switch names ([`check_vm_name`], [`check_switch_name`]);
//! - [`scaled`]: sizes as text, fmt_scaled(3) and scan_scaled(3) ([`fmt_scaled`], [`scan_scaled`]);
//! - [`memory`]: a VM's memory size, its bounds and default ([`parse_memory`], [`check_memory`]),
//!   and the message when it does not fit ([`NotEnoughMemory`]);
//! - [`disk`]: a disk image's size for `create -s` ([`parse_disk_size`]);
//! - [`path`]: paths to images, their length ([`check_path`]);
//! - the counts below.
//!
//! The shell (`keel-shell`, `start -m 1G web`), vm.conf (`keel-vmconf`, `memory 1G`) and vmd
//! use these and nothing else for these facts; `userland/shell/tests/front_ends_agree.rs`
//! checks that the two front ends accept exactly the same sizes and names. The rules follow
//! OpenBSD's vmd, vmctl(8) and vm.conf(5) where those have one; docs/vm.conf.md states them.
//!
//! What it does not do: parse a command line or a file (the front ends do, and put the file,
//! line or verb into the message), or look anything up. Errors are values whose `Display` is
//! a clear reason; nothing here panics on any input.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

pub mod disk;
pub mod memory;
pub mod name;
pub mod path;
pub mod scaled;

pub use disk::{parse_disk_size, DiskSizeError, MAX_DISK_SIZE, MIN_DISK_SIZE};
pub use memory::{check_memory, parse_memory, MemoryError, NotEnoughMemory, DEFAULT_MEMORY, MAX_MEMORY, MIN_MEMORY};
pub use name::{check_switch_name, check_vm_name, NameError, SWITCH_NAME_MAX, VM_NAME_MAX};
pub use path::{check_path, PATH_MAX};
pub use scaled::{fmt_scaled, scan_scaled, ScanError};

/// The most disks one VM may have (vmd's `VM_MAX_DISKS_PER_VM`).
pub const MAX_DISKS_PER_VM: usize = 4;
/// The most network interfaces one VM may have (vmd's `VM_MAX_NICS_PER_VM`).
pub const MAX_NICS_PER_VM: usize = 4;
