//! Building the kernel and the boot image.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run_checked};

pub const DEFAULT_CMDLINE: &str = "log=info";

pub fn kernel_path() -> PathBuf {
    root().join("target/x86_64-unknown-none/release/keel")
}

/// The ring-3 programs shipped as boot modules.
pub const USER_PROGRAMS: &[&str] =
    &["vmd", "monitor", "storaged", "crashtest", "selftest", "storetest", "recordwriter", "storebench"];
/// The test guests (guests/), shipped as boot modules named after them.
pub const GUESTS: &[&str] = &["hello", "cpuid", "memtest", "mmio", "irq", "fault", "spinner", "hostile", "hostile_io"];
/// The test guests in assembly (32-bit, and the real-mode firmware fw16), each built by its
/// guests/NAME/build.sh with binutils.
pub const ASM_GUESTS: &[&str] = &["hello32", "fw16", "bench"];

/// The rustflags of the user programs and guests (they replace .cargo/config.toml's kernel flags).
pub const USER_FLAGS: &str = "-Crelocation-model=static\x1f-Cforce-frame-pointers=yes";

pub fn user_dir() -> PathBuf {
    root().join("target/user/x86_64-unknown-none/release")
}

/// Which vm.conf an image carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VmConf {
    /// The default image (`image`, `run`, `flash`): userland/vmd/vm.conf, what a user can try (the
    /// Linux VM, and the OpenBSD FAQ's example as a commented template). target/keel.iso.
    User,
    /// The system-test image (`test`, `bench`): tests/vm.conf, which includes the user's file (as
    /// module default-vm.conf) and defines every test guest. target/keel-test.iso.
    Test,
}

/// The vm.conf of the default image.
pub fn user_vm_conf() -> PathBuf {
    root().join("userland/vmd/vm.conf")
}

/// The vm.conf of the system-test image.
pub fn test_vm_conf() -> PathBuf {
    root().join("tests/vm.conf")
}

/// The module name the test image gives the user's vm.conf (tests/vm.conf includes it).
const USER_CONF_IN_TESTS: &str = "default-vm.conf";

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
    cmd.env("CARGO_ENCODED_RUSTFLAGS", USER_FLAGS);
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

/// Build the kernel, the programs and the image with the vm.conf `conf` says; returns the image's
/// path (target/keel.iso, or target/keel-test.iso for the test image). The Linux guest is added
/// when it can be built (it needs `apt-get download`); without it the image still builds, with a
/// warning, and its `linux` VM cannot start.
pub fn image(cmdline: &str, extra: &[PathBuf], conf: VmConf) -> Result<PathBuf, String> {
    let kernel = build()?;
    let (vm_conf, output, staging) = match conf {
        VmConf::User => (user_vm_conf(), "target/keel.iso", "target/image-root"),
        VmConf::Test => (test_vm_conf(), "target/keel-test.iso", "target/image-root-test"),
    };
    let mut extra = extra.to_vec();
    match crate::linux::prepare() {
        Ok(l) => {
            extra.push(l.kernel);
            extra.push(l.initrd);
        }
        Err(e) => eprintln!("warning: the image has no Linux guest ('start linux' will say so): {e}"),
    }
    let mut modules = modules(&vm_conf, &extra)?;
    if conf == VmConf::Test {
        modules.push(keel_image::ModuleFile { source: user_vm_conf(), name: USER_CONF_IN_TESTS.into() });
    }
    let output = root().join(output);
    keel_image::build(&keel_image::ImageSpec {
        kernel,
        cmdline: cmdline.to_string(),
        modules,
        staging: root().join(staging),
        output: output.clone(),
    })?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads includes from the modules the test image gives them.
    struct TestImageFiles;

    impl keel_vmconf::Includer for TestImageFiles {
        fn read(&mut self, path: &str) -> Result<String, String> {
            match path.rsplit('/').next() {
                Some(USER_CONF_IN_TESTS) => std::fs::read_to_string(user_vm_conf()).map_err(|e| e.to_string()),
                _ => Err(format!("{path}: not on the test image")),
            }
        }
    }

    fn parse(path: PathBuf) -> keel_vmconf::Config {
        let text = std::fs::read_to_string(&path).unwrap();
        keel_vmconf::parse("vm.conf", &text, &mut TestImageFiles).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn names(config: &keel_vmconf::Config) -> Vec<&str> {
        config.vms.iter().map(|vm| vm.name.as_str()).collect()
    }

    #[test]
    fn the_default_vm_conf_holds_only_what_a_user_can_try() {
        let config = parse(user_vm_conf());
        assert_eq!(names(&config), ["linux"], "the FAQ example stays a commented template");
        let linux = config.vm("linux").unwrap();
        // What the image carries (linux.rs) and what bench.rs counts on.
        assert_eq!(linux.boot.as_deref(), Some("vmlinuz"));
        assert_eq!(linux.initrd.as_deref(), Some("initrd.gz"));
        assert_eq!(linux.memory, Some(256 << 20));
        assert!(!linux.enabled, "nothing starts at boot");
        // The template parses once its #s are removed, and is the FAQ's example.
        let text = std::fs::read_to_string(user_vm_conf()).unwrap();
        let uncommented: Vec<&str> = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with("vm ") || rest.starts_with("    ") || rest == "}" => rest,
                _ => l,
            })
            .collect();
        let config = keel_vmconf::parse("vm.conf", &uncommented.join("\n"), &mut TestImageFiles).unwrap();
        assert_eq!(names(&config), ["linux", "example"]);
        let example = config.vm("example").unwrap();
        assert_eq!((example.memory, example.disks.len(), example.interfaces.len()), (Some(1 << 30), 1, 1));
    }

    #[test]
    fn the_test_vm_conf_adds_every_test_guest_to_the_default_one() {
        let config = parse(test_vm_conf());
        let guests: Vec<&str> = GUESTS.iter().chain(ASM_GUESTS).copied().collect();
        let mut want = vec!["linux"];
        want.extend(["hello", "hello32", "fw16", "cpuid", "memtest", "mmio", "irq", "fault", "bench"]);
        want.extend(["spinner", "hostile", "hostile_io"]);
        assert_eq!(names(&config), want);
        for vm in config.vms.iter().filter(|vm| vm.name != "linux") {
            assert_eq!(vm.boot.as_deref(), Some(vm.name.as_str()), "{} boots its own guest", vm.name);
            assert!(guests.contains(&vm.name.as_str()), "{}: no such guest is built", vm.name);
            assert!(!vm.enabled, "{} does not start at boot", vm.name);
        }
        assert_eq!(config.vms.len(), 1 + guests.len(), "every test guest has a VM");
    }
}
