#!/usr/bin/env python3
"""Writes the seed corpus of keel-net's fuzz targets (corpus/dhcp_parse, corpus/switch_frame).

Frames are built here from the RFCs, independently of the crate: a guest's DHCP requests
(RFC 2131/2132), an ARP request (RFC 826) and a ping (RFC 792), each with correct checksums
(RFC 1071), as VM 1's interface 0 in the default local prefix sends them (guest MAC
fe:e1:ba:d0:00:01, host side 100.64.1.2 at fe:e1:ba:d0:00:02, guest 100.64.1.3).
Run from this directory: python3 make_seeds.py
"""

import os
import struct

GUEST_MAC = bytes.fromhex("fee1bad00001")
HOST_MAC = bytes.fromhex("fee1bad00002")
BROADCAST = b"\xff" * 6
HOST_IP = bytes([100, 64, 1, 2])
GUEST_IP = bytes([100, 64, 1, 3])
ANY_IP = bytes(4)
ALL_IP = b"\xff" * 4


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def udp(src, dst, sport, dport, payload):
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    value = checksum(pseudo + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, value) + payload


def bootp(options, flags=0, xid=0x3903F326, ciaddr=ANY_IP):
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, flags, ciaddr, ANY_IP, ANY_IP, ANY_IP,
                        GUEST_MAC, b"", b"")
    message = fixed + (b"" if options is None else bytes([99, 130, 83, 99]) + options)
    return message.ljust(300, b"\0")


def dhcp_frame(options, flags=0, eth_dst=BROADCAST):
    message = bootp(options, flags)
    return ethernet(eth_dst, GUEST_MAC, 0x0800, ipv4(ANY_IP, ALL_IP, 17, udp(ANY_IP, ALL_IP, 68, 67, message)))


def arp_request(target):
    payload = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, GUEST_MAC, GUEST_IP, bytes(6), target)
    return ethernet(BROADCAST, GUEST_MAC, 0x0806, payload)


def ping(data):
    message = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + data
    message = message[:2] + struct.pack("!H", checksum(message)) + message[4:]
    return ethernet(HOST_MAC, GUEST_MAC, 0x0800, ipv4(GUEST_IP, HOST_IP, 1, message))


def option(code, value):
    return bytes([code, len(value)]) + value


DISCOVER = option(53, b"\x01") + option(55, bytes([1, 3, 6, 12, 15, 28])) + b"\xff"
SELECTING = option(53, b"\x03") + option(50, GUEST_IP) + option(54, HOST_IP) + b"\xff"
WRONG_ADDRESS = option(53, b"\x03") + option(50, bytes([10, 0, 0, 9])) + b"\xff"
ODD_OPTIONS = b"\x00\x00" + option(52, b"\x03") + option(53, b"\x01") + option(43, b"\xaa" * 30) + b"\x35\x09"


def write(target, name, data):
    os.makedirs(os.path.join("corpus", target), exist_ok=True)
    with open(os.path.join("corpus", target, name), "wb") as f:
        f.write(data)


# dhcp_parse: a flags byte (1: fix the IPv4 checksum, 2: fix the UDP/ICMP checksum, 4: net boot)
# then the frame.
FIX = bytes([3])
write("dhcp_parse", "discover", FIX + dhcp_frame(DISCOVER))
write("dhcp_parse", "discover_broadcast_netboot", bytes([7]) + dhcp_frame(DISCOVER, flags=0x8000))
write("dhcp_parse", "request_selecting", FIX + dhcp_frame(SELECTING))
write("dhcp_parse", "request_to_host_mac", FIX + dhcp_frame(SELECTING, eth_dst=HOST_MAC))
write("dhcp_parse", "request_wrong_address", FIX + dhcp_frame(WRONG_ADDRESS))
write("dhcp_parse", "bootp", FIX + dhcp_frame(None))
write("dhcp_parse", "odd_options", FIX + dhcp_frame(ODD_OPTIONS))
write("dhcp_parse", "arp_request", FIX + arp_request(HOST_IP))
write("dhcp_parse", "ping", FIX + ping(b"abcdefghijklmnopqrstuvwabcdefghi"))


# switch_frame: table size, queue length, ports, locked mask; then records of
# op, port, seconds, frame length, frame.
def record(op, port, seconds, frame):
    return bytes([op, port, seconds, len(frame)]) + frame


def small(dst, src, payload=b"\x08\x00" + bytes(20)):
    """A frame whose destination and source are picked from the target's eight (op bit 3)."""
    return bytes([dst, src]) + payload


learning = bytes([8, 4, 4, 0b0001]) + b"".join([
    record(8, 1, 0, small(0x80, 1)),    # port 1 broadcasts from 02:..:01
    record(8, 2, 1, small(1, 2)),       # port 2 answers: unicast to port 1
    record(8, 0, 1, small(2, 0)),       # locked port 0 (02:..:00) to port 2
    record(8, 0, 1, small(2, 5)),       # ... spoofing 02:..:05: dropped
    record(8, 3, 250, small(2, 3)),     # past the ageing time: flooded again
    record(3, 2, 0, b""),               # port 2 down
    record(8, 1, 0, small(2, 1)),
])
write("switch_frame", "learning", learning)

queueing = bytes([4, 2, 3, 0]) + b"".join(
    [record(9, 0, 0, small(0x80, 0)) for _ in range(6)]
    + [record(9, 1, 0, small(0, 1)) for _ in range(2)]
    + [record(2, 0, 0, b"") for _ in range(8)]
)
write("switch_frame", "queueing", queueing)

ports = bytes([2, 1, 2, 0]) + b"".join([
    record(5, 0x80, 0, b""),            # add a port
    record(4, 0x80 | (3 << 4), 0, b""), # lock port 0 to 02:..:03
    record(8, 1, 0, small(3, 1)),
    record(6, 0, 0, b""),               # disable
    record(8, 1, 0, small(3, 1)),
    record(6, 1, 0, b""),
    record(5, 1, 0, b""),               # remove port 1
    record(7, 0, 255, b""),             # expire
    record(0, 2, 0, BROADCAST + GUEST_MAC + b"\x08\x06" + bytes(28)),
])
write("switch_frame", "ports", ports)
