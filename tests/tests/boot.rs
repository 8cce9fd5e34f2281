//! Boots the image on every path a user has: BIOS and UEFI, as a CD and as a USB stick, a flashed
//! stick, a CPU without usable virtualization, and Bochs's Intel CPU with VMX and EPT.

use std::time::Duration;

use keel_systests::*;

/// Everything a successful QEMU `-cpu max -smp 2` boot must show.
fn expect_amd_boot(m: &mut Machine, timeout: Duration) {
    m.expect("Keel 0.1.0", timeout);
    m.expect("cpu 0: online", timeout);
    m.expect("cpu 1: online", timeout);
    m.expect(AMD_VIRT_LINE, timeout);
    m.expect(PROMPT, timeout);
}

#[test]
fn bios_cdrom_boots_to_prompt_and_answers_commands() {
    let mut m = Machine::qemu("bios-cdrom", &spec(Firmware::Bios, Media::Cdrom(iso())));
    expect_amd_boot(&mut m, BIOS_BOOT);
    m.command("help", "restart the machine");
    m.command("version", "Keel 0.1.0 (");
    m.command("cpus", "cpu 1: APIC id 1, online");
    m.command("mem", "MiB usable");
    m.command("frobnicate", "unknown command 'frobnicate' (try help)");
    m.command("mem please", "mem: too many arguments");
    // Line editing: backspace and Ctrl-U.
    m.send_line("xyz\x15verr\x7fsion");
    m.expect("Keel 0.1.0 (", Duration::from_secs(30));
    m.expect(PROMPT, Duration::from_secs(30));
    assert!(!m.output().contains("debug: "), "the default log level is info");
}

#[test]
fn uefi_cdrom_boots_to_prompt() {
    let dir = scratch("uefi-cdrom");
    let mut m = Machine::qemu("uefi-cdrom", &spec(uefi(&dir), Media::Cdrom(iso())));
    expect_amd_boot(&mut m, UEFI_BOOT);
    m.command("cpus", "2 CPUs");
}

fn usb_stick_copy(test: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(test);
    let stick = dir.join("usb.img");
    std::fs::copy(iso(), &stick).unwrap();
    (dir, stick)
}

#[test]
fn bios_usb_stick_boots_to_prompt() {
    let (_dir, stick) = usb_stick_copy("bios-usb");
    let mut m = Machine::qemu("bios-usb", &spec(Firmware::Bios, Media::UsbStick(stick)));
    expect_amd_boot(&mut m, BIOS_BOOT);
}

#[test]
fn uefi_usb_stick_boots_to_prompt() {
    let (dir, stick) = usb_stick_copy("uefi-usb");
    let mut m = Machine::qemu("uefi-usb", &spec(uefi(&dir), Media::UsbStick(stick)));
    expect_amd_boot(&mut m, UEFI_BOOT);
}

#[test]
fn flashed_file_boots_as_usb_stick_on_bios_and_uefi() {
    let dir = scratch("flash");
    let stick = dir.join("stick.img");
    let out = std::process::Command::new(xtask())
        .args(["flash", stick.to_str().unwrap(), "--yes", "--image", iso().to_str().unwrap()])
        .output()
        .expect("run xtask flash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xtask flash failed:\n{stderr}");
    assert!(stderr.contains("verified"), "flash did not verify:\n{stderr}");
    assert_eq!(std::fs::read(&stick).unwrap(), std::fs::read(iso()).unwrap());

    let mut m = Machine::qemu("flash-bios", &spec(Firmware::Bios, Media::UsbStick(stick.clone())));
    expect_amd_boot(&mut m, BIOS_BOOT);
    drop(m);
    let mut m = Machine::qemu("flash-uefi", &spec(uefi(&dir), Media::UsbStick(stick)));
    expect_amd_boot(&mut m, UEFI_BOOT);
}

#[test]
fn flash_refuses_without_confirmation() {
    let dir = scratch("flash-no");
    let stick = dir.join("stick.img");
    let out = std::process::Command::new(xtask())
        .args(["flash", stick.to_str().unwrap(), "--image", iso().to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run xtask flash");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not confirmed; nothing written"));
    assert_eq!(std::fs::metadata(&stick).map(|m| m.len()).unwrap_or(0), 0);
}

#[test]
fn cpu_without_virtualization_boots_and_says_so() {
    let mut s = spec(Firmware::Bios, Media::Cdrom(iso()));
    s.cpu = "qemu64".into();
    let mut m = Machine::qemu("qemu64", &s);
    m.expect("virt: no usable hardware virtualization (2 CPUs): ", BIOS_BOOT);
    m.expect("guests cannot run", BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);
}

#[test]
fn bochs_intel_cpu_reports_vmx_with_ept() {
    let mut m = Machine::bochs("bochs-vmx", &iso(), "corei7_skylake_x");
    m.expect("Keel 0.1.0", Duration::from_secs(120));
    m.expect("virt: Intel VMX with EPT (4-level, write-back, INVEPT, 2 MiB pages), 1 CPU", Duration::from_secs(120));
    m.expect(PROMPT, Duration::from_secs(60));
    m.command("cpus", "1 CPUs");
}
