//! The benchmark guest, as a functional check: it runs to completion under SVM and prints a
//! figure per exit kind. Figures are only checked for being there and positive: without icount
//! they are host-time noise, and this is a test, not a benchmark (`cargo xtask bench` measures).

use std::time::Duration;

use keel_systests::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn bench_guest_completes_and_prints_its_figures() {
    let mut m = Machine::qemu("bench", &spec(Firmware::Bios, Media::Cdrom(iso())));
    m.expect(PROMPT, BIOS_BOOT);
    m.command("stats", "boot: first prompt at tsc ");
    m.send_line("start bench");
    m.expect("started vm", T);
    m.expect("vmd: vm bench stopped: the guest wrote 0 to the debug-exit port (status 0)", T);
    m.expect(PROMPT, T);
    m.send_line("console bench");
    m.expect("Connected to /dev/ttyp", T);
    m.expect("PASS bench", T);
    m.send_raw("\r~.");
    m.expect("[EOT]", T);
    m.expect(PROMPT, T);
    let out = m.output().replace('\r', "");
    for name in ["baseline", "cpuid", "pio", "mmio", "check"] {
        let prefix = format!("bench: {name} ");
        let value: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no figure for {name} in:\n{out}"));
        assert!(value.is_finite() && value > 0.0, "{name}: {value} is not a positive figure");
    }
}
