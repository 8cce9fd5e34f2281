#!/bin/sh
# Makes the partition-table test images with Linux's own tools (Debian: fdisk, gdisk, dosfstools,
# exfatprogs) and stores each as its nonzero 512-byte blocks (`NAME.sectors`: u32 block size, u64
# block count, then (u64 LBA, block) records, all little-endian) with `sfdisk --dump NAME` beside
# it (`NAME.dump`), which the tests compare the reader against. Run from this directory; the
# outputs are committed, so the tests need none of these tools.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sparse() { # IMAGE OUT: keep the nonzero blocks
    python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
bs = 512
with open(sys.argv[2], 'wb') as out:
    out.write(struct.pack('<IQ', bs, len(data) // bs))
    for lba in range(len(data) // bs):
        block = data[lba * bs:(lba + 1) * bs]
        if any(block):
            out.write(struct.pack('<Q', lba) + block)
PY
}

dump() { # IMAGE NAME
    sfdisk --dump "$1" | sed "s|$1|$2|" > "$2.dump"
    sparse "$1" "$2.sectors"
}

# GPT by sgdisk: an EFI system partition (FAT32 inside), an exFAT datastore, a Linux root.
img=$tmp/gpt_sgdisk.img
truncate -s 16M "$img"
sgdisk -U 11111111-2222-3333-4444-555555555555 \
    -n 1:2048:+4M -t 1:EF00 -c 1:"EFI system" -u 1:AAAAAAAA-0000-0000-0000-000000000001 \
    -n 2:0:+4M -t 2:0700 -c 2:"datastore" -u 2:AAAAAAAA-0000-0000-0000-000000000002 \
    -n 3:0:0 -t 3:8300 -c 3:"root ü" -u 3:AAAAAAAA-0000-0000-0000-000000000003 "$img" >/dev/null
mkfs.vfat -F 32 --offset 2048 "$img" 4096 >/dev/null 2>&1
truncate -s 4M "$tmp/exfat"
mkfs.exfat "$tmp/exfat" >/dev/null
dd if="$tmp/exfat" of="$img" bs=512 seek=10240 conv=notrunc,sparse status=none
dump "$img" gpt_sgdisk

# GPT by sfdisk, with a gap and a partition of 1 block.
img=$tmp/gpt_sfdisk.img
truncate -s 8M "$img"
sfdisk -q "$img" <<'T'
label: gpt
label-id: 01234567-89AB-CDEF-0123-456789ABCDEF
start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=BBBBBBBB-0000-0000-0000-000000000001, name="data"
start=8192, size=1, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=BBBBBBBB-0000-0000-0000-000000000002
T
dump "$img" gpt_sfdisk

# MBR by sfdisk: two primaries (FAT32 LBA, bootable Linux), an extended partition with three
# logical partitions (exFAT/NTFS type, Linux, swap).
img=$tmp/mbr_sfdisk.img
truncate -s 16M "$img"
sfdisk -q "$img" <<'T'
label: dos
label-id: 0xdeadbeef
start=2048, size=4096, type=c
start=6144, size=4096, type=83, bootable
start=10240, type=5
start=12288, size=4096, type=7
start=18432, size=4096, type=83
start=24576, type=82
T
dump "$img" mbr_sfdisk
