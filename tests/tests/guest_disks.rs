//! Guest disks: `create` makes qcow2 and raw images on the datastore (new, overlays, copies),
//! `start -d` gives them to a stock Linux guest as virtio-blk disks and `-r` an ISO as a
//! virtio-scsi CD-ROM; what the guest writes and syncs is on the datastore after the whole
//! machine is restarted (a new QEMU on the same datastore image) and reads through an overlay;
//! a VM stopped with `stop -f` in the middle of writes leaves images that pass `qemu-img check`
//! (leaked clusters at worst), a base is shared by two running VMs' overlays and never changes;
//! vm.conf's `cdrom` works as `-r` does, and a datastore that fills up under a guest's writes
//! gives the guest I/O errors and leaves a sound image.

use std::time::Duration;

use keel_image::qemu::{Disk, DiskBus};
use keel_systests::*;

/// Boot Keel on `image` and wait for the prompt with the datastore in use.
fn boot(name: &str, image: &std::path::Path) -> Machine {
    let mut spec = spec(Firmware::Bios, Media::Cdrom(iso()));
    spec.disks = vec![Disk { path: image.to_path_buf(), bus: DiskBus::Virtio }];
    let mut m = Machine::qemu(name, &spec);
    let t = Duration::from_secs(240);
    m.expect("vmd: 2 vm(s) and 0 switch(es) in /etc/vm.conf", t);
    m.expect(PROMPT, t);
    m
}

/// Start `start_args`, check `show g` lists `shown`, run `also` (shell commands and their
/// replies), then wait for the guest's shell on its console.
fn guest_shell(m: &mut Machine, start_args: &str, shown: &str, also: &[(&str, &str)]) {
    let t = Duration::from_secs(300);
    m.send_line(&format!("start {start_args} g"));
    m.expect("vmctl: started vm", t);
    m.command("show g", shown);
    for (line, reply) in also {
        m.command(line, reply);
    }
    m.send_line("console g");
    m.expect("Keel Linux guest:", t);
    m.expect("/ # ", t);
}

/// Off a stopped VM's console, back to the shell.
fn leave_console(m: &mut Machine) {
    let t = Duration::from_secs(30);
    m.send_raw("\r~.");
    m.expect("[EOT]", t);
    m.expect(PROMPT, t);
}

