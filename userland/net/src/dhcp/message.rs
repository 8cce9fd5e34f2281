//! BOOTP/DHCP messages from a guest, parsed out of a whole Ethernet frame: Ethernet II, a checked
//! IPv4 header, UDP (checksum verified when present), then the BOOTP fixed part (RFC 951,
//! RFC 2131 section 2) and, after the magic cookie, the options (RFC 2132).
//!
//! The option walk is bounded by the options area (the UDP payload after the fixed part): every
//! step moves at least one byte forward, so it ends; PAD is skipped, END stops it, an option
//! whose length runs past the area stops it (the options before it are kept, as vmd's dhcp.c
//! does). Options read: 53 message type, 50 requested address, 54 server identifier, 55
//! parameter request list; others are skipped, a repeated one replaces the earlier. Option 52
//! (overload: more options in `sname`/`file`) is not followed, as in vmd, and `sname` and
//! `file` are never parsed for options. Without the cookie the message is plain BOOTP.
//!
//! This is structure only: whether the message is one to answer is [`super::DhcpServer`]'s call.

use core::net::Ipv4Addr;

use crate::ethernet::EthernetFrame;
use crate::ipv4::Ipv4Packet;
use crate::udp::UdpDatagram;
use crate::{MacAddr, Malformed};

pub const OP_BOOTREQUEST: u8 = 1;
pub const OP_BOOTREPLY: u8 = 2;
/// ARP hardware type Ethernet, in `htype` (RFC 1700).
pub const HTYPE_ETHERNET: u8 = 1;
pub const HLEN_ETHERNET: u8 = 6;
/// The `flags` bit asking for broadcast replies (RFC 1542 3.1.1, RFC 2131 4.1).
pub const FLAG_BROADCAST: u16 = 0x8000;
/// op through file: the part before the options (RFC 2131 figure 1).
pub const FIXED_LEN: usize = 236;
/// The shortest BOOTP message, with its 64-byte vendor area (RFC 951); replies are padded to it.
pub const BOOTP_MIN_LEN: usize = 300;
/// RFC 2131 3: 99.130.83.99 opens the options.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Field offsets in the fixed part.
pub const AT_XID: usize = 4;
pub const AT_FLAGS: usize = 10;
pub const AT_CIADDR: usize = 12;
pub const AT_YIADDR: usize = 16;
pub const AT_SIADDR: usize = 20;
pub const AT_GIADDR: usize = 24;
pub const AT_CHADDR: usize = 28;
pub const AT_FILE: usize = 108;

/// Option codes (RFC 2132).
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTERS: u8 = 3;
    pub const DOMAIN_NAME_SERVERS: u8 = 6;
    pub const HOST_NAME: u8 = 12;
    pub const REQUESTED_ADDRESS: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_LIST: u8 = 55;
    pub const END: u8 = 255;
}

/// DHCP message types (option 53, RFC 2132 9.6).
pub mod msg {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
    pub const INFORM: u8 = 8;
}

/// Why a frame is not a DHCP/BOOTP message at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDhcp {
    /// Ethernet, IPv4 or UDP did not parse (non-IPv4 EtherTypes, tagged frames and non-UDP
    /// packets are `WrongProtocol`).
    Malformed(Malformed),
    /// Not UDP from port 68 to port 67.
    Ports,
    /// The UDP payload is shorter than the BOOTP fixed part.
    Short,
}

/// The options this server reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options<'a> {
    /// The magic cookie was there: this is DHCP, not plain BOOTP.
    pub cookie: bool,
    pub message_type: Option<u8>,
    pub requested_address: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    /// Parsed for completeness; the reply always carries the same options, as vmd's does.
    pub parameter_list: &'a [u8],
}

/// A BOOTP/DHCP message in a frame, borrowing the frame.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub eth_dst: MacAddr,
    pub eth_src: MacAddr,
    /// The BOOTP message: the UDP payload, at least [`FIXED_LEN`] bytes.
    bootp: &'a [u8],
    pub options: Options<'a>,
}

impl<'a> Message<'a> {
    pub fn op(&self) -> u8 {
        self.bootp[0]
    }

    pub fn htype(&self) -> u8 {
        self.bootp[1]
    }

    pub fn hlen(&self) -> u8 {
        self.bootp[2]
    }

    pub fn hops(&self) -> u8 {
        self.bootp[3]
    }

    pub fn xid(&self) -> [u8; 4] {
        self.array(AT_XID)
    }

    pub fn flags(&self) -> u16 {
        u16::from_be_bytes(self.array(AT_FLAGS))
    }

    pub fn ciaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>(AT_CIADDR))
    }

    pub fn giaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>(AT_GIADDR))
    }

    /// The first six bytes of `chaddr`: the client's MAC when `htype`/`hlen` say Ethernet.
    pub fn chaddr_mac(&self) -> MacAddr {
        MacAddr(self.array(AT_CHADDR))
    }

    /// The boot file name field is in use (its first byte is not NUL).
    pub fn has_file(&self) -> bool {
        self.bootp[AT_FILE] != 0
    }

    /// `N` bytes at `at` in the fixed part (every caller's offset is inside it).
    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        self.bootp.get(at..at + N).and_then(|b| b.try_into().ok()).unwrap_or([0; N])
    }
}

/// Parses `frame` down to the DHCP options. Port numbers are checked here (client 68 to
/// server 67) since nothing else makes the payload a BOOTP message.
pub fn parse(frame: &[u8]) -> Result<Message<'_>, NotDhcp> {
    let eth = EthernetFrame::parse(frame).map_err(NotDhcp::Malformed)?;
    let ip = Ipv4Packet::in_frame(&eth).map_err(NotDhcp::Malformed)?;
    let udp = UdpDatagram::parse(&ip).map_err(NotDhcp::Malformed)?;
    if udp.src_port != super::CLIENT_PORT || udp.dst_port != super::SERVER_PORT {
        return Err(NotDhcp::Ports);
    }
    let bootp = udp.payload;
    if bootp.len() < FIXED_LEN {
        return Err(NotDhcp::Short);
    }
    let options = parse_options(&bootp[FIXED_LEN..]);
    Ok(Message { eth_dst: eth.dst(), eth_src: eth.src(), bootp, options })
}

/// The options area: the cookie, then options up to END or the area's end.
pub fn parse_options(area: &[u8]) -> Options<'_> {
    let Some(rest) = area.strip_prefix(&MAGIC_COOKIE) else { return Options::default() };
    let mut options = Options { cookie: true, ..Options::default() };
    let mut at = 0;
    while let Some(&code) = rest.get(at) {
        match code {
            opt::PAD => {
                at += 1;
                continue;
            }
            opt::END => break,
            _ => {}
        }
        let Some(&len) = rest.get(at + 1) else { break };
        let Some(value) = rest.get(at + 2..at + 2 + usize::from(len)) else { break };
        match (code, value) {
            (opt::MESSAGE_TYPE, &[t]) => options.message_type = Some(t),
            (opt::REQUESTED_ADDRESS, &[a, b, c, d]) => options.requested_address = Some(Ipv4Addr::new(a, b, c, d)),
            (opt::SERVER_ID, &[a, b, c, d]) => options.server_id = Some(Ipv4Addr::new(a, b, c, d)),
            (opt::PARAMETER_LIST, list) => options.parameter_list = list,
            _ => {}
        }
        at += 2 + usize::from(len);
    }
    options
}
