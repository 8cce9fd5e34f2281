//! The DHCP/BOOTP server of one local interface, after vmd's dhcp.c: the guest always gets the
//! same answer, its half of the interface's /31 ([`crate::local`]), so there is no lease
//! state, only a decision per request.
//!
//! Answered (vmd's rules, dhcp.c `dhcp_request`): a frame of 314 to 1514 bytes (BOOTP's 300
//! plus the Ethernet header, up to a 1500-byte MTU), to the broadcast MAC or the host-side MAC,
//! from the guest's MAC, UDP 68 to 67, BOOTREQUEST with htype Ethernet, hlen 6 and `chaddr` the
//! guest's MAC, and `ciaddr` 0, no boot file name and `hops` 0 (vmd: "unsupported requests";
//! with an infinite lease a guest has no reason to renew). Then:
//!
//! | request | reply |
//! |---|---|
//! | no DHCP message type (plain BOOTP) | BOOTREPLY with mask, router, name server |
//! | DHCPDISCOVER | DHCPOFFER |
//! | DHCPREQUEST, no requested address or ours | DHCPACK |
//! | DHCPREQUEST for another address | DHCPNAK |
//!
//! OFFER and ACK carry (RFC 2132 codes, in vmd's order) 53 message type, 51 lease time
//! 0xffffffff (infinite: "our lease never changes"), 54 server identifier (host side), 1 subnet
//! mask 255.255.255.254, 3 router and 6 name server (both the host side), then 12 host name for
//! a network-booted VM; `yiaddr` is the guest's address and `siaddr` the host side's. The IP
//! header is vmd's too: TOS low delay, TTL 16, from the host side, UDP 67 to 68; the Ethernet
//! source is the host-side MAC. A network-booted VM (vmd's `pxeboot`, vm.conf
//! `boot device net`) also gets the boot file name "auto_install", and its VM name as host
//! name when that is a valid host name (res_hnok(3)) of two characters or more.
//!
//! Where this follows RFC 2131 rather than vmd:
//! - DECLINE, RELEASE, INFORM and server-to-client types (OFFER, ACK, NAK) are ignored (vmd
//!   NAKs whatever is not DISCOVER or REQUEST); so is message type 0 (vmd takes it as BOOTP).
//! - A REQUEST naming another server (option 54) is ignored: the client chose that server
//!   (RFC 2131 4.3.2). vmd does not look at option 54.
//! - Replies are broadcast (IP 255.255.255.255, MAC ff:ff:ff:ff:ff:ff) when the client set the
//!   broadcast flag, and NAKs always (RFC 2131 4.1); vmd unicasts every reply to the guest's
//!   MAC and address. `flags` and `giaddr` are copied into the reply (RFC 2131 table 3).
//! - A NAK carries only the message type and server identifier, with `yiaddr` and `siaddr`
//!   zero (RFC 2131 table 3); vmd's NAK has every option of an ACK.
//! - The options area is the UDP payload (per the UDP length), not the rest of the frame.
//! - IP and UDP are checked as [`crate::ipv4`] and [`crate::udp`] say (version, protocol,
//!   fragments); vmd's packet.c checks only the lengths and checksums.

pub mod message;
mod reply;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

use crate::ethernet;
use crate::local::LocalAddrs;
use crate::MacAddr;

pub use message::{msg, opt, parse, parse_options, Message, NotDhcp, Options};
pub use message::{BOOTP_MIN_LEN, FIXED_LEN, FLAG_BROADCAST, HTYPE_ETHERNET, MAGIC_COOKIE};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// Option 51 value meaning infinity (RFC 2132 9.2); vmd's lease never changes.
pub const LEASE_TIME_INFINITE: u32 = 0xffff_ffff;
/// vmd's frame bounds: a whole BOOTP message, at most a 1500-byte MTU.
pub const MIN_REQUEST_FRAME: usize = ethernet::HEADER_LEN + BOOTP_MIN_LEN;
pub const MAX_REQUEST_FRAME: usize = ethernet::HEADER_LEN + 1500;
/// The boot file name vmd gives a network-booted VM (OpenBSD's autoinstall(8) convention).
pub const NET_BOOT_FILE: &str = "auto_install";

/// The server for one local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServer {
    guest_mac: MacAddr,
    host_mac: MacAddr,
    addrs: LocalAddrs,
    net_boot: Option<NetBoot>,
}

/// What a network-booted VM gets besides its address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NetBoot {
    host_name: Option<String>,
}

/// What the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    Nak,
    /// A BOOTREPLY to a plain BOOTP request.
    Bootp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpReply {
    pub kind: ReplyKind,
    /// The whole Ethernet frame, for the guest.
    pub frame: Vec<u8>,
}

