//! Keel's guest networking, as OpenBSD's vmd does it, as pure code: frames in, decisions and
//! frames out. No device, no clock, no randomness of its own: the caller (a switch process, the
//! monitor's network device) passes frames as bytes and time as a monotonic nanosecond count.
//!
//! - Frames: [`ethernet`] (Ethernet II), [`ipv4`], [`udp`], with [`checksum`] (RFC 1071) and
//!   [`mac`] addresses. Parsing is zero-copy over `&[u8]`, checks every length, never panics.
//! - [`switch`]: a learning Ethernet switch for vm.conf's `switch "name" { ... }`, with a
//!   bounded MAC table, ageing, `locked lladdr`, port and switch up/down, counters, a fair
//!   ingress queue and a snapshot for the shell.
//! - [`local`]: the addresses of a `local interface` (vmctl start -L): vmd's /31 per VM and
//!   interface out of the local prefix, and the IPv6 form (`local inet6`).
//! - [`dhcp`]: the DHCP/BOOTP server vmd runs on a local interface (vmd's dhcp.c).
//! - [`arp`] and [`icmp`]: the host side of a local interface answers ARP for its address and
//!   ICMP echo to it. [`host`] puts the three answerers behind one call.
//!
//! What it does not do: route or NAT between a local interface and anything else, DHCPv6 or
//! router advertisements (vmd leaves those to rad(8) too), IP fragments, VLANs (a tagged frame
//! is switched by its MAC addresses like any other, and the host side does not answer it).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod ethernet;
pub mod host;
pub mod icmp;
pub mod ipv4;
pub mod local;
pub mod mac;
pub mod switch;
pub mod udp;

mod malformed;

#[cfg(test)]
mod tests;

pub use mac::MacAddr;
pub use malformed::Malformed;
