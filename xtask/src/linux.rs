//! The Linux guest, built from stock Debian parts and cached under target/linux/:
//! the kernel from `linux-image-amd64` (the versioned package it depends on, fetched with
//! `apt-get download`), and an initramfs with `busybox-static`, a small /init, and the virtio, SCSI CD-ROM, ISO 9660 and ext4
//! modules of the same kernel (virtio-pci, virtio-rng, virtio-blk, virtio-net are modules in that
//! package), loaded by /init in dependency order (read from each module's `depends=` modinfo).
//!
//! Nothing is downloaded at run time by Keel: this runs on the build machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{root, run_checked};

pub struct LinuxGuest {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub version: String,
}

impl LinuxGuest {
    /// The benchmarks' zero-cost reference: this kernel and initramfs booted directly by QEMU
    /// (its default machine, `-cpu max -smp 1 -m 512M -icount shift=0`), the console on stdio.
    pub fn direct_qemu(&self) -> Command {
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-accel", "tcg", "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"])
            .args(["-cpu", "max", "-smp", "1", "-m", "512M", "-icount", "shift=0"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args(["-append", "console=ttyS0"]);
        qemu
    }
}

/// Bumped when the initramfs recipe changes, so a cached one is rebuilt.
const INIT_VERSION: &str = "init-5";

/// The modules /init loads (their dependencies come first automatically).
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio-rng",
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "sr_mod",
    "isofs",
    "crc32c_generic",
    "ext4",
];

/// The guest's /init: mounts, loads the virtio modules, prints the uptime at its first line
/// (the benchmark reads it), and starts a shell on the console.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "init: uptime $(/bin/busybox cat /proc/uptime)"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $(cat /lib/modules/order); do
    insmod /lib/modules/$m.ko 2>/dev/null || echo "init: could not load $m"
done
echo "Keel Linux guest: $(uname -r), shell on $(tty 2>/dev/null || echo console)"
exec setsid cttyhack sh
"#;

fn dir() -> PathBuf {
    root().join("target/linux")
}

fn download(pkg: &str, into: &Path) -> Result<PathBuf, String> {
    let prefix = format!("{pkg}_");
    let find = || -> Option<PathBuf> {
        fs::read_dir(into).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    eprintln!("linux: apt-get download {pkg}");
    run_checked(Command::new("apt-get").args(["download", "-q", pkg]).current_dir(into).stdout(Stdio::null()))?;
    find().ok_or_else(|| format!("apt-get download {pkg} left no .deb"))
}

/// `depends=a,b` from a module's .modinfo section (a NUL-separated list of key=value strings).
fn module_depends(ko: &[u8]) -> Vec<String> {
    let needle = b"depends=";
    ko.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| {
            let rest = &ko[i + needle.len()..];
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).split(',').filter(|s| !s.is_empty()).map(String::from).collect()
        })
        .unwrap_or_default()
}

/// Module name -> path, for every .ko under `tree`.
fn find_modules(tree: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(tree) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_modules(&p, out);
        } else if let Some(name) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ko")) {
            out.push((name.to_string(), p.clone()));
        }
    }
}

/// Names match modulo '-' and '_' (modinfo uses either).
fn same_module(a: &str, b: &str) -> bool {
    a.replace('-', "_") == b.replace('-', "_")
}

fn load_order(all: &[(String, PathBuf)], wanted: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    fn visit(
        name: &str,
        all: &[(String, PathBuf)],
        order: &mut Vec<(String, PathBuf)>,
        depth: u32,
    ) -> Result<(), String> {
        if depth > 16 {
            return Err(format!("module dependencies too deep at {name}"));
        }
        if order.iter().any(|(n, _)| same_module(n, name)) {
            return Ok(());
        }
        let Some((n, p)) = all.iter().find(|(n, _)| same_module(n, name)) else {
            return Ok(()); // built into the kernel
        };
        let ko = fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for dep in module_depends(&ko) {
            visit(&dep, all, order, depth + 1)?;
        }
        order.push((n.clone(), p.clone()));
        Ok(())
    }
    let mut order = Vec::new();
    for w in wanted {
        visit(w, all, &mut order, 0)?;
    }
    Ok(order)
}

