//! The host side of one local interface: everything Keel answers on the guest's /31, behind one
//! call. vmd's vionet.c hands each guest frame of a local interface to its DHCP server and the
//! rest to the host's tap, whose kernel answers ARP and ping; Keel has no host stack there, so
//! [`HostSide`] answers DHCP ([`crate::dhcp`]), ARP for the host-side address ([`crate::arp`])
//! and ICMP echo to it ([`crate::icmp`]). Whatever else the guest sends is not answered: there is
//! no routing or NAT behind the host side (yet).

use alloc::vec::Vec;

use crate::dhcp::{DhcpServer, ReplyKind};
use crate::{arp, icmp};

/// What the host side made of a guest frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAnswer {
    Dhcp(ReplyKind, Vec<u8>),
    Arp(Vec<u8>),
    Echo(Vec<u8>),
    /// Nothing to answer: the caller drops the frame.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSide {
    dhcp: DhcpServer,
}

impl HostSide {
    /// The host side whose addresses are the DHCP server's (host-side MAC and address).
    pub fn new(dhcp: DhcpServer) -> Self {
        Self { dhcp }
    }

    pub fn dhcp(&self) -> &DhcpServer {
        &self.dhcp
    }

    /// The answer to one frame from the guest. Only the guest's own frames are answered, as vmd
    /// only answers DHCP from the guest's MAC.
    pub fn answer(&self, frame: &[u8]) -> HostAnswer {
        let (host_mac, host_ip) = (self.dhcp.host_mac(), self.dhcp.addrs().host);
        if frame.get(6..12) != Some(&self.dhcp.guest_mac().0[..]) {
            return HostAnswer::None;
        }
        if let Ok(reply) = self.dhcp.answer(frame) {
            return HostAnswer::Dhcp(reply.kind, reply.frame);
        }
        if let Some(reply) = arp::answer(frame, host_mac, host_ip) {
            return HostAnswer::Arp(reply);
        }
        match icmp::answer(frame, host_mac, host_ip) {
            Some(reply) => HostAnswer::Echo(reply),
            None => HostAnswer::None,
        }
    }
}
