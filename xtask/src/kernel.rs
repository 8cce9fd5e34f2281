//! Building the kernel and the boot image.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run_checked};

pub const DEFAULT_CMDLINE: &str = "log=info";

pub fn kernel_path() -> PathBuf {
    root().join("target/x86_64-unknown-none/release/keel")
}

/// The ring-3 programs shipped as boot modules.
pub const USER_PROGRAMS: &[&str] = &["vmd", "monitor", "crashtest", "selftest"];
/// The test guests (guests/), shipped as boot modules named after them.
pub const GUESTS: &[&str] = &["hello", "cpuid", "memtest", "mmio", "irq", "fault", "spinner", "hostile", "hostile_io"];
/// The test guests in assembly (32-bit, and the real-mode firmware fw16), each built by its
/// guests/NAME/build.sh with binutils.
pub const ASM_GUESTS: &[&str] = &["hello32", "fw16", "bench"];

pub fn user_dir() -> PathBuf {
    root().join("target/user/x86_64-unknown-none/release")
}

/// The vm.conf shipped on the default image.
pub fn default_vm_conf() -> PathBuf {
    root().join("userland/vmd/vm.conf")
}

pub fn build() -> Result<PathBuf, String> {
    eprintln!("build: kernel (release, x86_64-unknown-none)");
    run_checked(
        Command::new("cargo")
            .args(["build", "--release", "-p", "keel-kernel", "--target", "x86_64-unknown-none"])
            .current_dir(root()),
    )?;
    // User programs use the small code model at low addresses, not the kernel's flags from
    // .cargo/config.toml, so they get their own flags (which replace the config's) and target dir.
    eprintln!(
        "build: user programs ({}) and test guests ({}, {})",
        USER_PROGRAMS.join(", "),
        GUESTS.join(", "),
        ASM_GUESTS.join(", ")
    );
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release", "--target", "x86_64-unknown-none", "--target-dir", "target/user"]);
    for p in USER_PROGRAMS.iter().chain(GUESTS) {
        cmd.args(["-p", p]);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Crelocation-model=static\x1f-Cforce-frame-pointers=yes");
    run_checked(cmd.current_dir(root()))?;
    // The 32-bit guests are assembly, built with binutils.
    for guest in ASM_GUESTS {
        run_checked(
            Command::new("sh")
                .arg(root().join("guests").join(guest).join("build.sh"))
                .arg(user_dir().join(guest))
                .current_dir(root()),
        )?;
    }
    Ok(kernel_path())
}

/// The boot modules of an image: the user programs, the test guests, a vm.conf, and the user's
/// own files (`--add`), each named by its file name.
pub fn modules(vm_conf: &std::path::Path, extra: &[PathBuf]) -> Result<Vec<keel_image::ModuleFile>, String> {
    let mut modules: Vec<keel_image::ModuleFile> = USER_PROGRAMS
        .iter()
        .chain(GUESTS)
        .chain(ASM_GUESTS)
        .map(|p| keel_image::ModuleFile { source: user_dir().join(p), name: p.to_string() })
        .collect();
    modules.push(keel_image::ModuleFile { source: vm_conf.to_path_buf(), name: "vm.conf".into() });
    for path in extra {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("--add {}: not a file name", path.display()))?
            .to_string();
        if !path.is_file() {
            return Err(format!("--add {}: no such file", path.display()));
        }
        if modules.iter().any(|m| m.name == name) {
            return Err(format!("--add {}: the image already has a file named '{name}'", path.display()));
        }
        keel_image::check_module_name(&name).map_err(|e| format!("--add {}: {e}", path.display()))?;
        modules.push(keel_image::ModuleFile { source: path.clone(), name });
    }
    Ok(modules)
}

/// The Linux VM of the default vm.conf (Keel's `initrd`/`cmdline` extensions, docs/vm.conf.md).
const LINUX_VM: &str = r#"
vm "linux" {
    memory 256M
    boot "vmlinuz"
    initrd "initrd.gz"
    cmdline "console=ttyS0"
    disable
}
"#;

/// Build the kernel, the programs and the image; returns the image's path (target/keel.iso).
/// The Linux guest is added when it can be built (it needs `apt-get download`); without it the
/// image still builds, with a warning.
pub fn image(cmdline: &str, extra: &[PathBuf]) -> Result<PathBuf, String> {
    let kernel = build()?;
    let output = root().join("target/keel.iso");
    let mut vm_conf = std::fs::read_to_string(default_vm_conf()).map_err(|e| e.to_string())?;
    let mut extra = extra.to_vec();
    match crate::linux::prepare() {
        Ok(l) => {
            vm_conf.push_str(LINUX_VM);
            extra.push(l.kernel);
            extra.push(l.initrd);
        }
        Err(e) => eprintln!("warning: the image has no Linux guest: {e}"),
    }
    let generated = root().join("target/vm.conf");
    std::fs::write(&generated, vm_conf).map_err(|e| e.to_string())?;
    keel_image::build(&keel_image::ImageSpec {
        kernel,
        cmdline: cmdline.to_string(),
        modules: modules(&generated, &extra)?,
        staging: root().join("target/image-root"),
        output: output.clone(),
    })?;
    Ok(output)
}