/// A newc cpio archive of `files` (path in archive, mode, contents). See: cpio(5), "new ASCII".
fn cpio(files: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |ino: u32, name: &str, mode: u32, data: &[u8]| {
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (i, (name, mode, data)) in files.iter().enumerate() {
        entry(i as u32 + 1, name, *mode, data);
    }
    entry(0, "TRAILER!!!", 0, &[]);
    out
}

pub fn prepare() -> Result<LinuxGuest, String> {
    let dir = dir();
    let debs = dir.join("debs");
    fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    let kernel = dir.join("vmlinuz");
    let initrd = dir.join("initrd.gz");
    let stamp = dir.join("version");
    if kernel.exists() && initrd.exists() {
        if let Some(version) = fs::read_to_string(&stamp).ok().filter(|v| v.contains(INIT_VERSION)) {
            let version = version.split_whitespace().next().unwrap_or("").to_string();
            return Ok(LinuxGuest { kernel, initrd, version });
        }
    }
    eprintln!("linux: building the Linux guest from Debian packages (cached in {})", dir.display());
    let meta = download("linux-image-amd64", &debs)?;
    let depends = Command::new("dpkg-deb").arg("-f").arg(&meta).arg("Depends").output().map_err(|e| e.to_string())?;
    let depends = String::from_utf8_lossy(&depends.stdout).to_string();
    let versioned = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|d| d.starts_with("linux-image-") && d.ends_with("-amd64"))
        .ok_or_else(|| format!("linux-image-amd64 depends on no versioned kernel ({depends})"))?
        .to_string();
    let version = versioned.trim_start_matches("linux-image-").to_string();
    let kdeb = download(&versioned, &debs)?;
    let bdeb = download("busybox-static", &debs)?;

    let tree = dir.join("root");
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(&tree).map_err(|e| e.to_string())?;
    eprintln!("linux: extracting {versioned} and busybox-static");
    let extract = |deb: &Path, patterns: &[&str]| -> Result<(), String> {
        let cmd = format!(
            "dpkg-deb --fsys-tarfile '{}' | tar x -C '{}' --wildcards {}",
            deb.display(),
            tree.display(),
            patterns.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(" ")
        );
        run_checked(Command::new("sh").arg("-c").arg(cmd))
    };
    extract(
        &kdeb,
        &[
            "./boot/vmlinuz-*",
            "./lib/modules/*/kernel/drivers/virtio/*",
            "./lib/modules/*/kernel/drivers/char/hw_random/*",
            "./lib/modules/*/kernel/drivers/block/virtio_blk.ko",
            "./lib/modules/*/kernel/drivers/net/*",
            "./lib/modules/*/kernel/net/core/failover.ko",
            "./lib/modules/*/kernel/drivers/scsi/scsi_common.ko",
            "./lib/modules/*/kernel/drivers/scsi/scsi_mod.ko",
            "./lib/modules/*/kernel/drivers/scsi/sr_mod.ko",
            "./lib/modules/*/kernel/drivers/scsi/virtio_scsi.ko",
            "./lib/modules/*/kernel/drivers/cdrom/cdrom.ko",
            "./lib/modules/*/kernel/fs/ext4/ext4.ko",
            "./lib/modules/*/kernel/fs/jbd2/jbd2.ko",
            "./lib/modules/*/kernel/fs/mbcache.ko",
            "./lib/modules/*/kernel/fs/isofs/isofs.ko",
            "./lib/modules/*/kernel/lib/crc16.ko",
            "./lib/modules/*/kernel/crypto/crc32c_generic.ko",
        ],
    )?;
    extract(&bdeb, &["./bin/busybox"])?;

    let vmlinuz = fs::read_dir(tree.join("boot"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vmlinuz-")))
        .ok_or("no vmlinuz in the kernel package")?;
    let mut all = Vec::new();
    find_modules(&tree.join("lib/modules"), &mut all);
    let order = load_order(&all, MODULES)?;
    eprintln!(
        "linux: initramfs with busybox and modules {}",
        order.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" ")
    );

    let mut files: Vec<(String, u32, Vec<u8>)> = Vec::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
        files.push((d.to_string(), 0o040755, Vec::new()));
    }
    files.push(("dev/console".to_string(), 0o020600, Vec::new()));
    files.push(("init".to_string(), 0o100755, INIT.as_bytes().to_vec()));
    files.push(("bin/busybox".to_string(), 0o100755, fs::read(tree.join("bin/busybox")).map_err(|e| e.to_string())?));
    let mut names = String::new();
    for (name, path) in &order {
        files.push((format!("lib/modules/{name}.ko"), 0o100644, fs::read(path).map_err(|e| e.to_string())?));
        names.push_str(name);
        names.push('\n');
    }
    files.push(("lib/modules/order".to_string(), 0o100644, names.into_bytes()));
    let archive = cpio(&files);
    let raw = dir.join("initrd.cpio");
    fs::write(&raw, archive).map_err(|e| e.to_string())?;
    run_checked(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&raw))?;
    fs::rename(dir.join("initrd.cpio.gz"), &initrd).map_err(|e| e.to_string())?;
    fs::copy(&vmlinuz, &kernel).map_err(|e| e.to_string())?;
    fs::write(&stamp, format!("{version} {INIT_VERSION}")).map_err(|e| e.to_string())?;
    eprintln!(
        "linux: {} ({} bytes) and {} ready",
        kernel.display(),
        fs::metadata(&kernel).map(|m| m.len()).unwrap_or(0),
        initrd.display()
    );
    Ok(LinuxGuest { kernel, initrd, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_depends() {
        let ko = b"\x7fELF....license=GPL\0depends=virtio,virtio_ring\0retpoline=Y\0";
        assert_eq!(module_depends(ko), vec!["virtio".to_string(), "virtio_ring".to_string()]);
        assert!(module_depends(b"depends=\0").is_empty());
        assert!(same_module("virtio-rng", "virtio_rng"));
    }

    #[test]
    fn cpio_newc_layout() {
        let a = cpio(&[("init".into(), 0o100755, b"#!/bin/sh\n".to_vec())]);
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 4, 0);
        let s = String::from_utf8_lossy(&a);
        assert!(s.contains("init\0"));
        assert!(s.contains("TRAILER!!!"));
    }
}
