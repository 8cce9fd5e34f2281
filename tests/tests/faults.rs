//! The kernel's fatal paths and the reboot command: a CPU exception is reported with vector,
//! error code, RIP, CR2 and registers, and (with `qemu-exit`) ends QEMU with a failure status; an
//! image without vmd says why and halts (ring 0 has no shell of its own).

use std::time::Duration;

use keel_systests::*;

fn boot_fault(test: &str, fault: &str) -> (Machine, std::process::ExitStatus) {
    let iso = image_with_cmdline(test, &format!("log=info qemu-exit fault-test={fault}"));
    let mut m = Machine::qemu(test, &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect("!!! CPU exception", BIOS_BOOT);
    let status = m.wait_exit(Duration::from_secs(30));
    (m, status)
}

#[test]
fn invalid_opcode_is_reported_and_exits_qemu() {
    let (m, status) = boot_fault("fault-ud", "ud");
    let out = m.output();
    assert!(out.contains("!!! CPU exception 6 (#UD invalid opcode) on cpu 0"), "{out}");
    assert!(out.contains("rip: 0xffffffff8"), "{out}");
    assert!(out.contains("rax ") && out.contains("r15 "), "{out}");
    assert!(out.contains("system halted"), "{out}");
    assert_eq!(status.code(), Some(3), "isa-debug-exit status for value 1");
}

#[test]
fn page_fault_reports_cr2_and_error_code() {
    let (m, status) = boot_fault("fault-pf", "pf");
    let out = m.output();
    assert!(out.contains("!!! CPU exception 14 (#PF page fault) on cpu 0"), "{out}");
    assert!(out.contains("cr2: 0x00000000dead0000"), "{out}");
    assert!(out.contains("error code: 0x0 "), "a read of a not-present page: {out}");
    assert_eq!(status.code(), Some(3));
}

#[test]
fn image_without_vmd_says_why_and_halts() {
    let iso = image_without("no-vmd", "log=info qemu-exit", "vmd");
    let mut m = Machine::qemu("no-vmd", &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect("!!! keel: fatal: no 'vmd' boot module: ", BIOS_BOOT);
    m.expect("system halted", Duration::from_secs(10));
    let status = m.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "isa-debug-exit status for value 1");
    assert!(!m.output().contains(PROMPT), "no prompt without vmd");
}

#[test]
fn reboot_restarts_the_machine_and_log_level_applies() {
    let iso = image_with_cmdline("reboot", "log=debug");
    let mut m = Machine::qemu("reboot", &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect("debug: mm: frame bitmap at ", BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);
    m.send_line("reboot");
    m.expect("rebooting", Duration::from_secs(30));
    m.expect("Keel 0.1.0", BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);
}
