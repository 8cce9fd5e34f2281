#!/bin/sh
# Builds the benchmark guest: build.sh OUTPUT  (e.g. target/guests/bench)
# Assembles bench.S with GNU as and links it at 1 MiB (physical = virtual) with GNU ld, as a
# 32-bit ET_EXEC ELF (docs/guests.md), exactly as guests/hello32/build.sh does (see there why
# -Ttext-segment and not -Ttext). Needs binutils (as, ld), which come with gcc.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT" >&2
    exit 2
fi
out=$1
src=$(cd "$(dirname "$0")" && pwd)/bench.S
mkdir -p "$(dirname "$out")"
obj=$(mktemp "${TMPDIR:-/tmp}/bench.XXXXXX.o")
trap 'rm -f "$obj"' EXIT
as --32 -o "$obj" "$src"
ld -m elf_i386 -Ttext-segment=0x100000 -e _start -z noexecstack --build-id=none -o "$out" "$obj"
