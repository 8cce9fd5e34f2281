//! `cargo xtask bench`: Keel's benchmarks, counted in instructions (docs/performance.md).
//!
//! Every run is QEMU in pure emulation with `-cpu max -icount shift=0 -smp 1`: each emulated
//! instruction advances the virtual clock (and the TSC) by exactly one nanosecond, so TSC
//! differences and guest uptimes are instruction counts, the same on every run and machine.
//! (One CPU: with two, icount counts both CPUs' instructions on one clock.)
//!
//! 1. Keel's image boots; `stats` gives the TSC at the kernel's first instruction and at vmd's
//!    first prompt (Keel's boot cost) and exact free memory.
//! 2. The `bench` guest (guests/bench) runs: instructions per CPUID, port I/O and MMIO exit, and
//!    the check that a 4-instruction loop measures 4.00 per iteration.
//! 3. The Linux VM starts with its console attached; its /init prints `init: uptime X Y` first.
//!    `stats` then gives the memory the running VM costs beyond its RAM (free memory and kernel
//!    heap before and after, minus the RAM).
//! 4. The same kernel, initramfs and command line boot directly under QEMU; the same line.
//! 5. Keel boots with a datastore disk, on virtio-blk and then on NVMe, holding a 256 MiB file:
//!    `stats` gives the boot to the prompt with the disk attached, and `storebench`
//!    (tests/programs) reads the file sequentially, then in 4 KiB random reads, through the
//!    storage service, in instructions per byte and per request (QEMU's device emulation is not
//!    counted: it runs outside the emulated CPU).
//!
//! Writes target/bench/results.json and the figures section of docs/performance.md. One QEMU at
//! a time; every wait has a timeout.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::serial::{Serial, COMMAND_TIMEOUT, PROMPT};
use crate::{kernel, linux, root};

/// The Linux VM's RAM in the default vm.conf (userland/vmd/vm.conf), which the test image includes.
const LINUX_VM_RAM: u64 = 256 << 20;
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);
const LINUX_TIMEOUT: Duration = Duration::from_secs(300);

/// A target from the issue: the figure must be at most this (or below, for `strict`).
struct Target {
    limit: f64,
    strict: bool,
}

#[derive(Default)]
struct Results {
    cpuid: Option<f64>,
    pio: Option<f64>,
    mmio: Option<f64>,
    check: Option<f64>,
    boot_instructions: Option<u64>,
    linux_keel_uptime: Option<f64>,
    linux_direct_uptime: Option<f64>,
    vm_overhead_bytes: Option<i64>,
    /// Per controller (virtio-blk, NVMe).
    storage: Vec<StorageFigures>,
    /// The guest's disk (stage 6).
    disks: Option<crate::bench_disks::DiskFigures>,
}

/// Stage 5 on one controller.
#[derive(Clone, Copy)]
struct StorageFigures {
    bus: &'static str,
    /// Instructions from the kernel's first to the prompt, with the datastore attached.
    boot: Option<u64>,
    /// Sequential read of 256 MiB, instructions per byte.
    sequential: Option<f64>,
    /// 4 KiB random reads, instructions per request.
    random: Option<f64>,
}

impl Results {
    fn ratio(&self) -> Option<f64> {
        Some(self.linux_keel_uptime? / self.linux_direct_uptime?)
    }
}

