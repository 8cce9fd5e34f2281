//! Host storage: the storage service, started by vmd with the hardware handle, finds the disk
//! controllers on QEMU's PCI bus (virtio-blk, q35's AHCI, NVMe) through the kernel's device
//! resources (PCI configuration ports opened in the TSS I/O bitmap, BARs mapped as device
//! memory, DMA memory, MSI/MSI-X), brings up the virtio-blk, NVMe and AHCI disks with their
//! drivers, reads their first blocks, and answers the shell's `disks` over its storage channel.

use std::time::Duration;

use keel_image::qemu::{Disk, DiskBus};
use keel_systests::*;

/// A sparse disk image of `mib` MiB; with `boot_signature`, 0x55AA at the end of block 0.
fn disk_image(dir: &std::path::Path, name: &str, mib: u64, boot_signature: bool) -> std::path::PathBuf {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.set_len(mib << 20).unwrap();
    if boot_signature {
        file.seek(SeekFrom::Start(510)).unwrap();
        file.write_all(&[0x55, 0xaa]).unwrap();
    }
    path
}

#[test]
fn the_storage_service_drives_virtio_nvme_and_ahci_disks() {
    let dir = scratch("storage-controllers");
    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![
        Disk { path: disk_image(&dir, "virtio.img", 8, true), bus: DiskBus::Virtio },
        Disk { path: disk_image(&dir, "nvme.img", 16, true), bus: DiskBus::Nvme },
        Disk { path: disk_image(&dir, "sata.img", 32, false), bus: DiskBus::Ahci },
    ];
    let mut m = Machine::qemu("storage-controllers", &spec);
    let t = Duration::from_secs(120);
    m.expect_all(
        &[
            "storaged: 00:1f.2 AHCI (8086:2922)",
            "virtio-blk (1af4:10",
            "NVMe (1b36:0010)",
            "storaged: sd0: virtio-blk at 00:03.0, 8.0M, MBR",
            "storaged: sd1: NVMe QEMU NVMe Ctrl at 00:04.0, 16.0M, MBR",
            "storaged: sd2: AHCI QEMU HARDDISK at 00:1f.2, 32.0M, blank",
            "storaged: 3 disk(s)",
        ],
        t,
    );
    m.expect(PROMPT, t);
    m.send_line("disks");
    m.expect_all(
        &[
            "sd0: virtio-blk at 00:03.0, 8.0M, MBR",
            "sd1: NVMe QEMU NVMe Ctrl at 00:04.0, 16.0M, MBR",
            "sd2: AHCI QEMU HARDDISK at 00:1f.2, 32.0M, blank",
        ],
        t,
    );
    m.command("ls", "ls: /: no datastore");
    m.command("version", "Keel 0.1.0 (");
}

#[test]
fn vm_conf_comes_from_the_datastore() {
    // A datastore made on the host: exFAT on the whole disk, /etc/vm.conf defining a VM that
    // none of the boot media's vm.conf files has.
    let dir = scratch("storage-datastore");
    let image = dir.join("datastore.img");
    let _ = std::fs::remove_file(&image);
    datastore(&["mkfs", image.to_str().unwrap(), "--size", "64M", "--label", "KEEL"]);
    let conf = dir.join("vm.conf");
    std::fs::write(&conf, "vm \"fromdisk\" {\n  memory 16M\n  boot \"hello\"\n  disable\n}\n").unwrap();
    datastore(&["put", image.to_str().unwrap(), conf.to_str().unwrap(), "--to", "/etc"]);

    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![Disk { path: image, bus: DiskBus::Virtio }];
    let mut m = Machine::qemu("storage-datastore", &spec);
    let t = Duration::from_secs(120);
    m.expect_all(
        &["storaged: sd0: exFAT 'KEEL'", "datastore, in use", "vmd: 1 vm(s) and 0 switch(es) in /etc/vm.conf"],
        t,
    );
    m.expect(PROMPT, t);
    m.command("disks", "sd0: exFAT 'KEEL'");
    m.command("ls", "etc/");
    m.command("ls /etc", "56  vm.conf");
    m.command("ls /nothing", "ls: /nothing: no such file or directory");
    m.command("show", "fromdisk");
    m.send_line("start fromdisk");
    m.expect("vmd: vm fromdisk stopped: the guest wrote 0 to the debug-exit port", t);
    m.command("reload", "vmd: /etc/vm.conf: no changes");
}

