//! Host storage: the storage service, started by vmd with the hardware handle, finds the disk
//! controllers on QEMU's PCI bus (virtio-blk, q35's AHCI, NVMe) through the kernel's device
//! resources: PCI configuration ports opened in the TSS I/O bitmap, and an NVMe BAR mapped as
//! device memory (its version register read back).

use std::time::Duration;

use keel_image::qemu::{Disk, DiskBus};
use keel_systests::*;

/// A blank sparse disk image of `mib` MiB.
fn blank_disk(dir: &std::path::Path, name: &str, mib: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(mib << 20).unwrap();
    path
}

#[test]
fn the_storage_service_finds_each_disk_controller() {
    let dir = scratch("storage-controllers");
    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![
        Disk { path: blank_disk(&dir, "virtio.img", 16), bus: DiskBus::Virtio },
        Disk { path: blank_disk(&dir, "nvme.img", 16), bus: DiskBus::Nvme },
    ];
    let mut m = Machine::qemu("storage-controllers", &spec);
    let t = Duration::from_secs(90);
    m.expect_all(
        &[
            "storaged: 00:1f.2 AHCI (8086:2922)",
            "virtio-blk (1af4:10",
            "NVMe (1b36:0010)",
            "storaged: NVMe version 1.4",
            "storaged: 3 disk controller(s)",
        ],
        t,
    );
    m.expect(PROMPT, t);
    m.command("version", "Keel 0.1.0 (");
}
