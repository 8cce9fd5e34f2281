//! Links with the user-program linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../../../userland/rt/user.ld");
    println!("cargo:rerun-if-changed=../../../userland/rt/user.ld");
}
