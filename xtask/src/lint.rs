//! `cargo xtask lint`: the style and unsafe policy, checked by a machine.
//!
//! `cargo fmt --check`, then `cargo clippy -D warnings` three times: the host crates (all
//! targets, so their tests too), the kernel (x86_64-unknown-none, release, its flags from
//! .cargo/config.toml), and the ring-3 programs and test guests (the flags and target dir
//! `kernel::build` uses, so a later build reuses what clippy compiled). The unsafe lints
//! (`undocumented_unsafe_blocks`, `multiple_unsafe_ops_per_block`, `missing_safety_doc`) are
//! the workspace's `[workspace.lints]`, which every crate inherits. The fuzz crates are outside
//! the workspace and not linted.

use std::process::Command;

use crate::kernel::{GUESTS, USER_FLAGS, USER_PROGRAMS};
use crate::{root, run_checked};

/// The bare-metal crates that are not in USER_PROGRAMS or GUESTS: linted for
/// x86_64-unknown-none, not on the host.
const KERNEL: &str = "keel-kernel";
const USER_LIBS: &[&str] = &["keel-rt", "keel-guest-rt"];

/// Every bare-metal package: the host pass excludes them.
fn bare_metal() -> impl Iterator<Item = &'static str> {
    std::iter::once(KERNEL)
        .chain(USER_LIBS.iter().copied())
        .chain(USER_PROGRAMS.iter().copied())
        .chain(GUESTS.iter().copied())
}

pub fn lint() -> Result<(), String> {
    let started = std::time::Instant::now();
    eprintln!("lint: cargo fmt --check");
    run_checked(Command::new("cargo").args(["fmt", "--all", "--check"]).current_dir(root()))?;

    eprintln!("lint: clippy, host crates");
    let mut cmd = Command::new("cargo");
    cmd.args(["clippy", "--workspace", "--all-targets"]);
    for p in bare_metal() {
        cmd.args(["--exclude", p]);
    }
    run_checked(cmd.args(["--", "-D", "warnings"]).current_dir(root()))?;

    eprintln!("lint: clippy, kernel (x86_64-unknown-none)");
    run_checked(
        Command::new("cargo")
            .args(["clippy", "--release", "-p", KERNEL, "--target", "x86_64-unknown-none", "--", "-D", "warnings"])
            .current_dir(root()),
    )?;

    eprintln!("lint: clippy, user programs and test guests (x86_64-unknown-none)");
    let mut cmd = Command::new("cargo");
    cmd.args(["clippy", "--release", "--target", "x86_64-unknown-none", "--target-dir", "target/user"]);
    for p in USER_LIBS.iter().chain(USER_PROGRAMS).chain(GUESTS) {
        cmd.args(["-p", p]);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", USER_FLAGS);
    run_checked(cmd.args(["--", "-D", "warnings"]).current_dir(root()))?;

    eprintln!("lint: passed in {} s", started.elapsed().as_secs());
    Ok(())
}
