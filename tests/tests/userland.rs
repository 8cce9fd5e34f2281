//! The microkernel's userland, driven over the serial port as a person would: vmd's shell with
//! vm.conf (the OpenBSD FAQ's examples), the console mux on a loopback stream, configuration
//! errors naming their line, and a user process that faults being killed while vmd goes on.

use std::time::Duration;

use keel_systests::*;

const T: Duration = Duration::from_secs(30);

/// The vm.conf examples from the OpenBSD FAQ, as written there.
const FAQ_VM_CONF: &str = r#"vm "example" {
    memory 1G
    disk /home/user/disk.qcow2
    local interface
}

switch "my_switch" {
    interface bridge0
}

vm "my_vm" {
    interface { switch "my_switch" }
}
"#;

const BROKEN_CONF: &str = "# a file with a mistake on line 3\nvm \"web\" {\n    memory lots\n}\n";
const MORE_CONF: &str = "vm \"extra\" {\n    memory 256M\n}\n";

#[test]
fn shell_session_with_the_faq_vm_conf() {
    let iso = image_with("shell", "log=info", FAQ_VM_CONF, &[("broken.conf", BROKEN_CONF), ("more.conf", MORE_CONF)]);
    let mut m = Machine::qemu("shell", &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect("process 1 (vmd) started", BIOS_BOOT);
    m.expect("vmd: 2 vm(s) and 1 switch(es) in vm.conf", BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);

    m.command("help", "console id");
    // vmctl's columns, with STATE before NAME; the FAQ's example VM.
    m.send_line("vmctl show");
    m.expect("   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    STATE NAME", T);
    m.expect("    1     -     1    1.0G       -       -         root  stopped example", T);
    m.expect("    2     -     1    512M       -       -         root  stopped my_vm", T);
    m.expect(PROMPT, T);
    m.command("show 2", "my_vm");
    m.command("status example", "example");
    m.command("show nosuchvm", "no such vm: nosuchvm");

    // Unknown verbs and bad flags: one line, and the usage for known verbs.
    m.command("frobnicate", "unknown command 'frobnicate' (try help)");
    m.send_line("stop -x example");
    m.expect("usage: stop [-fw] [id | -a]", T);
    m.expect(PROMPT, T);

    // The console of a VM (a loopback stream until guests run): what we type comes back,
    // `~~` sends one `~`, and `~.` at the start of a line comes back to the shell.
    m.send_line("vmctl console example");
    m.expect("Connected to /dev/ttyp0 (speed 115200)", T);
    m.send_line("echo ~~ mid-line is sent as is");
    m.expect("echo ~~ mid-line is sent as is", T);
    m.send_line("~~ at line start sends one tilde");
    m.expect("~ at line start sends one tilde", T);
    assert!(!m.output().contains("~~ at line start"), "~~ at the start of a line sends a single ~");
    m.send_raw("~.");
    m.expect("[EOT]", T);
    m.expect(PROMPT, T);
    m.command("vmctl stop example", "stopping vm example: vm not running");
    m.command("start example", "vm example has no boot image");

    // Configuration files: an error names file and line and changes nothing; a good one is added.
    m.send_line("load broken.conf");
    m.expect("vmd: broken.conf:3: ", T);
    m.expect("vmd: configuration not changed", T);
    m.expect(PROMPT, T);
    m.command("load more.conf", "extra");
    m.command("show", "extra");
    m.command("load nothere.conf", "no such file on the boot media");
    m.command("reload", "vm.conf");
    m.command("dmesg", "process 1 (vmd) started");
    m.command("version", "Keel 0.1.0");
    m.command("cpus", "2 CPUs");
}

#[test]
fn vm_conf_error_at_boot_names_the_line() {
    let conf = "vm \"ok\" {\n    memory 1G\n}\nvm \"bad\" {\n    memroy 2G\n}\n";
    let iso = image_with("bad-conf", "log=info", conf, &[]);
    let mut m = Machine::qemu("bad-conf", &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect("vmd: vm.conf:5: ", BIOS_BOOT);
    m.expect("vmd: starting with no VMs; fix the file and use 'reload'", BIOS_BOOT);
    m.expect(PROMPT, BIOS_BOOT);
    m.send_line("show");
    m.expect("STATE NAME", T);
    m.expect(PROMPT, T);
    assert!(!m.output().contains("stopped ok"), "a broken file configures nothing");
}

#[test]
fn faulting_user_process_is_killed_and_vmd_stays_usable() {
    let iso = image_with("crash", "log=info", FAQ_VM_CONF, &[]);
    let mut m = Machine::qemu("crash", &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect(PROMPT, BIOS_BOOT);
    m.send_line("spawn crashtest");
    m.expect("vmd: started process 2 (crashtest)", T);
    m.expect("process 2 (crashtest) killed: #PF page fault at rip 0x4", T);
    m.expect("address 0xdead0000", T);
    m.expect("vmd: process 2 (crashtest) was killed by the kernel (CPU exception 14)", T);
    // The shell still answers, and the process is gone from the kernel's table.
    m.command("show", "stopped example");
    m.send_line("spawn crashtest");
    m.expect("vmd: process 3 (crashtest) was killed", T);
    m.command("spawn nosuchprogram", "spawn: nosuchprogram: not found");
    m.command("mem", "MiB free");
}

#[test]
fn system_calls_from_ring_3_pass_the_selftest() {
    // selftest checks memory and W^X, bad pointers, handle types and rights, notifications and
    // timeouts, threads, preemption of a thread that never yields, and shared memory.
    let iso = image_with("selftest", "log=info", "", &[]);
    let mut m = Machine::qemu("selftest", &spec(Firmware::Bios, Media::Cdrom(iso)));
    m.expect(PROMPT, BIOS_BOOT);
    m.send_line("spawn selftest");
    m.expect("selftest: all ", T);
    m.expect(" checks passed", T);
    m.expect("vmd: process 2 (selftest) exited with code 0", T);
    assert!(!m.output().contains("FAILED"), "a selftest check failed");
}
