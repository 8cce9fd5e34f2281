//! ARP (RFC 826) for the host side of a local interface: a request for the host-side address
//! gets a reply with the host-side MAC. That is all: no cache (the reply goes to the sender's
//! hardware address as the request states it), no gratuitous ARP, no requests of our own.
//!
//! Answered: Ethernet/IPv4 ARP (hardware type 1, protocol 0x0800, lengths 6 and 4), opcode 1,
//! target protocol address = the host-side address, a unicast sender hardware address, sent to
//! the broadcast or the host-side MAC (RFC 1122 2.3.2.1 allows unicast polls). Probes
//! (sender address 0.0.0.0, RFC 5227) are answered like any request: the host side does own
//! the address.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::ethernet::{self, EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use crate::MacAddr;

/// Hardware type Ethernet (RFC 826, "ares_hrd$Ethernet").
const HTYPE_ETHERNET: u16 = 1;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;
/// Hardware type, protocol type, two lengths, opcode, then two (MAC, IPv4) pairs.
const PACKET_LEN: usize = 28;

/// The reply frame to an ARP request for `host_ip`, or `None` if the frame is not one.
pub fn answer(frame: &[u8], host_mac: MacAddr, host_ip: Ipv4Addr) -> Option<Vec<u8>> {
    let eth = EthernetFrame::parse(frame).ok()?;
    if eth.ethertype() != ETHERTYPE_ARP || !(eth.dst().is_broadcast() || eth.dst() == host_mac) {
        return None;
    }
    let arp = eth.payload().get(..PACKET_LEN)?;
    let word = |at: usize| u16::from_be_bytes([arp[at], arp[at + 1]]);
    if word(0) != HTYPE_ETHERNET || word(2) != ETHERTYPE_IPV4 || arp[4] != 6 || arp[5] != 4 || word(6) != OP_REQUEST {
        return None;
    }
    let sender_mac = MacAddr(arp[8..14].try_into().ok()?);
    let sender_ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let target_ip = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
    if target_ip != host_ip || sender_mac.is_group() || sender_mac == MacAddr::ZERO {
        return None;
    }
    Some(build(OP_REPLY, sender_mac, (host_mac, host_ip), (sender_mac, sender_ip)))
}

/// An ARP request frame, as a guest would send it (tests and tools use it).
pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    build(OP_REQUEST, MacAddr::BROADCAST, (sender_mac, sender_ip), (MacAddr::ZERO, target_ip))
}

/// An ARP frame to `dst` from `sender`, about `target`, each a (hardware, protocol) address pair.
fn build(op: u16, dst: MacAddr, sender: (MacAddr, Ipv4Addr), target: (MacAddr, Ipv4Addr)) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ethernet::MIN_FRAME_LEN);
    ethernet::write_header(&mut frame, dst, sender.0, ETHERTYPE_ARP);
    frame.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(&sender.0 .0);
    frame.extend_from_slice(&sender.1.octets());
    frame.extend_from_slice(&target.0 .0);
    frame.extend_from_slice(&target.1.octets());
    ethernet::pad(&mut frame);
    frame
}
