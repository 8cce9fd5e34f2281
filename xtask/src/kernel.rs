//! Building the kernel and the boot image.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run_checked};

pub const DEFAULT_CMDLINE: &str = "log=info";

pub fn kernel_path() -> PathBuf {
    root().join("target/x86_64-unknown-none/release/keel")
}

pub fn build() -> Result<PathBuf, String> {
    eprintln!("build: kernel (release, x86_64-unknown-none)");
    run_checked(
        Command::new("cargo")
            .args(["build", "--release", "-p", "keel-kernel", "--target", "x86_64-unknown-none"])
            .current_dir(root()),
    )?;
    Ok(kernel_path())
}

/// Build the kernel and the image; returns the image's path (target/keel.iso).
pub fn image(cmdline: &str) -> Result<PathBuf, String> {
    let kernel = build()?;
    let output = root().join("target/keel.iso");
    keel_image::build(&keel_image::ImageSpec {
        kernel,
        cmdline: cmdline.to_string(),
        modules: Vec::new(),
        staging: root().join("target/image-root"),
        output: output.clone(),
    })?;
    Ok(output)
}
