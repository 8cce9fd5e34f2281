#!/bin/sh
# Builds the 32-bit test guest: build.sh OUTPUT  (e.g. target/guests/hello32)
# Assembles hello32.S with GNU as and links it at 1 MiB (physical = virtual) with GNU ld, as a
# 32-bit ET_EXEC ELF (docs/guests.md). Needs binutils (as, ld), which come with gcc.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT" >&2
    exit 2
fi
out=$1
src=$(cd "$(dirname "$0")" && pwd)/hello32.S
mkdir -p "$(dirname "$out")"
obj=$(mktemp "${TMPDIR:-/tmp}/hello32.XXXXXX.o")
trap 'rm -f "$obj"' EXIT
as --32 -o "$obj" "$src"
# -Ttext-segment rather than -Ttext: with -Ttext=0x100000, ld 2.40 (-z separate-code is the default
# on x86) puts the ELF and program headers in a read-only PT_LOAD of their own at 0xff000, below
# 1 MiB, where the monitor does not load segments. With -Ttext-segment=0x100000 the first segment
# (the headers, read-only) starts at 1 MiB and .text follows on the next page (entry 0x101000);
# every segment is page-aligned, p_paddr = p_vaddr, and none is both writable and executable.
# -z noexecstack: no warning about an executable stack. --build-id=none: no note section.
ld -m elf_i386 -Ttext-segment=0x100000 -e _start -z noexecstack --build-id=none -o "$out" "$obj"
