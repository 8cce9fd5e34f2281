//! Host set-up: the rustup target and the Debian packages Keel's tools need. Installs what is
//! missing when running as root (CI, fresh machines); otherwise prints the exact command.

use std::path::Path;
use std::process::Command;

use crate::run_checked;

/// (package, a file that package provides) for everything `image` and `run` need.
const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
    ("ovmf", "/usr/share/OVMF/OVMF_CODE_4M.fd"),
    ("grub-pc-bin", "/usr/lib/grub/i386-pc/multiboot2.mod"),
    ("grub-efi-amd64-bin", "/usr/lib/grub/x86_64-efi/multiboot2.mod"),
    ("grub-common", "/usr/bin/grub-mkrescue"),
    ("xorriso", "/usr/bin/xorriso"),
    ("mtools", "/usr/bin/mformat"),
    ("binutils", "/usr/bin/ld"),
];

/// What the tests need on top: Bochs for the Intel VMX path; Linux's exFAT and FAT tools, which
/// the datastore file-system tests (keel-datastore) check their images with (mkfs.exfat,
/// fsck.exfat, mkfs.vfat, fsck.vfat; mtools is a build package); the partition tools the
/// partition readers and `newfs` are checked against (sfdisk, sgdisk); qemu-img and qemu-io,
/// which make and check the disk images keel-diskimage reads and writes.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("bochs", "/usr/bin/bochs"),
    ("bochsbios", "/usr/share/bochs/BIOS-bochs-latest"),
    ("seabios", "/usr/share/seabios/vgabios-isavga.bin"),
    ("exfatprogs", "/usr/sbin/fsck.exfat"),
    ("dosfstools", "/usr/sbin/fsck.vfat"),
    ("fdisk", "/usr/sbin/sfdisk"),
    ("gdisk", "/usr/sbin/sgdisk"),
    ("qemu-utils", "/usr/bin/qemu-img"),
];

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// What the fuzz targets need (`cargo xtask fuzz`, and the smoke pass in `cargo xtask test`):
/// libfuzzer-sys compiles libFuzzer's C++ sources.
const FUZZ_PACKAGES: &[(&str, &str)] = &[("g++", "/usr/bin/g++")];

pub fn ensure(for_tests: bool) -> Result<(), String> {
    ensure_target()?;
    if for_tests {
        // `cargo xtask lint`, the first stage of the tests, needs them.
        ensure_components()?;
    }
    let mut wanted = BUILD_PACKAGES.to_vec();
    if for_tests {
        wanted.extend_from_slice(TEST_PACKAGES);
        wanted.extend_from_slice(FUZZ_PACKAGES);
    }
    install(&wanted)
}

pub fn ensure_fuzz_packages() -> Result<(), String> {
    install(FUZZ_PACKAGES)
}

/// Installs the packages whose file is missing (as root), or says how.
fn install(wanted: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = wanted.iter().filter(|(_, f)| !Path::new(f).exists()).map(|(p, _)| *p).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        return Err(format!("missing packages; run:\n  sudo apt-get update && sudo apt-get install -y {list}"));
    }
    eprintln!("setup: installing {list}");
    run_checked(Command::new("apt-get").arg("update").arg("-q"))?;
    run_checked(
        Command::new("apt-get").args(["install", "-y", "-q"]).args(&missing).env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// clippy and rustfmt (rust-toolchain.toml names them, but with RUSTUP_AUTO_INSTALL=0 nothing
/// installs them by itself on a fresh machine).
fn ensure_components() -> Result<(), String> {
    let has = |tool: &str| {
        Command::new("cargo")
            .args([tool, "--version"])
            .current_dir(crate::root())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has("clippy") && has("fmt") {
        return Ok(());
    }
    eprintln!("setup: rustup component add clippy rustfmt");
    run_checked(Command::new("rustup").args(["component", "add", "clippy", "rustfmt"]).current_dir(crate::root()))
}

fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(crate::root())
        .output()
        .map_err(|e| format!("cannot run rustup (Keel needs rustup with Rust 1.95.0): {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "x86_64-unknown-none") {
        return Ok(());
    }
    eprintln!("setup: rustup target add x86_64-unknown-none");
    run_checked(Command::new("rustup").args(["target", "add", "x86_64-unknown-none"]).current_dir(crate::root()))
}
