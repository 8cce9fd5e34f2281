//! Host-side helpers with no product logic: the QEMU and Bochs command lines and configurations
//! (`qemu`, `bochs`), and the boot image.
//!
//! The image: builds Keel's hybrid boot image with `grub-mkrescue` (one file that boots by
//! BIOS or UEFI, from CD or USB stick: El Torito plus MBR and GPT), and writes its `grub.cfg`.
//! Used by xtask and by the system tests (which build variants with other command lines).
//!
//! No product logic lives here: it only lays out files and runs GRUB's tools.

pub mod bochs;
pub mod qemu;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A boot module: a file shipped on the image and handed to the kernel by GRUB.
#[derive(Debug, Clone)]
pub struct ModuleFile {
    pub source: PathBuf,
    /// The name on the image (under /boot/modules/) and the module's command line.
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub kernel: PathBuf,
    pub cmdline: String,
    pub modules: Vec<ModuleFile>,
    /// Scratch directory that becomes the image's file tree (emptied first).
    pub staging: PathBuf,
    pub output: PathBuf,
}

/// The GRUB configuration: serial console (so a serial-only machine can see GRUB too), no menu
/// delay, one entry that loads Keel and its modules.
pub fn grub_cfg(cmdline: &str, modules: &[ModuleFile]) -> String {
    let mut cfg = String::from(
        "set timeout=0\n\
         set default=0\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         menuentry \"Keel\" {\n",
    );
    let _ = writeln!(cfg, "    multiboot2 /boot/keel.elf {cmdline}");
    for m in modules {
        let _ = writeln!(cfg, "    module2 /boot/modules/{0} {0}", m.name);
    }
    cfg.push_str("    boot\n}\n");
    cfg
}

/// Check a module name: it becomes a path on the image and a word on GRUB's command line.
pub fn check_module_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!("module name '{name}': use 1-64 letters, digits, '.', '-' or '_', not starting with '.'"))
    }
}

/// Lay out the tree and run grub-mkrescue. Prints what it does.
pub fn build(spec: &ImageSpec) -> Result<(), String> {
    let io = |what: &str, path: &Path, e: std::io::Error| format!("{what} {}: {e}", path.display());
    if spec.staging.exists() {
        fs::remove_dir_all(&spec.staging).map_err(|e| io("cannot empty", &spec.staging, e))?;
    }
    let grub_dir = spec.staging.join("boot/grub");
    fs::create_dir_all(&grub_dir).map_err(|e| io("cannot create", &grub_dir, e))?;
    let kernel_dst = spec.staging.join("boot/keel.elf");
    fs::copy(&spec.kernel, &kernel_dst).map_err(|e| io("cannot copy kernel", &spec.kernel, e))?;
    if !spec.modules.is_empty() {
        let dir = spec.staging.join("boot/modules");
        fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
        for m in &spec.modules {
            check_module_name(&m.name)?;
            fs::copy(&m.source, dir.join(&m.name)).map_err(|e| io("cannot copy module", &m.source, e))?;
        }
    }
    let cfg_path = grub_dir.join("grub.cfg");
    fs::write(&cfg_path, grub_cfg(&spec.cmdline, &spec.modules)).map_err(|e| io("cannot write", &cfg_path, e))?;
    if let Some(parent) = spec.output.parent() {
        fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
    }
    eprintln!("image: grub-mkrescue -> {}", spec.output.display());
    let out = Command::new("grub-mkrescue").arg("-o").arg(&spec.output).arg(&spec.staging).output().map_err(|e| {
        format!("cannot run grub-mkrescue (install grub-common, grub-pc-bin, grub-efi-amd64-bin, xorriso, mtools): {e}")
    })?;
    if !out.status.success() {
        return Err(format!("grub-mkrescue failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let size = fs::metadata(&spec.output).map(|m| m.len()).unwrap_or(0);
    eprintln!("image: {} ({:.1} MB)", spec.output.display(), size as f64 / 1e6);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_lists_kernel_and_modules() {
        let m = vec![ModuleFile { source: "x".into(), name: "vm.conf".into() }];
        let cfg = grub_cfg("log=debug", &m);
        assert!(cfg.contains("multiboot2 /boot/keel.elf log=debug\n"));
        assert!(cfg.contains("module2 /boot/modules/vm.conf vm.conf\n"));
        assert!(cfg.contains("serial --unit=0 --speed=115200"));
        assert!(cfg.trim_end().ends_with('}'));
    }

    #[test]
    fn module_names() {
        assert!(check_module_name("linux-6.1.bzImage").is_ok());
        assert!(check_module_name("").is_err());
        assert!(check_module_name("../etc").is_err());
        assert!(check_module_name("a b").is_err());
        assert!(check_module_name(".hidden").is_err());
    }
}
