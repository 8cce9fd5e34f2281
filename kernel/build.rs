//! Links the kernel with its linker script, rebuilds when the assembly changes, and records the
//! git revision for `version`.
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    for file in ["linker.ld", "../boot/asm/entry.S", "src/arch/x86_64/trampoline.S", "src/arch/x86_64/exceptions.S"] {
        println!("cargo:rerun-if-changed={file}");
    }
    let rev = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown revision".into());
    println!("cargo:rustc-env=KEEL_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/logs/HEAD");
}
