#!/bin/sh
# Counts the lines of code that run in ring 0: kernel/src and every crate of this repository the
# kernel links (its path dependencies in kernel/Cargo.toml, and theirs: boot, kernel/mm,
# kernel/addr, kernel/virtcaps, kernel/acpi, kernel/abi, kernel/vcpupage, kernel/hv, kernel/elf).
#
# A line of code is a line that is not blank and not a comment: in Rust, lines starting with `//`
# (`///` and `//!` too); in assembly (.S), lines inside `/* ... */`. Host-only code is not
# counted: test modules (`#[cfg(test)]` followed by `mod tests`, to the end of the file), files
# named tests.rs, fuzz targets, test data and build scripts. Crates from crates.io are not
# counted either. Prints one line per directory and the total.
#
# Usage: sh tools/ring0-loc.sh   (from anywhere in the repository)
set -eu
cd "$(dirname "$0")/.."
DIRS="kernel/src boot kernel/mm kernel/addr kernel/virtcaps kernel/acpi kernel/abi kernel/vcpupage kernel/hv kernel/elf"
total=0
for d in $DIRS; do
    n=$(find "$d" \( -name fuzz -o -name testdata \) -prune -o -type f \( -name '*.rs' -o -name '*.S' \) \
            ! -name tests.rs ! -name build.rs -print | sort | while read -r f; do
        case "$f" in
        *.rs) awk '
            /^[ \t]*$/ { next }
            /^[ \t]*\/\// { next }
            /^[ \t]*#\[cfg\(test\)\][ \t]*$/ { pending = 1; next }
            pending && /^[ \t]*(pub[ \t]+)?mod[ \t]+tests/ { exit }
            pending { pending = 0; n++ }
            { n++ }
            END { print n + 0 }' "$f" ;;
        *.S) awk '
            /^[ \t]*$/ { next }
            incomment { if ($0 ~ /\*\//) incomment = 0; next }
            /^[ \t]*\/\*/ { if ($0 !~ /\*\//) incomment = 1; next }
            { n++ }
            END { print n + 0 }' "$f" ;;
        esac
    done | awk '{ s += $1 } END { print s + 0 }')
    printf '%-16s %6d\n' "$d" "$n"
    total=$((total + n))
done
printf '%-16s %6d\n' total "$total"
