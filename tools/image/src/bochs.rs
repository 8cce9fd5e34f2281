//! Bochs configuration for the Intel VMX+EPT test path (settings from shared/TESTBED.md).
//!
//! Pitfalls handled here: Debian's Bochs has no headless display (use rfb with timeout=0), its
//! default VGA BIOS symlink dangles, and it aborts at start-up ("buffer overflow detected") while
//! opening the sound device unless the speaker and sound drivers are turned off.

use std::fmt::Write as _;
use std::path::Path;

pub enum Com1<'a> {
    /// Serial output to a file (complete only once Bochs exits).
    File(&'a Path),
    /// A TCP server on localhost:port; Bochs waits for the client before it starts.
    Socket(u16),
}

pub fn bochsrc(iso: &Path, cpu_model: &str, com1: Com1, log: &Path) -> String {
    bochsrc_with_memory(iso, cpu_model, com1, log, 256)
}

/// The same with `megs` MiB of memory (a Linux guest inside Keel needs more).
pub fn bochsrc_with_memory(iso: &Path, cpu_model: &str, com1: Com1, log: &Path, megs: u32) -> String {
    let mut rc = String::new();
    let _ = writeln!(rc, "megs: {megs}");
    let _ = writeln!(rc, "cpu: model={cpu_model}, count=1, ips=100000000, reset_on_triple_fault=0");
    let _ = writeln!(rc, "clock: sync=none");
    let _ = writeln!(rc, "romimage: file=/usr/share/bochs/BIOS-bochs-latest");
    let _ = writeln!(rc, "vgaromimage: file=/usr/share/seabios/vgabios-isavga.bin");
    let _ = writeln!(rc, "display_library: rfb, options=\"timeout=0\"");
    let _ = writeln!(rc, "ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15");
    let _ = writeln!(rc, "ata1-master: type=cdrom, path={}, status=inserted", iso.display());
    let _ = writeln!(rc, "boot: cdrom");
    match com1 {
        Com1::File(path) => {
            let _ = writeln!(rc, "com1: enabled=1, mode=file, dev={}", path.display());
        }
        Com1::Socket(port) => {
            let _ = writeln!(rc, "com1: enabled=1, mode=socket-server, dev=localhost:{port}");
        }
    }
    let _ = writeln!(rc, "speaker: enabled=0");
    let _ = writeln!(rc, "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy");
    let _ = writeln!(rc, "panic: action=fatal");
    let _ = writeln!(rc, "log: {}", log.display());
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_config() {
        let rc = bochsrc(Path::new("/k.iso"), "corei7_skylake_x", Com1::Socket(5555), Path::new("/b.log"));
        assert!(rc.contains("com1: enabled=1, mode=socket-server, dev=localhost:5555"));
        assert!(rc.contains("path=/k.iso"));
        assert!(rc.contains("speaker: enabled=0"));
    }
}