#[test]
fn a_guest_writes_a_qcow2_disk_that_survives_a_restart_and_reads_a_cdrom() {
    let linux = iso().parent().unwrap().join("linux");
    let dir = scratch("guest-disks");
    let image = dir.join("datastore.img");
    let img = image.to_str().unwrap();
    let _ = std::fs::remove_file(&image);
    datastore(&["mkfs", img, "--size", "256M", "--label", "VMS"]);
    let (kernel, initrd) = (linux.join("vmlinuz"), linux.join("initrd.gz"));
    datastore(&["put", img, kernel.to_str().unwrap(), initrd.to_str().unwrap(), "--to", "/vms"]);
    // An ISO made by xorriso, with a file the guest compares.
    let iso_dir = dir.join("iso");
    let _ = std::fs::remove_dir_all(&iso_dir);
    std::fs::create_dir_all(&iso_dir).unwrap();
    std::fs::write(iso_dir.join("hello.txt"), "hello from the cd\n").unwrap();
    let cd = dir.join("cd.iso");
    let made = std::process::Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o", cd.to_str().unwrap(), iso_dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success(), "xorriso failed");
    datastore(&["put", img, cd.to_str().unwrap(), "--to", "/"]);
    let conf = dir.join("vm.conf");
    std::fs::write(
        &conf,
        "vm \"g\" {\n  memory 128M\n  boot \"/vms/vmlinuz\"\n  initrd \"/vms/initrd.gz\"\n  \
         cmdline \"console=ttyS0\"\n  disable\n}\n\
         vm \"c\" {\n  memory 128M\n  boot \"/vms/vmlinuz\"\n  initrd \"/vms/initrd.gz\"\n  \
         cmdline \"console=ttyS0\"\n  cdrom \"/cd.iso\"\n  disable\n}\n",
    )
    .unwrap();
    datastore(&["put", img, conf.to_str().unwrap(), "--to", "/etc"]);

    let t = Duration::from_secs(300);
    let mut m = boot("guest-disks-1", &image);
    m.command("create -s 64M disk.qcow2", "vmctl: qcow2 imagefile created");
    m.command("create -s 64M disk.qcow2", "vmctl: create imagefile operation failed: /disk.qcow2: File exists");
    m.command("create -s 8M /scratch.img", "vmctl: raw imagefile created");
    // The OpenBSD FAQ's image: 50 GiB of qcow2 on a 256 MiB datastore (it grows as it is written).
    m.command("create -s 50G faq.qcow2", "vmctl: qcow2 imagefile created");
    m.command("create -s 1G -b disk.qcow2 -i scratch.img x.qcow2", "create: conflicting -b and -i arguments");
    m.command(
        "create -b nothere.qcow2 y.qcow2",
        "vmctl: create imagefile operation failed: /nothere.qcow2: base image not found",
    );
    m.command(
        "create -b disk.qcow2 overlay.img",
        "vmctl: create imagefile operation failed: base images require qcow2",
    );
    m.command(
        "start -d /missing.qcow2 g",
        "vmctl: start vm command failed: /missing.qcow2: no such file on the datastore",
    );
    // A second VM may not use a disk the first writes.
    let in_use = ("start -m 32M -b /vms/vmlinuz -d /disk.qcow2 other", "/disk.qcow2: in use by vm g");
    guest_shell(&mut m, "-d disk.qcow2 -d scratch.img -r cd.iso", "cdrom: /cd.iso", &[in_use]);
    m.send_line("mkdir -p /mnt /cd && mke2fs -q /dev/vda && mount -t ext4 /dev/vda /mnt && echo keel-was-here > /mnt/note && sync && echo WROTE-$(cat /mnt/note)");
    m.expect("WROTE-keel-was-here", t);
    m.send_line("mount -t iso9660 /dev/sr0 /cd && echo CD-$(cat /cd/hello.txt | tr ' ' '-')");
    m.expect("CD-hello-from-the-cd", t);
    m.send_line("echo SIZE-$(cat /sys/block/vdb/size)");
    m.expect("SIZE-16384", t);
    // The raw disk keeps what is written to it too.
    m.send_line("echo raw-marker | dd of=/dev/vdb bs=512 count=1 conv=sync,fsync 2>/dev/null && echo RAW-WRITTEN");
    m.expect("RAW-WRITTEN", t);
    m.send_line("umount /mnt; sync; poweroff -f");
    m.expect("vmd: vm g stopped", t);
    drop(m);

    let base_before = datastore_get(&dir, &image, "/disk.qcow2");

    // The whole machine again, on the same datastore: a new VM reads what the first wrote,
    // through an overlay on it, with four disks (one a qcow2 copy of the raw one).
    let mut m = boot("guest-disks-2", &image);
    m.command("create -b disk.qcow2 over.qcow2", "vmctl: qcow2 imagefile created");
    m.command("create -b disk.qcow2 over2.qcow2", "vmctl: qcow2 imagefile created");
    m.command("create -s 4M d3.img", "vmctl: raw imagefile created");
    m.command("create -i scratch.img d4.qcow2", "vmctl: qcow2 imagefile created");
    // Another VM may share the base (read-only) through an overlay of its own, while g runs.
    let shared_base = ("start -m 32M -b /vms/vmlinuz -d over2.qcow2 other", "vmctl: started vm");
    let other_stops = ("stop -f other", "forced to terminate vm");
    guest_shell(
        &mut m,
        "-d over.qcow2 -d scratch.img -d d3.img -d d4.qcow2",
        "disk 3: /d4.qcow2",
        &[shared_base, other_stops],
    );
    m.send_line("mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo READ-$(cat /mnt/note)");
    m.expect("READ-keel-was-here", t);
    m.send_line(
        "echo over > /mnt/over-note && sync && echo DISKS-$(ls /sys/block | grep -c vd)-$(cat /sys/block/vdd/size)",
    );
    m.expect("DISKS-4-16384", t);
    m.send_line("echo RAW-$(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -c 10)");
    m.expect("RAW-raw-marker", t);
    // A discard reaches the qcow2 image (its clusters are freed: qemu-img check below).
    m.send_line("blkdiscard /dev/vdd && echo DISCARDED");
    m.expect("DISCARDED", t);
    // Writes to a qcow2 disk that never end, cut by `stop -f`: the image must stay sound.
    m.send_line("(while true; do dd if=/dev/urandom of=/dev/vdd bs=64k count=8 seek=$((RANDOM % 100)) conv=fsync 2>/dev/null; done) & sleep 3; echo WRITING");
    m.expect("WRITING", t);
    m.send_raw("\r~.");
    m.expect("[EOT]", t);
    m.command("stop -f g", "forced to terminate vm");
    m.expect("vmd: vm g stopped", t);
    // vm.conf's `cdrom` gives a VM the same CD-ROM as `start -r`.
    m.send_line("start -c c");
    m.expect("Keel Linux guest:", t);
    m.expect("/ # ", t);
    m.send_line("mkdir -p /cd && mount -t iso9660 /dev/sr0 /cd && echo CONF-CD-$(cat /cd/hello.txt | tr ' ' '-')");
    m.expect("CONF-CD-hello-from-the-cd", t);
    m.send_line("poweroff -f");
    m.expect("vmd: vm c stopped", t);
    leave_console(&mut m);
    // The datastore fills up under a guest's writes (the 50G image on a 256 MiB datastore): the
    // guest gets I/O errors, and Keel, vmd and the VM go on.
    m.send_line("start -c -d faq.qcow2 c");
    m.expect("Keel Linux guest:", t);
    m.expect("/ # ", t);
    m.send_line("dd if=/dev/zero of=/dev/vda bs=1M count=400 oflag=direct 2>/dev/null; echo DD-STATUS-$?");
    m.expect("DD-STATUS-1", t);
    m.send_line("echo STILL-$(cat /proc/uptime | cut -c1)-ALIVE");
    m.expect("STILL-", t);
    m.expect("-ALIVE", t);
    m.send_line("poweroff -f");
    m.expect("vmd: vm c stopped", t);
    leave_console(&mut m);
    m.command("dmesg", "disk /faq.qcow2: write failed");
    drop(m);

    // QEMU's own checker agrees the images are sound, and the base did not change. The image
    // cut by `stop -f` in the middle of its writes may have leaked clusters (qemu-img check's
    // exit status 3: allocated, never used, no harm to data), never anything worse.
    // The full one may have leaked clusters too (a cluster counted, its data write refused).
    let images = [
        ("/disk.qcow2", false),
        ("/over.qcow2", false),
        ("/over2.qcow2", false),
        ("/d4.qcow2", true),
        ("/faq.qcow2", true),
    ];
    for (name, cut) in images {
        let out = dir.join(name.trim_start_matches('/'));
        let _ = std::fs::remove_file(&out);
        datastore(&["get", img, name, out.to_str().unwrap()]);
        let check = std::process::Command::new("qemu-img").args(["check", out.to_str().unwrap()]).output().unwrap();
        let sound = check.status.code() == Some(0) || (cut && check.status.code() == Some(3));
        assert!(sound, "qemu-img check {name}: {:?}\n{}", check.status, String::from_utf8_lossy(&check.stdout));
    }
    assert!(base_before == datastore_get(&dir, &image, "/disk.qcow2"), "the base image changed under its overlay");
}