pub fn command(args: &[String]) -> Result<(), String> {
    let only = match args {
        [] => None,
        [a] if a == "storage" || a == "disks" => Some(a.as_str()),
        [a, ..] => {
            return Err(format!("bench: unknown option '{a}' (it takes none, or 'storage' or 'disks' for one stage)"))
        }
    };
    let storage_only = only == Some("storage");
    let iso = kernel::image(kernel::DEFAULT_CMDLINE, &[], kernel::VmConf::Test)?;
    if only == Some("disks") {
        // For working on the guest's disk path: its figures only, printed, no files written.
        let f = crate::bench_disks::stage(&iso)?;
        for (name, value, target, verdict) in crate::bench_disks::rows(&f) {
            println!("{name}: {value} {target} {verdict}");
        }
        return Ok(());
    }
    if storage_only {
        // For working on the storage path: its figures only, printed, no files written.
        for (bus, name) in
            [(keel_image::qemu::DiskBus::Virtio, "virtio-blk"), (keel_image::qemu::DiskBus::Nvme, "NVMe")]
        {
            let f = storage_bench(&iso, bus, name)?;
            println!(
                "{name}: boot {:?}, sequential {:?} instructions/byte, random 4k {:?} instructions/request",
                f.boot, f.sequential, f.random
            );
        }
        return Ok(());
    }
    let linux = linux::prepare().map_err(|e| format!("bench: the Linux guest is needed: {e}"))?;
    let mut r = Results::default();
    let started = Instant::now();

    eprintln!("bench: booting Keel (QEMU -cpu max -icount shift=0 -smp 1)");
    let mut spec =
        keel_image::qemu::QemuSpec::new(keel_image::qemu::Firmware::Bios, keel_image::qemu::Media::Cdrom(iso.clone()));
    spec.smp = 1;
    spec.icount = true;
    let mut keel = Serial::start("keel", Command::new("qemu-system-x86_64").args(keel_image::qemu::args(&spec)))?;
    keel.expect(PROMPT, BOOT_TIMEOUT)?;
    // The storage service's report reaches the prompt as kernel log lines: let it pass first,
    // so that it does not land in the middle of `stats`.
    keel.expect("disk(s)", BOOT_TIMEOUT)?;
    keel.expect(PROMPT, BOOT_TIMEOUT)?;
    let stats = Stats::parse(&keel.command("stats")?)?;
    r.boot_instructions = Some(stats.prompt_tsc.saturating_sub(stats.entry_tsc));

    eprintln!("bench: running the bench guest");
    keel.send_line("start bench");
    keel.expect("vmd: vm bench stopped: ", BENCH_TIMEOUT)?;
    keel.expect(PROMPT, COMMAND_TIMEOUT)?;
    keel.send_line("console bench");
    keel.expect("Connected to /dev/", COMMAND_TIMEOUT)?;
    let out = keel.expect_any(&["PASS bench", "FAIL bench"], COMMAND_TIMEOUT)?;
    keel.send_raw("\r~.");
    keel.expect("[EOT]", COMMAND_TIMEOUT)?;
    keel.expect(PROMPT, COMMAND_TIMEOUT)?;
    let figure = |name: &str| -> Option<f64> {
        let prefix = format!("bench: {name} ");
        out.lines().find_map(|l| l.trim().strip_prefix(&prefix)?.split_whitespace().next()?.parse().ok())
    };
    r.cpuid = figure("cpuid");
    r.pio = figure("pio");
    r.mmio = figure("mmio");
    r.check = figure("check");
    if out.contains("FAIL bench") {
        eprintln!("bench: the bench guest failed:\n{out}");
    }

    eprintln!("bench: booting the Linux guest under Keel");
    let before = Stats::parse(&keel.command("stats")?)?;
    keel.send_line("start -c linux");
    r.linux_keel_uptime = Some(uptime(&keel.line_starting("init: uptime ", LINUX_TIMEOUT)?)?);
    keel.send_raw("\r~.");
    keel.expect("[EOT]", COMMAND_TIMEOUT)?;
    keel.expect(PROMPT, COMMAND_TIMEOUT)?;
    let after = Stats::parse(&keel.command("stats")?)?;
    let used = |s: &Stats| s.heap_used as i64 - s.free as i64;
    r.vm_overhead_bytes = Some(used(&after) - used(&before) - LINUX_VM_RAM as i64);
    drop(keel);

    eprintln!("bench: booting the same Linux directly (QEMU -kernel -initrd, -cpu max -icount shift=0)");
    let mut direct = Serial::start("linux", &mut linux.direct_qemu())?;
    r.linux_direct_uptime = Some(uptime(&direct.line_starting("init: uptime ", LINUX_TIMEOUT)?)?);
    drop(direct);

    for (bus, name) in [(keel_image::qemu::DiskBus::Virtio, "virtio-blk"), (keel_image::qemu::DiskBus::Nvme, "NVMe")] {
        r.storage.push(storage_bench(&iso, bus, name)?);
    }
    r.disks = Some(crate::bench_disks::stage(&iso)?);

    let table = table(&r);
    println!("{table}");
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let json = dir.join("results.json");
    std::fs::write(&json, to_json(&r, &linux.version)).map_err(|e| e.to_string())?;
    write_doc(&root().join("docs/performance.md"), &table, &linux.version)?;
    eprintln!("bench: wrote {} and docs/performance.md ({} s)", json.display(), started.elapsed().as_secs());
    match r.check {
        Some(c) if (c - 4.0).abs() < 0.005 => Ok(()),
        other => {
            Err(format!("bench: the 4-instruction loop measured {other:?} per iteration, not 4.00: icount is off"))
        }
    }
}

