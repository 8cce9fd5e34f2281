//! QEMU command lines for Keel, as measured to work in shared/TESTBED.md: q35, pure emulation
//! (TCG), BIOS or UEFI (OVMF), the image as a CD or as a USB stick on an xHCI controller, and
//! data disks on the three controllers Keel drives (virtio-blk, q35's AHCI, NVMe).

use std::path::{Path, PathBuf};

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

#[derive(Debug, Clone)]
pub enum Firmware {
    Bios,
    /// UEFI with a private, writable copy of the OVMF variable store.
    Uefi {
        vars: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub enum Media {
    Cdrom(PathBuf),
    /// A raw disk image attached as a USB mass-storage device (how a flashed stick looks).
    UsbStick(PathBuf),
}

/// The controller a data disk hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    Virtio,
    /// q35's built-in ICH9 AHCI (SATA).
    Ahci,
    Nvme,
}

impl DiskBus {
    pub fn parse(name: &str) -> Option<DiskBus> {
        match name {
            "virtio" => Some(DiskBus::Virtio),
            "ahci" => Some(DiskBus::Ahci),
            "nvme" => Some(DiskBus::Nvme),
            _ => None,
        }
    }
}

/// A raw image attached as a data disk.
#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    pub bus: DiskBus,
}

#[derive(Debug, Clone)]
pub struct QemuSpec {
    pub firmware: Firmware,
    pub media: Media,
    /// `-cpu` model: `max` (AMD with SVM+NPT under TCG), `qemu64` (no usable virtualization).
    pub cpu: String,
    pub smp: u32,
    pub memory_mib: u32,
    /// `-serial` backend: `stdio` for tests, `mon:stdio` for an interactive run.
    pub serial: String,
    /// Instruction counting (`-icount shift=0`) for repeatable guest-visible time.
    pub icount: bool,
    /// Data disks, in order.
    pub disks: Vec<Disk>,
}

impl QemuSpec {
    pub fn new(firmware: Firmware, media: Media) -> Self {
        Self {
            firmware,
            media,
            cpu: "max".into(),
            smp: 2,
            memory_mib: 512,
            serial: "stdio".into(),
            icount: false,
            disks: Vec::new(),
        }
    }
}

/// Copy the OVMF variable store template to `path` (UEFI writes to it, so each run gets its own).
pub fn fresh_uefi_vars(path: &Path) -> Result<PathBuf, String> {
    std::fs::copy(OVMF_VARS, path).map_err(|e| format!("cannot copy {OVMF_VARS} (install ovmf): {e}"))?;
    Ok(path.to_path_buf())
}

pub fn args(spec: &QemuSpec) -> Vec<String> {
    // No -no-reboot: a reboot from Keel's prompt must restart the machine, as on hardware.
    let mut a: Vec<String> =
        ["-accel", "tcg", "-M", "q35", "-display", "none", "-monitor", "none"].iter().map(|s| s.to_string()).collect();
    a.extend([
        "-cpu".into(),
        spec.cpu.clone(),
        "-smp".into(),
        spec.smp.to_string(),
        "-m".into(),
        format!("{}M", spec.memory_mib),
    ]);
    a.extend(["-serial".into(), spec.serial.clone()]);
    a.extend(["-device".into(), "isa-debug-exit,iobase=0xf4,iosize=0x04".into()]);
    if spec.icount {
        a.extend(["-icount".into(), "shift=0".into()]);
    }
    if let Firmware::Uefi { vars } = &spec.firmware {
        a.extend(["-drive".into(), format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}")]);
        a.extend(["-drive".into(), format!("if=pflash,format=raw,unit=1,file={}", vars.display())]);
    }
    // q35's AHCI has six ports, one device each; `-cdrom` takes port 2.
    let mut ahci_ports = [0, 1, 3, 4, 5].into_iter();
    for (i, disk) in spec.disks.iter().enumerate() {
        a.extend(["-drive".into(), format!("if=none,id=disk{i},format=raw,file={}", disk.path.display())]);
        let device = match disk.bus {
            DiskBus::Virtio => format!("virtio-blk-pci,drive=disk{i}"),
            DiskBus::Ahci => format!("ide-hd,drive=disk{i},bus=ide.{}", ahci_ports.next().unwrap_or(5)),
            DiskBus::Nvme => format!("nvme,drive=disk{i},serial=keel{i}"),
        };
        a.extend(["-device".into(), device]);
    }
    match &spec.media {
        // With a data disk, the BIOS would try it first (shared/TESTBED.md): boot the CD.
        Media::Cdrom(iso) => {
            a.extend(["-cdrom".into(), iso.display().to_string()]);
            if !spec.disks.is_empty() {
                a.extend(["-boot".into(), "d".into()]);
            }
        }
        Media::UsbStick(img) => {
            a.extend(["-drive".into(), format!("if=none,id=stick,format=raw,file={}", img.display())]);
            a.extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
            a.extend(["-device".into(), "usb-storage,bus=xhci.0,drive=stick,bootindex=0".into()]);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uefi_usb_stick_line() {
        let spec = QemuSpec::new(Firmware::Uefi { vars: "/tmp/v.fd".into() }, Media::UsbStick("/tmp/s.img".into()));
        let line = args(&spec).join(" ");
        assert!(line.contains("-cpu max -smp 2 -m 512M"));
        assert!(line.contains("if=pflash,format=raw,unit=1,file=/tmp/v.fd"));
        assert!(line.contains("usb-storage,bus=xhci.0,drive=stick,bootindex=0"));
        assert!(!line.contains("-cdrom"));
        assert!(!line.contains("-no-reboot"));
    }

    #[test]
    fn bios_cdrom_line() {
        let mut spec = QemuSpec::new(Firmware::Bios, Media::Cdrom("k.iso".into()));
        spec.icount = true;
        let line = args(&spec).join(" ");
        assert!(line.ends_with("-cdrom k.iso"));
        assert!(line.contains("-icount shift=0"));
        assert!(!line.contains("pflash"));
    }
}