/// Why a frame got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Shorter than [`MIN_REQUEST_FRAME`] or longer than [`MAX_REQUEST_FRAME`].
    FrameLength,
    NotDhcp(NotDhcp),
    /// Not to the broadcast MAC or the host side's.
    NotForUs,
    /// Not from the guest's MAC (Ethernet source or `chaddr`), or not Ethernet (`htype`, `hlen`).
    NotFromGuest,
    /// A BOOTREPLY, not a request.
    NotRequest,
    /// `ciaddr` set, a boot file name asked for, or relayed (`hops`): vmd does not answer these.
    Unsupported,
    /// A DHCP message type the server does not answer.
    MessageType(u8),
    /// A REQUEST for another server's offer.
    OtherServer,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameLength => f.write_str("frame length out of range"),
            Self::NotDhcp(NotDhcp::Malformed(m)) => write!(f, "not DHCP: {m}"),
            Self::NotDhcp(NotDhcp::Ports) => f.write_str("not DHCP: not UDP 68 to 67"),
            Self::NotDhcp(NotDhcp::Short) => f.write_str("not DHCP: shorter than a BOOTP header"),
            Self::NotForUs => f.write_str("not addressed to the host side"),
            Self::NotFromGuest => f.write_str("not from the guest's MAC"),
            Self::NotRequest => f.write_str("not a BOOTREQUEST"),
            Self::Unsupported => f.write_str("ciaddr, file or hops set"),
            Self::MessageType(t) => write!(f, "DHCP message type {t} not answered"),
            Self::OtherServer => f.write_str("request for another server"),
        }
    }
}

impl DhcpServer {
    /// A server answering `guest_mac` from `host_mac` with `addrs` (see
    /// [`MacAddr::host_side_of`] for vmd's host-side MAC).
    pub fn new(guest_mac: MacAddr, host_mac: MacAddr, addrs: LocalAddrs) -> Self {
        Self { guest_mac, host_mac, addrs, net_boot: None }
    }

    /// The VM boots from the network (vm.conf `boot device net`): replies name the boot file
    /// [`NET_BOOT_FILE`] and carry `vm_name` as host name if it is a valid one.
    pub fn with_net_boot(mut self, vm_name: &str) -> Self {
        let usable = vm_name.len() > 1 && vm_name.len() <= usize::from(u8::MAX) && is_host_name(vm_name);
        self.net_boot = Some(NetBoot { host_name: usable.then(|| String::from(vm_name)) });
        self
    }

    pub fn guest_mac(&self) -> MacAddr {
        self.guest_mac
    }

    pub fn host_mac(&self) -> MacAddr {
        self.host_mac
    }

    pub fn addrs(&self) -> LocalAddrs {
        self.addrs
    }

    /// The reply to `frame`, a frame from the guest, or why there is none.
    pub fn answer(&self, frame: &[u8]) -> Result<DhcpReply, Ignored> {
        if !(MIN_REQUEST_FRAME..=MAX_REQUEST_FRAME).contains(&frame.len()) {
            return Err(Ignored::FrameLength);
        }
        let request = parse(frame).map_err(Ignored::NotDhcp)?;
        let kind = self.decide(&request)?;
        Ok(DhcpReply { kind, frame: reply::build(self, &request, kind) })
    }

    /// vmd's checks and RFC 2131 4.3's choice of reply, in vmd's order.
    fn decide(&self, request: &Message<'_>) -> Result<ReplyKind, Ignored> {
        if request.eth_dst != MacAddr::BROADCAST && request.eth_dst != self.host_mac {
            return Err(Ignored::NotForUs);
        }
        if request.eth_src != self.guest_mac {
            return Err(Ignored::NotFromGuest);
        }
        if request.op() != message::OP_BOOTREQUEST {
            return Err(Ignored::NotRequest);
        }
        if request.htype() != HTYPE_ETHERNET
            || request.hlen() != message::HLEN_ETHERNET
            || request.chaddr_mac() != self.guest_mac
        {
            return Err(Ignored::NotFromGuest);
        }
        if !request.ciaddr().is_unspecified() || request.has_file() || request.hops() != 0 {
            return Err(Ignored::Unsupported);
        }
        let options = &request.options;
        let Some(message_type) = options.message_type else { return Ok(ReplyKind::Bootp) };
        match message_type {
            msg::DISCOVER => Ok(ReplyKind::Offer),
            msg::REQUEST => {
                if options.server_id.is_some_and(|id| id != self.addrs.host) {
                    return Err(Ignored::OtherServer);
                }
                // vmd reads a requested address of 0.0.0.0 as none.
                match options.requested_address.filter(|a| !a.is_unspecified()) {
                    Some(asked) if asked != self.addrs.guest => Ok(ReplyKind::Nak),
                    _ => Ok(ReplyKind::Ack),
                }
            }
            other => Err(Ignored::MessageType(other)),
        }
    }
}

/// res_hnok(3): dot-separated labels whose first and last characters are letters or digits and
/// whose others are letters, digits, '-' or '_'.
pub fn is_host_name(name: &str) -> bool {
    let border = |c: u8| c.is_ascii_alphanumeric();
    let middle = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    !name.is_empty()
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            match bytes {
                [] => true,
                [only] => border(*only),
                [first, inner @ .., last] => border(*first) && border(*last) && inner.iter().all(|&c| middle(c)),
            }
        })
}

/// The guest-side address a reply goes to: broadcast for NAKs and when the client asked for
/// it, else the guest's address (RFC 2131 4.1, giaddr and ciaddr being zero).
fn reply_destination(kind: ReplyKind, flags: u16, guest_mac: MacAddr, guest_ip: Ipv4Addr) -> (MacAddr, Ipv4Addr) {
    if kind == ReplyKind::Nak || flags & FLAG_BROADCAST != 0 {
        (MacAddr::BROADCAST, Ipv4Addr::BROADCAST)
    } else {
        (guest_mac, guest_ip)
    }
}
