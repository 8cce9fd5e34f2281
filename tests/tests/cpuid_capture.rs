//! Records the raw CPUID of each emulated host CPU the tests use, as the test data of the guest
//! CPU model (kernel/hv/testdata/cpuid/NAME.txt). Not part of the normal run: the files are
//! committed, and re-recorded only when the emulators change, with
//! `cargo xtask test --ignored capture_host_cpuid`.
//!
//! Each model boots Keel with `cpuid-dump` on the command line; the kernel prints the host's
//! leaves (keel-hv `guest_cpu::raw`) before it starts vmd.

use std::time::Duration;

use keel_systests::*;

/// (file name, emulator, CPU model).
const MODELS: &[(&str, &str, &str)] = &[
    ("qemu-max", "qemu", "max"),
    ("qemu-epyc", "qemu", "EPYC"),
    ("bochs-corei7_skylake_x", "bochs", "corei7_skylake_x"),
    ("bochs-corei7_haswell_4770", "bochs", "corei7_haswell_4770"),
    ("bochs-ryzen", "bochs", "ryzen"),
];

#[test]
#[ignore = "records test data; run with --ignored"]
fn capture_host_cpuid() {
    let iso = image_with_cmdline("cpuid-capture", "log=info cpuid-dump");
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/hv/testdata/cpuid");
    std::fs::create_dir_all(&out_dir).unwrap();
    for &(name, emulator, cpu) in MODELS {
        let mut m = if emulator == "qemu" {
            let mut s = spec(Firmware::Bios, Media::Cdrom(iso.clone()));
            s.cpu = cpu.into();
            Machine::qemu(name, &s)
        } else {
            Machine::bochs(name, &iso, cpu)
        };
        m.expect("cpuid-raw: end", Duration::from_secs(300));
        let text = m.output().replace('\r', "");
        let mut file = format!(
            "# Raw CPUID of {emulator} -cpu {cpu}, recorded by tests/tests/cpuid_capture.rs\n# leaf subleaf eax ebx ecx edx\n"
        );
        for line in text.lines().filter_map(|l| l.strip_prefix("cpuid-raw: ")).take_while(|l| *l != "end") {
            file.push_str(line);
            file.push('\n');
        }
        std::fs::write(out_dir.join(format!("{name}.txt")), file).unwrap();
        eprintln!("[{name}] recorded");
    }
}