/// `fsck.exfat -n` on `image`: its verdict and what it printed.
fn fsck_exfat(image: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new("fsck.exfat").arg("-n").arg(image).output().expect("fsck.exfat (exfatprogs)");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `cargo xtask datastore get IMAGE PATH` into a host file; its bytes.

#[test]
fn a_program_writes_renames_truncates_and_removes_files_through_the_storage_service() {
    // On NVMe, a 6 GiB datastore (sparse on the host), so a file can reach past 4 GiB.
    let dir = scratch("storage-files");
    let image = dir.join("datastore.img");
    let _ = std::fs::remove_file(&image);
    datastore(&["mkfs", image.to_str().unwrap(), "--size", "6G", "--label", "FILES"]);
    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![Disk { path: image.clone(), bus: DiskBus::Nvme }];
    let mut m = Machine::qemu("storage-files", &spec);
    let t = Duration::from_secs(300);
    m.expect("datastore, in use", t);
    m.expect(PROMPT, t);
    m.send_line("spawn -s storetest");
    m.expect("storetest: all", t);
    m.expect("vmd: process", t);
    drop(m);

    let (clean, text) = fsck_exfat(&image);
    assert!(clean, "fsck.exfat -n failed after storetest:\n{text}");
    let expected: Vec<u8> = (0..300_000u64).map(|i| (i % 251) as u8).collect();
    assert!(datastore_get(&dir, &image, "/t/b.bin") == expected, "/t/b.bin is not the pattern's first 300000 bytes");
    let out =
        std::process::Command::new(xtask()).args(["datastore", "ls", image.to_str().unwrap(), "/t"]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&format!("{}  big.bin", (5u64 << 30) + 65536)), "ls /t:\n{listing}");
    assert!(!listing.contains("gone.bin") && !listing.contains("a.bin"), "ls /t:\n{listing}");
}

#[test]
fn flushed_records_survive_a_power_cut() {
    // On AHCI: a program appends records and flushes each; the machine is killed mid-stream.
    let dir = scratch("storage-power-cut");
    let image = dir.join("datastore.img");
    let _ = std::fs::remove_file(&image);
    datastore(&["mkfs", image.to_str().unwrap(), "--size", "64M", "--label", "CUT"]);
    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![Disk { path: image.clone(), bus: DiskBus::Ahci }];
    let t = Duration::from_secs(300);
    let mut m = Machine::qemu("storage-power-cut", &spec);
    m.expect("datastore, in use", t);
    m.expect(PROMPT, t);
    m.send_line("spawn -s recordwriter");
    m.expect("recordwriter: record 40 flushed", t);
    // The power cut: QEMU killed while records are being written. Every record it reported
    // flushed before that must be on the disk.
    let seen = m.output();
    drop(m);
    let last = seen
        .lines()
        .filter_map(|l| l.split("recordwriter: record ").nth(1)?.strip_suffix(" flushed")?.trim().parse::<u64>().ok())
        .max()
        .unwrap();
    eprintln!("power cut after record {last} was reported flushed");

    let (clean, text) = fsck_exfat(&image);
    assert!(clean, "fsck.exfat -n failed after the power cut:\n{text}");
    // Keel mounts the volume again and finds the file.
    let mut m = Machine::qemu("storage-power-cut-again", &spec);
    m.expect("datastore, in use", t);
    m.expect(PROMPT, t);
    m.command("ls", "records.log");
    drop(m);
    let records = datastore_get(&dir, &image, "/records.log");
    for n in 0..=last {
        let at = (n * 32) as usize;
        let want = format!("record {n:010}");
        assert!(
            records.get(at..at + 17) == Some(want.as_bytes()),
            "record {n} was reported flushed but is not in /records.log"
        );
    }
}

