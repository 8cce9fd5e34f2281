//! Guests on hardware virtualization: every test guest passes under QEMU (AMD SVM with nested
//! paging) and, for the VMX path, under Bochs; guests run side by side without mixing output; a
//! guest that triple-faults stops alone while another guest and the shell go on.

use std::time::Duration;

use keel_systests::*;

const T: Duration = Duration::from_secs(60);

/// Start `name` and wait until it stops; return after checking its verdict on its console.
fn run_guest(m: &mut Machine, name: &str, verdict: &str, timeout: Duration) {
    m.send_line(&format!("start {name}"));
    m.expect("started vm", T);
    m.expect(&format!("vmd: vm {name} stopped: "), timeout);
    m.expect(PROMPT, T);
    check_console(m, name, verdict);
}

fn wait_state(m: &mut Machine, name: &str, state: &str) {
    m.wait_state(name, state, T);
}

/// Attach to `name`'s console, expect `verdict` in what it printed, detach.
fn check_console(m: &mut Machine, name: &str, verdict: &str) {
    m.send_line(&format!("console {name}"));
    m.expect("Connected to /dev/ttyp", T);
    m.expect(verdict, T);
    m.send_raw("\r~.");
    m.expect("[EOT]", T);
    m.expect(PROMPT, T);
}

