//! `cargo xtask`: Keel's build, image, run, test and flash commands.
//!
//! Every command first checks the host (rustup target, Debian packages) and installs what is
//! missing when run as root, or prints the exact command to run otherwise (see `setup`).

mod bench;
mod bench_disks;
mod datastore;
mod flash;
mod fuzz;
mod kernel;
mod lint;
mod linux;
mod serial;
mod setup;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build                    build the kernel (release, x86_64-unknown-none)
  image [--add PATH...]    build the hybrid BIOS/UEFI, CD/USB image: target/keel.iso, with
                           userland/vmd/vm.conf (--add puts your own files on it: guest images
                           for vm.conf's boot)
  run [--uefi] [--usb] [--cpu MODEL] [--cmdline ARGS] [--add PATH...] [--disk IMAGE]...
      [--disk-bus virtio|ahci|nvme]
                           boot the image in QEMU, serial console on this terminal (Ctrl-A X quits),
                           with the datastore disk target/run/datastore.img (made on first use,
                           kept between runs) and any --disk images, on virtio-blk by default
  lint                     cargo fmt --check and cargo clippy -D warnings (host crates, kernel,
                           user programs and guests), with the workspace's unsafe lints
  test [FILTER...]         lint, host unit tests, a fuzz smoke pass, then the system tests in QEMU
                           and Bochs on target/keel-test.iso, whose vm.conf is tests/vm.conf
                           (a FILTER picks system tests and skips the smoke pass)
  flash <device|file> [--yes] [--force] [--image PATH]
                           write the image to a USB stick (or a file) and verify it
  fuzz [TARGET...] [--runs N] [--seconds S] [--sanitizer none] [--fresh] [--replay] [-- LIBFUZZER_ARGS...]
                           run the fuzz targets (all by default, 60 s each; AddressSanitizer
                           unless --sanitizer none; nightly and cargo-fuzz are installed if
                           missing); fails on a crash, naming the input; --fresh starts from
                           the committed seeds only; --replay runs each committed input once
  datastore mkfs IMAGE [--size 1G] [--label L] [--offset BYTES]
  datastore put IMAGE FILE... [--to DIR] | get IMAGE PATH [OUT] | ls IMAGE [PATH]
                           make a sparse exFAT datastore image and copy files in and out of it
                           without mounting it (--offset: a volume inside a partition)
  bench [storage]          benchmarks in QEMU with -icount (exit costs, Linux boot, Keel's boot
                           and per-VM memory, storage): target/bench/results.json,
                           docs/performance.md; `storage` runs and prints the storage stage only";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => setup::ensure(false).and_then(|_| kernel::build().map(|_| ())),
        Some("image") => setup::ensure(false).and_then(|_| image(&args[1..])),
        Some("run") => setup::ensure(false).and_then(|_| run(&args[1..])),
        Some("lint") => lint::lint(),
        Some("test") => setup::ensure(true).and_then(|_| test(&args[1..])),
        Some("flash") => flash::command(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("datastore") => datastore::command(&args[1..]),
        Some("bench") => setup::ensure(false).and_then(|_| bench::command(&args[1..])),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// The file arguments after `--add`, up to the next option.
fn take_files(it: &mut std::slice::Iter<'_, String>, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let before = files.len();
    while let Some(p) = it.clone().next().filter(|p| !p.starts_with("--")) {
        files.push(PathBuf::from(p));
        it.next();
    }
    if files.len() == before {
        return Err("--add needs one or more files".into());
    }
    Ok(())
}

fn image(args: &[String]) -> Result<(), String> {
    let mut extra = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--add" => take_files(&mut it, &mut extra)?,
            other => return Err(format!("image: unknown option '{other}'\n{USAGE}")),
        }
    }
    kernel::image(kernel::DEFAULT_CMDLINE, &extra, kernel::VmConf::User).map(|_| ())
}