#[test]
fn linux_boots_from_datastore_files_on_each_controller() {
    // The stock Linux kernel and initrd the test image also carries (xtask builds them), put on
    // a datastore with a vm.conf naming them by datastore path; once per disk controller.
    let linux = iso().parent().unwrap().join("linux");
    for (bus, tag) in [(DiskBus::Virtio, "virtio"), (DiskBus::Nvme, "nvme"), (DiskBus::Ahci, "ahci")] {
        let dir = scratch(&format!("storage-linux-{tag}"));
        let image = dir.join("datastore.img");
        let img = image.to_str().unwrap();
        datastore(&["mkfs", img, "--size", "64M", "--label", "LINUX"]);
        let kernel = linux.join("vmlinuz");
        let initrd = linux.join("initrd.gz");
        datastore(&["put", img, kernel.to_str().unwrap(), initrd.to_str().unwrap(), "--to", "/vms"]);
        let conf = dir.join("vm.conf");
        std::fs::write(
            &conf,
            "vm \"dslinux\" {\n  memory 128M\n  boot \"/vms/vmlinuz\"\n  initrd \"/vms/initrd.gz\"\n  \
             cmdline \"console=ttyS0\"\n  disable\n}\n",
        )
        .unwrap();
        datastore(&["put", img, conf.to_str().unwrap(), "--to", "/etc"]);

        let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
        spec.disks = vec![Disk { path: image, bus }];
        let mut m = Machine::qemu(&format!("storage-linux-{tag}"), &spec);
        let t = Duration::from_secs(240);
        m.expect("vmd: 1 vm(s) and 0 switch(es) in /etc/vm.conf", t);
        m.expect(PROMPT, t);
        // A file that is on neither the datastore nor the boot media: start says so and fails.
        m.command("start -b /vms/nothere -m 16M ghost", "vmctl: start vm command failed: /vms/nothere: no such file");
        m.send_line("start dslinux");
        m.expect("vmctl: started vm", t);
        m.send_line("console dslinux");
        m.expect("Linux version 6.1", t);
        m.expect("/ # ", t);
        m.send_line("poweroff -f");
        m.expect("vmd: vm dslinux stopped", t);
        eprintln!("[storage-linux-{tag}] Linux booted from the datastore on {tag}");
    }
}

#[test]
fn newfs_makes_a_blank_disk_a_datastore_and_refuses_one_that_holds_something() {
    let dir = scratch("storage-newfs");
    // sd0: virtio-blk with something on it (not a table, not a file system); sd1: a blank NVMe.
    let used = dir.join("used.img");
    std::fs::write(&used, vec![0x5a; 1 << 20]).unwrap();
    let blank = disk_image(&dir, "blank.img", 32, false);
    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![Disk { path: used, bus: DiskBus::Virtio }, Disk { path: blank.clone(), bus: DiskBus::Nvme }];
    let mut m = Machine::qemu("storage-newfs", &spec);
    let t = Duration::from_secs(120);
    m.expect("storaged: 2 disk(s)", t);
    m.expect(PROMPT, t);
    m.command("ls", "ls: /: no datastore");
    m.command("newfs sd0", "newfs: make sd0 a datastore? Everything on it is lost. [y/N]");
    m.command("y", "newfs: sd0: not empty (unknown contents); newfs -f sd0 formats it anyway");
    m.command("newfs sd1", "[y/N]");
    m.command("n", "newfs: nothing done");
    m.command("newfs sd1", "[y/N]");
    m.command("y", "newfs: sd1p1: exFAT 'KEEL' ");
    assert!(m.output().contains("a datastore (newfs), in use"), "the new datastore is the one in use");
    m.command("disks", "sd1p1: exFAT 'KEEL'");
    m.send_line("newfs -f sd1");
    m.command("y", "newfs: sd1: holds the datastore in use");
    m.send_line("spawn -s storetest");
    m.expect("storetest: FAILED: write 64 KiB at 5 GiB", t); // a 32M disk has no room for 5 GiB
    m.expect("vmd: process", t);
    m.command("ls /t", "300000  b.bin");
    drop(m);

    // The GPT as sfdisk reads it, and the partition's exFAT as fsck.exfat does.
    let dump = std::process::Command::new("sfdisk").arg("--dump").arg(&blank).output().expect("sfdisk (fdisk)");
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(dump.contains("label: gpt"), "sfdisk --dump:\n{dump}");
    let field = |name: &str| -> u64 {
        let line = dump.lines().find(|l| l.contains("start=")).unwrap();
        let value = line.split(name).nth(1).unwrap().trim_start_matches(['=', ' ']);
        value.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (start, size) = (field("start"), field("size"));
    let bytes = std::fs::read(&blank).unwrap();
    let partition = dir.join("partition.img");
    std::fs::write(&partition, &bytes[(start * 512) as usize..((start + size) * 512) as usize]).unwrap();
    let (clean, text) = fsck_exfat(&partition);
    assert!(clean, "fsck.exfat -n on the new datastore failed:\n{text}");
}
