#!/usr/bin/env python3
"""Writes the partition_table seeds (see fuzz_targets/partition_table.rs for the input format):
small hand-made disks, each a few blocks: a GPT with its backup, an MBR with an extended
partition and two logical ones, a whole-disk exFAT boot block, and a blank disk."""
import struct, zlib, os

BS = 512
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "partition_table")

def seed(name, flags, block_count, head, tail):
    data = bytes([flags]) + struct.pack("<Q", block_count) + b"".join(head) + b"".join(tail)
    open(os.path.join(here, name), "wb").write(data)

def mbr(slots, sig=0x12345678):
    b = bytearray(BS)
    b[440:444] = struct.pack("<I", sig)
    for i, (boot, typ, first, count) in enumerate(slots):
        b[446 + 16 * i:462 + 16 * i] = struct.pack("<B3sB3sII", boot, b"\0\0\0", typ, b"\0\0\0", first, count)
    b[510:512] = b"\x55\xaa"
    return bytes(b)

def gpt_disk(blocks=64):
    entries = bytearray(BS)  # 4 entries of 128 bytes in one block
    linux = bytes.fromhex("AF3DC60F838472478E793D69D8477DE4")
    efi = bytes.fromhex("28732AC11FF8D211BA4B00A0C93EC93B")
    entries[0:128] = linux + b"\x11" * 16 + struct.pack("<QQQ", 8, 31, 0) + "data".encode("utf-16-le").ljust(72, b"\0")
    entries[128:256] = efi + b"\x22" * 16 + struct.pack("<QQQ", 32, 59, 0) + "esp".encode("utf-16-le").ljust(72, b"\0")
    array_crc = zlib.crc32(bytes(entries))
    def header(my, alt, entry_lba):
        h = bytearray(BS)
        h[0:92] = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, my, alt, 3, 60,
                              b"\x33" * 16, entry_lba, 4, 128, array_crc)
        h[16:20] = struct.pack("<I", zlib.crc32(bytes(h[0:92])))
        return bytes(h)
    pmbr = mbr([(0, 0xEE, 1, blocks - 1)], sig=0)
    return [pmbr, header(1, blocks - 1, 2), bytes(entries)], [bytes(entries), header(blocks - 1, 1, blocks - 2)]

head, tail = gpt_disk()
# 5 blocks given: 3 at the start, 2 at the end of a 64-block disk.
seed("gpt_small", 0, 64, head, tail)
seed("gpt_small_and_writer", 0x80, 64, head, tail)
seed("gpt_small_failing", 2 << 1, 64, head, tail)

# MBR: a FAT32 primary, an extended partition at 8..16 with EBRs at 8 and 12.
blocks = [bytes(BS)] * 16
blocks[0] = mbr([(0x80, 0x0C, 2, 4), (0, 0x05, 8, 8)])
blocks[8] = mbr([(0, 0x83, 1, 2), (0, 0x05, 4, 4)], sig=0)
blocks[12] = mbr([(0, 0x07, 1, 3)], sig=0)
seed("mbr_logical", 0, 16, blocks[:8], blocks[8:])

exfat = bytearray(BS)
exfat[0:3] = b"\xeb\x76\x90"
exfat[3:11] = b"EXFAT   "
exfat[510:512] = b"\x55\xaa"
seed("whole_disk_exfat", 0, 1, [bytes(exfat)], [])
seed("blank", 0, 2, [bytes(BS)], [bytes(BS)])
