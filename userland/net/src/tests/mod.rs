//! Host tests, by module, and the frames they share: a guest's DHCP requests built field by
//! field, so that each test can spoil exactly one thing.

mod dhcp;
mod frames;
mod host;
mod hostile;
mod local;
mod switch;

use std::net::Ipv4Addr;
use std::vec::Vec;

use crate::dhcp::{msg, opt, CLIENT_PORT, MAGIC_COOKIE, SERVER_PORT};
use crate::ipv4::Addressing;
use crate::local::{self as local_addr, LocalAddrs};
use crate::{udp, MacAddr};

pub const GUEST_MAC: MacAddr = MacAddr([0xfe, 0xe1, 0xba, 0xd0, 0x00, 0x01]);
pub const OTHER_MAC: MacAddr = MacAddr([0xfe, 0xe1, 0xba, 0xd0, 0x00, 0x77]);

/// VM 1's first local interface in the default prefix: 100.64.1.2 and .3.
pub fn addrs() -> LocalAddrs {
    local_addr::addrs(&local_addr::DEFAULT_PREFIX, 1, 0).unwrap()
}

pub fn host_mac() -> MacAddr {
    MacAddr::host_side_of(GUEST_MAC)
}

/// A guest's BOOTP/DHCP request, every field settable.
#[derive(Clone)]
pub struct Request {
    pub eth_dst: MacAddr,
    pub eth_src: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: [u8; 4],
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub chaddr: MacAddr,
    pub file: &'static [u8],
    /// With the cookie: the options after it (END is not added).
    pub options: Option<Vec<u8>>,
    /// The BOOTP message is padded with zeros to this length.
    pub pad_to: usize,
}

impl Request {
    /// A DHCP message of `message_type` ending with END, padded to 300 bytes.
    pub fn dhcp(message_type: u8) -> Self {
        Request {
            eth_dst: MacAddr::BROADCAST,
            eth_src: GUEST_MAC,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            src_port: CLIENT_PORT,
            dst_port: SERVER_PORT,
            op: 1,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: [0xde, 0xad, 0xbe, 0xef],
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: GUEST_MAC,
            file: b"",
            options: Some(vec![opt::MESSAGE_TYPE, 1, message_type, opt::PARAMETER_LIST, 3, 1, 3, 6, opt::END]),
            pad_to: 300,
        }
    }

    pub fn discover() -> Self {
        Self::dhcp(msg::DISCOVER)
    }

    /// A REQUEST with a requested address, and a server identifier in SELECTING state (without
    /// one it is INIT-REBOOT).
    pub fn selecting(asked: Ipv4Addr, server: Option<Ipv4Addr>) -> Self {
        let mut r = Self::dhcp(msg::REQUEST);
        let mut options = vec![opt::MESSAGE_TYPE, 1, msg::REQUEST, opt::REQUESTED_ADDRESS, 4];
        options.extend_from_slice(&asked.octets());
        if let Some(server) = server {
            options.extend_from_slice(&[opt::SERVER_ID, 4]);
            options.extend_from_slice(&server.octets());
        }
        options.push(opt::END);
        r.options = Some(options);
        r
    }

    pub fn bootp() -> Self {
        Request { options: None, ..Self::discover() }
    }

    pub fn bootp_message(&self) -> Vec<u8> {
        let mut m = vec![0u8; 236];
        m[0] = self.op;
        m[1] = self.htype;
        m[2] = self.hlen;
        m[3] = self.hops;
        m[4..8].copy_from_slice(&self.xid);
        m[10..12].copy_from_slice(&self.flags.to_be_bytes());
        m[12..16].copy_from_slice(&self.ciaddr.octets());
        m[28..34].copy_from_slice(&self.chaddr.0);
        m[108..108 + self.file.len()].copy_from_slice(self.file);
        if let Some(options) = &self.options {
            m.extend_from_slice(&MAGIC_COOKIE);
            m.extend_from_slice(options);
        }
        if m.len() < self.pad_to {
            m.resize(self.pad_to, 0);
        }
        m
    }

    pub fn frame(&self) -> Vec<u8> {
        let to = Addressing { src_mac: self.eth_src, dst_mac: self.eth_dst, src_ip: self.src_ip, dst_ip: self.dst_ip };
        udp::build_frame(&to, 0, 64, self.src_port, self.dst_port, &self.bootp_message()).unwrap()
    }
}

/// A small deterministic generator (xorshift64*), so hostile-input tests are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