fn run(args: &[String]) -> Result<(), String> {
    use keel_image::qemu::{self, Firmware, Media, QemuSpec};
    let mut uefi = false;
    let mut usb = false;
    let mut cpu = "max".to_string();
    let mut cmdline = kernel::DEFAULT_CMDLINE.to_string();
    let mut extra = Vec::new();
    let mut disks = Vec::new();
    let mut bus = qemu::DiskBus::Virtio;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--disk" => disks.push(std::path::PathBuf::from(it.next().ok_or("--disk needs an image path")?)),
            "--disk-bus" => {
                let name = it.next().ok_or("--disk-bus needs virtio, ahci or nvme")?;
                bus = qemu::DiskBus::parse(name).ok_or(format!("--disk-bus: '{name}' is not virtio, ahci or nvme"))?;
            }
            "--uefi" => uefi = true,
            "--usb" => usb = true,
            "--cpu" => cpu = it.next().ok_or("--cpu needs a model (max, qemu64, EPYC, ...)")?.clone(),
            "--cmdline" => cmdline = it.next().ok_or("--cmdline needs the kernel arguments")?.clone(),
            "--add" => take_files(&mut it, &mut extra)?,
            other => return Err(format!("run: unknown option '{other}'\n{USAGE}")),
        }
    }
    let iso = kernel::image(&cmdline, &extra, kernel::VmConf::User)?;
    let out = root().join("target/run");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let firmware =
        if uefi { Firmware::Uefi { vars: qemu::fresh_uefi_vars(&out.join("OVMF_VARS.fd"))? } } else { Firmware::Bios };
    let media = if usb {
        let stick = out.join("usb.img");
        std::fs::copy(&iso, &stick).map_err(|e| e.to_string())?;
        Media::UsbStick(stick)
    } else {
        Media::Cdrom(iso)
    };
    let mut spec = QemuSpec::new(firmware, media);
    spec.cpu = cpu;
    spec.serial = "mon:stdio".into();
    // The datastore disk: made and formatted on first use, kept between runs, so what a user
    // creates in one run is there in the next. Then the disks asked for, in order.
    let datastore = out.join("datastore.img");
    if !datastore.exists() {
        eprintln!("run: making the datastore disk {} (exFAT, 4 GiB, sparse)", datastore.display());
        let path = datastore.display().to_string();
        datastore::command(&["mkfs".into(), path, "--size".into(), "4G".into(), "--label".into(), "KEEL".into()])?;
    }
    spec.disks.push(qemu::Disk { path: datastore, bus });
    spec.disks.extend(disks.into_iter().map(|path| qemu::Disk { path, bus }));
    eprintln!(
        "run: booting Keel in QEMU (-cpu {} -smp 2); Ctrl-A X quits, Ctrl-A C toggles the QEMU monitor",
        spec.cpu
    );
    run_checked(Command::new("qemu-system-x86_64").args(qemu::args(&spec)))
}

fn test(args: &[String]) -> Result<(), String> {
    let filter: Vec<&String> = args.iter().collect();
    eprintln!("test: lint (cargo xtask lint)");
    lint::lint()?;
    eprintln!("test: host unit tests (cargo test)");
    run_checked(Command::new("cargo").arg("test").current_dir(root()))?;
    if filter.is_empty() {
        let started = std::time::Instant::now();
        eprintln!("test: fuzz smoke pass (cargo xtask fuzz, a few seconds per target)");
        fuzz::smoke()?;
        eprintln!("test: fuzz smoke pass done in {} s", started.elapsed().as_secs());
    } else {
        eprintln!("test: fuzz smoke pass skipped (system test filter given)");
    }
    let iso = kernel::image(kernel::DEFAULT_CMDLINE, &[], kernel::VmConf::Test)?;
    eprintln!("test: system tests (QEMU and Bochs, two at a time)");
    let xtask = std::env::current_exe().map_err(|e| e.to_string())?;
    run_checked(
        Command::new("cargo")
            .args(["test", "-p", "keel-systests", "--", "--test-threads=2"])
            .args(filter)
            .env("KEEL_ISO", &iso)
            .env("KEEL_KERNEL", kernel::kernel_path())
            .env("KEEL_XTASK", xtask)
            .env("KEEL_USER_DIR", kernel::user_dir())
            .current_dir(root()),
    )?;
    eprintln!("test: all passed");
    Ok(())
}