/// `init: uptime 1.23 0.45` -> 1.23.
/// The file `storebench` reads: 256 MiB of bytes that differ from block to block.
const STORAGE_FILE_BYTES: usize = 256 << 20;

/// Stage 5 on one controller: boot with a datastore holding /bench.bin, then `storebench`.
fn storage_bench(iso: &Path, bus: keel_image::qemu::DiskBus, name: &'static str) -> Result<StorageFigures, String> {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("bench.bin");
    if std::fs::metadata(&file).map(|m| m.len()).ok() != Some(STORAGE_FILE_BYTES as u64) {
        let bytes: Vec<u8> =
            (0..STORAGE_FILE_BYTES).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect();
        std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    }
    let image = dir.join("datastore.img");
    let _ = std::fs::remove_file(&image);
    let (img, path) = (image.display().to_string(), file.display().to_string());
    crate::datastore::command(&["mkfs".into(), img.clone(), "--size".into(), "320M".into()])?;
    crate::datastore::command(&["put".into(), img, path])?;

    eprintln!("bench: booting Keel with a datastore on {name}, reading 256 MiB through the storage service");
    let mut spec =
        keel_image::qemu::QemuSpec::new(keel_image::qemu::Firmware::Bios, keel_image::qemu::Media::Cdrom(iso.into()));
    spec.smp = 1;
    spec.icount = true;
    spec.disks.push(keel_image::qemu::Disk { path: image, bus });
    let mut keel = Serial::start("keel", Command::new("qemu-system-x86_64").args(keel_image::qemu::args(&spec)))?;
    keel.expect(PROMPT, BOOT_TIMEOUT)?;
    keel.expect("datastore, in use", BOOT_TIMEOUT)?;
    keel.expect(PROMPT, BOOT_TIMEOUT)?;
    let stats = Stats::parse(&keel.command("stats")?)?;
    let boot = stats.prompt_tsc.saturating_sub(stats.entry_tsc);
    keel.send_line("spawn -s storebench");
    let seq_line = keel.expect("instructions/byte", BENCH_TIMEOUT)?;
    let rnd_line = keel.expect("instructions/request", BENCH_TIMEOUT)?;
    let number = |text: &str, after: &str| -> Option<f64> {
        text.lines().rev().find_map(|l| l.split(after).nth(1)?.split_whitespace().next()?.parse().ok())
    };
    let seq = number(&seq_line, "storebench: sequential ");
    let rnd = number(&rnd_line, "storebench: random 4k ");
    Ok(StorageFigures { bus: name, boot: Some(boot), sequential: seq, random: rnd })
}

