//! Isolation (docs/security.md): the `hostile` guest attacks from inside while another guest
//! (`spinner`, which checks a memory pattern of its own) keeps running and the shell keeps
//! answering; string port I/O (`hostile_io`, emulated) works; a killed monitor takes down
//! only its own VM. Under QEMU (AMD SVM) and, for the hostile guests, Bochs (Intel VMX).

use std::time::{Duration, Instant};

use keel_systests::*;

const T: Duration = Duration::from_secs(60);
/// The full hostile guest beside a busy spinner under QEMU takes about 2.5 minutes on a quiet
/// 2-core machine (its console is slow while the spinner competes for the one CPU guests run on).
const HOSTILE: Duration = Duration::from_secs(600);

/// Wait until `needle` appears anywhere in the output (not only after the cursor: VM stop
/// reports can arrive while a console is attached, before the cursor).
fn wait_anywhere(m: &mut Machine, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !m.output().contains(needle) {
        if Instant::now() > deadline {
            // Fails with the serial log's tail.
            m.expect(needle, Duration::ZERO);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The highest `spinner: round N` in `text`.
fn last_round(text: &str) -> Option<u64> {
    text.match_indices("spinner: round ")
        .filter_map(|(i, p)| text[i + p.len()..].split(',').next()?.trim().parse().ok())
        .max()
}

/// Attach to `vm` (a spinner), let the backlog arrive, and wait until it reports a round above
/// `above`; detach and return the highest round seen. The backlog alone can satisfy `above = 0`;
/// a higher `above` (a round seen at an earlier attach) needs progress made since then.
fn spinner_round(m: &mut Machine, vm: &str, above: u64) -> u64 {
    let from = m.output().len();
    m.send_line(&format!("console {vm}"));
    m.expect("Connected to /dev/ttyp", T);
    std::thread::sleep(Duration::from_secs(2));
    let deadline = Instant::now() + T;
    let round = loop {
        let text = m.output();
        if text[from..].contains("FAIL spinner") {
            m.expect("this never appears: the spinner failed", Duration::ZERO);
        }
        match last_round(&text[from..]) {
            Some(r) if r > above => break r,
            _ if Instant::now() > deadline => {
                m.expect(&format!("spinner {vm}: a round above {above}"), Duration::ZERO);
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    m.send_raw("\r~.");
    m.expect("[EOT]", T);
    m.expect(PROMPT, T);
    round
}

/// Attach to `vm`, wait until `needle` shows in its console, detach; returns what the console
/// printed since the attach (its backlog included).
fn console_until(m: &mut Machine, vm: &str, needle: &str, timeout: Duration) -> String {
    let from = m.output().len();
    m.send_line(&format!("console {vm}"));
    m.expect("Connected to /dev/ttyp", T);
    m.expect(needle, timeout);
    // The rest of the backlog.
    std::thread::sleep(Duration::from_secs(2));
    let text = m.output()[from..].to_string();
    m.send_raw("\r~.");
    m.expect("[EOT]", T);
    m.expect(PROMPT, T);
    text
}

/// The PID column of `vm`'s row in `show`.
fn monitor_pid(m: &mut Machine, vm: &str) -> u32 {
    let from = m.output().len();
    m.command(&format!("show {vm}"), &format!("running {vm}"));
    let text = m.output()[from..].to_string();
    let row = text.lines().find(|l| l.trim_end().ends_with(&format!("running {vm}"))).expect("the row");
    row.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no PID in {row:?}"))
}

/// The guest's check lines all passed: the verdict, and no `FAILED` line.
fn assert_passed(console: &str, guest: &str) {
    assert!(console.contains(&format!("PASS {guest}")), "no PASS {guest} in:\n{console}");
    assert!(!console.contains(&format!("{guest}: FAILED")), "{guest} failed a check:\n{console}");
}

#[test]
fn hostile_guest_passes_beside_another_guest_under_svm() {
    let mut m = Machine::qemu("hostile-svm", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(AMD_VIRT_LINE, BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);
    // The spinner runs first (its memory pattern written), then the attacks start.
    m.send_line("start spinner");
    m.expect("vmctl: started vm", T);
    let r0 = spinner_round(&mut m, "spinner", 0);
    m.send_line("start hostile");
    m.expect("vmctl: started vm", T);
    console_until(&mut m, "hostile", "hostile: out storm: started", HOSTILE);

    // During the exit storm: the shell answers and the spinner makes progress.
    m.command("show hostile", "running hostile");
    let r1 = spinner_round(&mut m, "spinner", r0);
    let r2 = spinner_round(&mut m, "spinner", r1);
    m.command("show", "running spinner");
    let storm = console_until(&mut m, "hostile", "hostile: out storm:", T);
    assert!(
        !storm.contains("out storm: done"),
        "the exit storm ended before the checks made during it (spinner rounds {r1}, {r2}): make it longer"
    );

    // The verdict: every check passed, the VM stopped by its own debug-exit write.
    wait_anywhere(&mut m, "vmd: vm hostile stopped: the guest wrote 0 to the debug-exit port", HOSTILE);
    let console = console_until(&mut m, "hostile", "PASS hostile", T);
    assert_passed(&console, "hostile");
    // The spinner's memory pattern survived every probe and it still runs.
    let r3 = spinner_round(&mut m, "spinner", r2);

    // String port I/O with huge counts, across pages and past the end of RAM: emulated by the
    // monitor in slices; the guest checks the registers and the bytes read.
    m.send_line("start hostile_io");
    m.expect("vmctl: started vm", T);
    wait_anywhere(&mut m, "vmd: vm hostile_io stopped: ", T);
    // The whole line: the rest of it may still be on its way when its start arrives.
    let stopped_line_ended =
        |out: &str| out.find("vmd: vm hostile_io stopped: ").is_some_and(|i| out[i..].contains('\n'));
    let deadline = Instant::now() + T;
    while !stopped_line_ended(&m.output()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = m.output();
    assert!(
        out.contains("vmd: vm hostile_io stopped: the guest wrote 0 to the debug-exit port"),
        "hostile_io did not pass:\n{}",
        &out[out.find("vmd: vm hostile_io stopped").unwrap_or(0)..]
    );
    let console = console_until(&mut m, "hostile_io", "PASS hostile_io", T);
    assert_passed(&console, "hostile_io");
    m.command("show hostile_io", "stopped hostile_io");

    // The host goes on: the spinner still runs, another guest passes.
    spinner_round(&mut m, "spinner", r3);
    m.send_line("start hello");
    m.expect("vmctl: started vm", T);
    wait_anywhere(&mut m, "vmd: vm hello stopped: the guest wrote 0 to the debug-exit port", T);
    m.command("stop spinner", "stopping vm spinner: requested to shutdown vm");
    wait_anywhere(&mut m, "vmd: vm spinner stopped: stopped on request", T);
    assert!(!m.output().contains("FAIL spinner"), "the spinner's memory changed");
}

#[test]
fn a_killed_monitor_stops_only_its_vm() {
    let mut m = Machine::qemu("hostile-kill", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(PROMPT, BIOS_BOOT);
    m.send_line("start spinner");
    m.expect("vmctl: started vm", T);
    m.send_line("start -m 16M -b spinner spinner2");
    m.expect("vmctl: started vm", T);
    m.send_line("start -m 16M -b spinner spinner3");
    m.expect("vmctl: started vm", T);
    let mut rounds = [0u64; 3];
    for (i, vm) in ["spinner", "spinner2", "spinner3"].iter().enumerate() {
        rounds[i] = spinner_round(&mut m, vm, 0);
    }

    // Kill spinner2's monitor with the debugging verb, by the PID `show` lists.
    let pid = monitor_pid(&mut m, "spinner2");
    m.send_line(&format!("kill {pid}"));
    m.expect(&format!("kill: killed process {pid}, the monitor of vm spinner2"), T);
    wait_anywhere(&mut m, "vmd: vm spinner2 stopped: its monitor was killed", T);
    m.send_line("show spinner2");
    m.expect("stopped spinner2", T);
    m.expect("vm spinner2 stopped: its monitor was killed", T);
    m.expect(PROMPT, T);

    // The other two keep running and making progress; the shell answers.
    m.command("show spinner", "running spinner");
    m.command("show spinner3", "running spinner3");
    rounds[0] = spinner_round(&mut m, "spinner", rounds[0]);
    rounds[2] = spinner_round(&mut m, "spinner3", rounds[2]);
    spinner_round(&mut m, "spinner", rounds[0]);
    spinner_round(&mut m, "spinner3", rounds[2]);

    // Not a monitor or a spawned process: refused.
    m.command("kill 999", "kill: no process 999 started from this shell or running a vm");
    // The killed VM starts again.
    m.send_line("start spinner2");
    m.expect("vmctl: started vm", T);
    // The state goes from starting to running once the new monitor has booted it.
    m.wait_state("spinner2", "running", T);
    m.command("stop -a", "stopping vm spinner3");
    wait_anywhere(&mut m, "vmd: vm spinner3 stopped", T);
    assert!(!m.output().contains("FAIL spinner"), "a spinner's memory changed");
}

#[test]
fn hostile_guests_under_vmx_in_bochs() {
    // The quick variant (less than 16 MiB of RAM): Bochs is slow.
    let bochs = Duration::from_secs(180);
    let mut m = Machine::bochs("hostile-vmx", &iso(), "corei7_skylake_x");
    m.expect("virt: Intel VMX with EPT", bochs);
    m.expect(PROMPT, bochs);
    m.send_line("start -m 8M -b hostile hostile8");
    m.expect("vmctl: started vm", T);
    wait_anywhere(&mut m, "vmd: vm hostile8 stopped: ", bochs);
    assert!(
        m.output().contains("vmd: vm hostile8 stopped: the guest wrote 0 to the debug-exit port"),
        "hostile8 did not pass"
    );
    let console = console_until(&mut m, "hostile8", "PASS hostile", T);
    assert_passed(&console, "hostile");
    assert!(console.contains("quick variant"), "{console}");
    m.send_line("start hostile_io");
    m.expect("vmctl: started vm", T);
    wait_anywhere(&mut m, "vmd: vm hostile_io stopped: ", bochs);
    assert!(
        m.output().contains("vmd: vm hostile_io stopped: the guest wrote 0 to the debug-exit port"),
        "hostile_io did not pass"
    );
    let console = console_until(&mut m, "hostile_io", "PASS hostile_io", T);
    assert_passed(&console, "hostile_io");
    m.command("show", "stopped hostile_io");
}
