#!/bin/sh
# Builds the firmware test guest: build.sh OUTPUT. A raw 64 KiB image (no ELF header: the monitor
# starts it in the x86 reset state, docs/guests.md). Needs binutils (as, objcopy).
set -eu
out=$1
src=$(cd "$(dirname "$0")" && pwd)/fw16.S
obj=$(mktemp "${TMPDIR:-/tmp}/fw16.XXXXXX.o")
trap 'rm -f "$obj"' EXIT
mkdir -p "$(dirname "$out")"
as --32 -o "$obj" "$src"
objcopy -O binary -j .text "$obj" "$out"
size=$(stat -c %s "$out")
[ "$size" -eq 65536 ] || { echo "fw16: image is $size bytes, want 65536" >&2; exit 1; }