fn uptime(line: &str) -> Result<f64, String> {
    line.strip_prefix("init: uptime ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("bench: cannot read the uptime in {line:?}"))
}

/// What `stats` printed.
struct Stats {
    entry_tsc: u64,
    prompt_tsc: u64,
    free: u64,
    heap_used: u64,
}

impl Stats {
    fn parse(text: &str) -> Result<Stats, String> {
        let number_after = |prefix: &str| -> Option<u64> {
            text.lines().find_map(|l| {
                let rest = &l[l.find(prefix)? + prefix.len()..];
                rest.split_whitespace().next()?.parse().ok()
            })
        };
        let missing = || format!("bench: cannot read `stats`:\n{text}");
        Ok(Stats {
            entry_tsc: number_after("boot: kernel entry at tsc ").ok_or_else(missing)?,
            prompt_tsc: number_after("boot: first prompt at tsc ").ok_or_else(missing)?,
            free: number_after("memory: ").ok_or_else(missing)?,
            heap_used: number_after(", kernel heap ").ok_or_else(missing)?,
        })
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn verdict(v: Option<f64>, t: &Target) -> &'static str {
    match v {
        Some(v) if v < t.limit || (!t.strict && v == t.limit) => "met",
        Some(_) => "missed",
        None => "-",
    }
}

fn table(r: &Results) -> String {
    let rows: Vec<(String, String, String, &str)> = {
        let at_most = |limit: f64| Target { limit, strict: false };
        let below = |limit: f64| Target { limit, strict: true };
        let mib = r.vm_overhead_bytes.map(|b| b as f64 / (1 << 20) as f64);
        vec![
            (
                "cpuid exit (ring 0), instructions",
                fmt_opt(r.cpuid, 2),
                "<= 480".into(),
                verdict(r.cpuid, &at_most(480.0)),
            ),
            ("pio exit (monitor), instructions", fmt_opt(r.pio, 2), "<= 990".into(), verdict(r.pio, &at_most(990.0))),
            (
                "mmio exit (monitor), instructions",
                fmt_opt(r.mmio, 2),
                "<= 1670".into(),
                verdict(r.mmio, &at_most(1670.0)),
            ),
            (
                "check: 4-instruction loop, per iteration",
                fmt_opt(r.check, 2),
                "4.00".into(),
                match r.check {
                    Some(c) if (c - 4.0).abs() < 0.005 => "holds",
                    Some(_) => "FAILS",
                    None => "-",
                },
            ),
            ("Linux uptime at init under Keel, s", fmt_opt(r.linux_keel_uptime, 2), "".into(), ""),
            ("Linux uptime at init, direct QEMU, s", fmt_opt(r.linux_direct_uptime, 2), "".into(), ""),
            ("Linux ratio Keel / direct", fmt_opt(r.ratio(), 3), "<= 1.10".into(), verdict(r.ratio(), &at_most(1.10))),
            (
                "Keel boot to prompt, million instructions",
                fmt_opt(r.boot_instructions.map(|i| i as f64 / 1e6), 2),
                "< 50".into(),
                verdict(r.boot_instructions.map(|i| i as f64 / 1e6), &below(50.0)),
            ),
            ("per-VM overhead beyond RAM, MiB", fmt_opt(mib, 3), "< 1".into(), verdict(mib, &below(1.0))),
        ]
        .into_iter()
        .map(|(name, value, target, v)| (name.to_string(), value, target, v))
        .chain(r.disks.iter().flat_map(|f| crate::bench_disks::rows(f)))
        .chain(r.storage.iter().flat_map(|f| {
            let (bus, seq, rnd) = (f.bus, f.sequential, f.random);
            let boot = f.boot.map(|i| i as f64 / 1e6);
            [
                (format!("boot to prompt with {bus} datastore, M instr."), fmt_opt(boot, 2), "".into(), ""),
                (
                    format!("{bus}: sequential read, instructions/byte"),
                    fmt_opt(seq, 3),
                    "<= 0.5".into(),
                    verdict(seq, &at_most(0.5)),
                ),
                (
                    format!("{bus}: 4 KiB random read, instructions"),
                    fmt_opt(rnd, 0),
                    "<= 6000".into(),
                    verdict(rnd, &at_most(6000.0)),
                ),
            ]
        }))
        .collect()
    };
    let mut out = String::new();
    let _ = writeln!(out, "| {:<42} | {:>12} | {:>8} | {:<6} |", "figure", "measured", "target", "");
    let _ = writeln!(out, "|{:-<44}|{:->14}|{:->10}|{:-<8}|", "", ":", ":", "");
    for (name, value, target, v) in rows {
        let _ = writeln!(out, "| {name:<42} | {value:>12} | {target:>8} | {v:<6} |");
    }
    if let Some(b) = r.boot_instructions {
        let _ = writeln!(out, "\nKeel boot: {b} instructions from the kernel's first instruction to the prompt.");
    }
    if let Some(b) = r.vm_overhead_bytes {
        let _ = writeln!(out, "Per-VM overhead: {b} bytes beyond the Linux VM's 256 MiB of RAM.");
    }
    out
}

fn json_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".into(), |v| v.to_string())
}

fn to_json(r: &Results, linux_version: &str) -> String {
    format!(
        r#"{{
  "date": "{}",
  "revision": "{}",
  "command": "cargo xtask bench",
  "qemu": "-cpu max -icount shift=0 -smp 1",
  "linux": "{linux_version}",
  "instructions_per_exit": {{ "cpuid": {}, "pio": {}, "mmio": {} }},
  "check_loop_per_iteration": {},
  "linux_uptime_s": {{ "keel": {}, "direct": {}, "ratio": {} }},
  "keel_boot_instructions": {},
  "vm_overhead_bytes": {},
  "storage": [{}],
  "guest_disk": [{}]
}}
"#,
        today(),
        revision(),
        json_opt(r.cpuid),
        json_opt(r.pio),
        json_opt(r.mmio),
        json_opt(r.check),
        json_opt(r.linux_keel_uptime),
        json_opt(r.linux_direct_uptime),
        json_opt(r.ratio().map(|x| (x * 1000.0).round() / 1000.0)),
        json_opt(r.boot_instructions),
        json_opt(r.vm_overhead_bytes),
        r.storage
            .iter()
            .map(|f| format!(
                "{{ \"bus\": \"{}\", \"boot_instructions\": {}, \"sequential_instructions_per_byte\": {}, \"random_4k_instructions\": {} }}",
                f.bus,
                json_opt(f.boot),
                json_opt(f.sequential),
                json_opt(f.random)
            ))
            .collect::<Vec<_>>()
            .join(", "),
        r.disks
            .iter()
            .flat_map(|d| d.workloads.iter())
            .map(|w| format!(
                "{{ \"workload\": \"{}\", \"keel_seconds\": {}, \"direct_seconds\": {}, \"keel_instructions_per_request\": {} }}",
                w.name,
                json_opt(w.keel_seconds),
                json_opt(w.direct_seconds),
                json_opt(w.keel_instructions)
            ))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

const DOC_BEGIN: &str = "<!-- cargo xtask bench: figures begin -->";
const DOC_END: &str = "<!-- cargo xtask bench: figures end -->";

/// Replace the figures section of docs/performance.md (the rest is prose kept as written).
fn write_doc(path: &Path, table: &str, linux_version: &str) -> Result<(), String> {
    let section = format!(
        "{DOC_BEGIN}\nMeasured on {} at revision {} with `cargo xtask bench` (QEMU {}, `-cpu max -icount shift=0 \
         -smp 1`; Linux {linux_version}):\n\n{table}{DOC_END}",
        today(),
        revision(),
        qemu_version()
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| format!("# Performance\n\n{DOC_BEGIN}\n{DOC_END}\n"));
    let new = match (text.find(DOC_BEGIN), text.find(DOC_END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &text[..b], &text[e + DOC_END.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn capture(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn revision() -> String {
    let rev = capture(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(root()));
    let dirty =
        capture(Command::new("git").args(["status", "--porcelain"]).current_dir(root())).is_some_and(|s| !s.is_empty());
    format!("{}{}", rev.as_deref().unwrap_or("unknown"), if dirty { " (with uncommitted changes)" } else { "" })
}

fn qemu_version() -> String {
    capture(Command::new("qemu-system-x86_64").arg("--version"))
        .and_then(|v| v.lines().next()?.split_whitespace().nth(3).map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// Today's date (UTC), YYYY-MM-DD. See: Howard Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms" (civil_from_days).
fn today() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