#[test]
fn every_test_guest_passes_under_svm() {
    let mut m = Machine::qemu("guests-svm", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(AMD_VIRT_LINE, BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);
    for guest in ["hello", "hello32", "fw16", "cpuid", "mmio", "irq", "memtest"] {
        run_guest(&mut m, guest, &format!("PASS {guest}"), T);
        assert!(m
            .output()
            .contains(&format!("vmd: vm {guest} stopped: the guest wrote 0 to the debug-exit port (status 0)")));
    }
    // show lists them, stopped.
    m.command("show", "stopped hello");
}

#[test]
fn two_guests_at_once_and_a_triple_fault_stops_only_its_vm() {
    let mut m = Machine::qemu("guests-two", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(PROMPT, BIOS_BOOT);
    m.send_line("start memtest");
    m.expect("vmctl: started vm", T);
    m.send_line("start fault");
    m.expect("vmctl: started vm", T);
    // Either may stop first (memtest is short when it gets the CPU to itself).
    m.expect_all(&["vmd: vm fault stopped: triple fault", "vmd: vm memtest stopped: the guest wrote 0"], T);
    // The shell answers.
    m.command("show", "fault");
    check_console(&mut m, "memtest", "PASS memtest");
    check_console(&mut m, "fault", "fault: triple-faulting now");
    assert!(!m.output().contains("PASS fault"));
    // Two guests at once (memtest runs for a while; cpuid starts while it does): each console
    // holds only its own output.
    m.send_line("start memtest");
    m.send_line("start cpuid");
    m.expect_all(&["vmd: vm memtest stopped: the guest wrote 0", "vmd: vm cpuid stopped: the guest wrote 0"], T);
    m.send_line("");
    m.expect(PROMPT, T);
    let before = m.output().len();
    check_console(&mut m, "cpuid", "PASS cpuid");
    let cpuid_console = m.output()[before..].to_string();
    assert!(!cpuid_console.contains("memtest:"), "cpuid's console shows only cpuid:\n{cpuid_console}");
    check_console(&mut m, "memtest", "PASS memtest");
}

#[test]
fn vmctl_start_stop_and_console_of_a_running_guest() {
    let mut m = Machine::qemu("guests-ctl", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(PROMPT, BIOS_BOOT);
    // A new VM from the command line, as vmctl start -m -b; spinner runs until it is stopped.
    m.send_line("start -m 8M -b spinner myspin");
    m.expect("vmctl: started vm", T);
    m.expect(PROMPT, T);
    // Its state goes from starting to running once its monitor has booted it.
    wait_state(&mut m, "myspin", "running");
    m.command("pause myspin", "paused vm");
    wait_state(&mut m, "myspin", "paused");
    m.command("unpause myspin", "unpaused vm");
    wait_state(&mut m, "myspin", "running");
    m.command("stop myspin", "stopping vm myspin: requested to shutdown vm");
    m.expect("vmd: vm myspin stopped: stopped on request", T);
    m.command("start nosuchvm", "start vm command failed: no vm 'nosuchvm'");
    // More memory than this 512M machine has free: refused at once with both sizes, and no VM
    // is added. The shell goes on (the commands below).
    let answer = m.answer("start -m 8G -b spinner huge");
    let free = answer
        .split("vmctl: start vm command failed: not enough memory: 8.0G asked, ")
        .nth(1)
        .and_then(|rest| rest.split(" free").next())
        .unwrap_or_else(|| panic!("no 'not enough memory' message for start -m 8G:\n{answer}"));
    assert!(free.ends_with('M') && !answer.contains("out of memory"), "free memory as show writes it: {answer}");
    assert!(!m.answer("show").contains("huge"), "the refused VM is not in the table");
    // A missing boot image fails the start itself, as vmctl does, before any VM exists.
    m.command(
        "start -b nosuchimage -m 8M other",
        "vmctl: start vm command failed: nosuchimage: no such file on the datastore or the boot media",
    );
    assert!(!m.answer("show").contains("other"), "the refused VM is not in the table");
}

#[test]
fn every_test_guest_passes_under_vmx_in_bochs() {
    // Bochs with an Intel CPU model that has VMX, EPT and unrestricted guest (shared/TESTBED.md).
    let bochs = Duration::from_secs(180);
    let mut m = Machine::bochs("guests-vmx", &iso(), "corei7_skylake_x");
    m.expect("virt: Intel VMX with EPT", bochs);
    m.expect(PROMPT, bochs);
    for guest in ["hello", "hello32", "fw16", "cpuid", "mmio", "irq", "memtest"] {
        run_guest(&mut m, guest, &format!("PASS {guest}"), bochs);
        assert!(m
            .output()
            .contains(&format!("vmd: vm {guest} stopped: the guest wrote 0 to the debug-exit port (status 0)")));
    }
    m.send_line("start fault");
    m.expect("vmd: vm fault stopped: triple fault", bochs);
}

/// Free memory in bytes, as `stats` reports it.
fn free_memory(m: &mut Machine) -> u64 {
    let text = m.answer("stats");
    text.lines()
        .find_map(|l| l.split("memory: ").nth(1)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `memory:` figure in stats:\n{text}"))
}

#[test]
fn a_forced_stop_or_killed_monitor_gives_all_memory_back() {
    // A vCPU thread killed inside VcpuRun used to be cut off with the VM still referenced from
    // its kernel stack: the VM's RAM was never freed. Now it unwinds first.
    let mut m = Machine::qemu("guests-leak", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(PROMPT, BIOS_BOOT);
    // A first run, so that one-time allocations (vmd's tables, the kernel heap) are made.
    m.send_line("start -m 64M -b spinner big");
    wait_state(&mut m, "big", "running");
    m.command("stop -f big", "stopping vm big");
    m.expect("vmd: vm big stopped", T);
    m.expect(PROMPT, T);
    let before = free_memory(&mut m);
    for round in 0..3 {
        m.send_line("start -m 64M -b spinner big");
        wait_state(&mut m, "big", "running");
        if round == 1 {
            let text = m.answer("show big");
            let pid: u64 = text
                .lines()
                .find(|l| l.ends_with(" big"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("no monitor PID for big in:\n{text}"));
            m.command(&format!("kill {pid}"), "kill: killed process");
        } else {
            m.command("stop -f big", "stopping vm big");
        }
        m.expect("vmd: vm big stopped", T);
        m.expect(PROMPT, T);
    }
    // The monitor's last pages go back when its last thread is reaped, a moment later.
    std::thread::sleep(Duration::from_millis(500));
    let after = free_memory(&mut m);
    let lost = before.saturating_sub(after);
    assert!(lost < 2 << 20, "three 64 MiB VMs stopped by force lost {lost} bytes (free {before} -> {after})");
}
