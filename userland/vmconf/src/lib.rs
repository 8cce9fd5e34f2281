//! vm.conf(5), the configuration of OpenBSD's vmd, parsed as vmd's parse.y does, for Keel's vmd.
//!
//! ```text
//! ramdisk="/bsd.rd"                      # macro; $ramdisk expands it outside quotes
//! local prefix 100.64.0.0/10             # global options: local prefix, local inet6 [prefix],
//! socket owner :wheel                    #   socket owner, staggered start, agentx
//! switch "uplink" { interface bridge0 }
//! vm "web" {
//!     memory 1G
//!     disk /var/vm/web.qcow2 format qcow2
//!     interface { switch "uplink" }
//!     local interface
//!     boot $ramdisk
//! }
//! vm "web" instance "web2" { disk "/var/vm/web2.qcow2" }
//! include "/etc/vm.d/more.conf"
//! ```
//!
//! Everything in vm.conf(5) and in vmd's parse.y (revision 1.72, 2025) is read: macros, `include`, comments,
//! line continuation, the global options, `vm` blocks (`allow instance`, `boot`, `boot device`,
//! `cdrom`, `disable`, `enable`, `disk ... format`, `[local] interface [name] [{...}]`,
//! `interfaces`, `memory`, `owner`, `sev`, `seves`) with instances, and `switch` blocks.
//!
//! Keel extensions (not in vmd), inside a vm block, for booting a Linux kernel directly with
//! `boot /path/to/vmlinuz`:
//! - `initrd PATH`: the initial ramdisk to load with it.
//! - `cmdline "STRING"`: its command line (several strings are joined with a space; at most
//!   2047 bytes). `initrd` and `cmdline` are therefore reserved words here.
//!
//! The input is untrusted: parsing never panics, and files, tokens, include nesting, macro
//! expansion and the numbers of vms and switches are bounded (see the `MAX_*` constants).
//! Differences from vmd are listed in the `lexer` and `parser` module docs. Fuzzing (nightly):
//! `cd userland/vmconf && cargo +nightly fuzz run vmconf_parse -- -dict=fuzz/vmconf.dict`.
//! Does not: touch files itself (includes come through an [`Includer`]), resolve users, groups or
//! host interfaces, or merge an instance with its parent VM.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod ast;
mod check;
mod diff;
mod error;
mod lexer;
mod parser;

#[cfg(test)]
mod tests;

use alloc::string::String;

pub use ast::{Agentx, BootDevice, Config, Disk, DiskFormat, Globals, Interface, Owner, Switch, VmConfig};
pub use check::CMDLINE_MAX;
pub use diff::{diff, Change};
pub use error::Error;
/// Names, sizes and limits are keel-vmlimits', shared with the shell (re-exported for users of
/// this crate).
pub use keel_vmlimits::{
    check_memory, parse_memory, scan_scaled, MAX_DISKS_PER_VM, MAX_MEMORY, MAX_NICS_PER_VM, MIN_MEMORY,
    SWITCH_NAME_MAX, VM_NAME_MAX,
};

/// Largest file (main or included) read.
pub const MAX_FILE_SIZE: usize = 1 << 20;
/// Largest total of all files of one parse.
pub const MAX_TOTAL_INPUT: usize = 8 << 20;
/// Longest single token (a word or quoted string), and longest joined string.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Deepest include nesting: the main file may include a file that includes ... 10 levels down.
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// Most `include` statements read in one parse.
pub const MAX_INCLUDED_FILES: usize = 256;
/// Most text that macro expansions may produce in one parse.
pub const MAX_MACRO_EXPANSION: usize = 1 << 20;
/// Most macros defined at once.
pub const MAX_MACROS: usize = 10_000;
/// Most vm blocks.
pub const MAX_VMS: usize = 1000;
/// Most switch blocks.
pub const MAX_SWITCHES: usize = 1000;

/// Reads the files named by `include` statements.
pub trait Includer {
    /// The text of `path`, or why it cannot be read (shown after "failed to include file ...: ").
    fn read(&mut self, path: &str) -> Result<String, String>;
}

/// An [`Includer`] that refuses every include.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIncludes;

impl Includer for NoIncludes {
    fn read(&mut self, _path: &str) -> Result<String, String> {
        Err(String::from("include is not supported here"))
    }
}

/// Parses `text`, the contents of the file `file_name` (used in error messages and to detect
/// include loops), reading included files through `includer`.
///
/// ```
/// use keel_vmconf::{parse, NoIncludes};
///
/// let text = "vm \"web\" {\n    memory 1G\n    local interface\n}\n";
/// let config = parse("vm.conf", text, &mut NoIncludes).unwrap();
/// assert_eq!(config.vms[0].memory, Some(1 << 30));
///
/// let err = parse("vm.conf", "vm \"web\" memory 1G {\n}\n", &mut NoIncludes).unwrap_err();
/// assert_eq!(err.to_string(), "vm.conf:1: syntax error: expected '{' after vm name, found 'memory'");
/// ```
pub fn parse(file_name: &str, text: &str, includer: &mut dyn Includer) -> Result<Config, Error> {
    let mut p = parser::Parser::new(includer);
    p.parse_file(file_name, text)?;
    Ok(p.finish())
}
