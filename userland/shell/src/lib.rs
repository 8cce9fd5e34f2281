//! Keel's control shell (`keel> ` on the serial port), as pure logic for vmd.
//!
//! vmd owns the machine's serial port and offers this shell, which speaks vmctl(8)'s verbs:
//! - [`editor`]: bytes to lines (echo, backspace, Ctrl-U/C/W, history on the arrow keys);
//! - [`words`], [`verbs`], [`command`]: a line to a [`Command`], with vmctl's flags, checks,
//!   error messages and usage lines;
//! - [`table`]: the `show` table exactly as vmctl prints it, with fmt_scaled(3);
//! - [`mux`], [`console`], [`loopback`]: attaching to a VM's console (`~.` detaches), keeping
//!   its output while detached, and an echo stream to test with.
//!
//! What a VM may be called and how much memory it may have are not defined here but in
//! `keel-vmlimits`, which vm.conf uses too.
//!
//! It does no I/O and runs nothing: vmd feeds it bytes and acts on what it returns. Every byte
//! from the serial line is treated as hostile: nothing here panics on any input, and every
//! buffer is bounded (see each module's documentation for its bound).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

pub mod command;
pub mod console;
pub mod editor;
pub mod loopback;
pub mod mux;
pub mod table;
pub mod verbs;
pub mod words;

pub use command::{parse, BootDevice, Command, ParseError, ResetWhat, StartArgs, Target};
pub use console::{Console, RingBuffer};
pub use editor::{EditorEvent, LineEditor};
/// Sizes are read and written as vm.conf reads and writes them: one definition, in keel-vmlimits.
pub use keel_vmlimits::{fmt_scaled, scan_scaled};
pub use loopback::LoopbackStream;
pub use mux::{EscapeAction, EscapeFilter};
pub use table::{format_show, VmRow};
pub use verbs::{help_text, usage, verb_help};
