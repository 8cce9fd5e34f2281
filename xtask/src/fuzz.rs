//! `cargo xtask fuzz [TARGET...] [--runs N] [--seconds S] [--sanitizer none] [--fresh] [--replay] [-- LIBFUZZER_ARGS...]`:
//! runs Keel's fuzz targets (cargo-fuzz and libFuzzer on the nightly toolchain), one after the
//! other.
//!
//! Every target is listed once, in [`TARGETS`]: its cargo-fuzz crate (each its own workspace,
//! outside Keel's) and its dictionary if it has one. For each target this runs, from the fuzz
//! crate's directory,
//!
//! ```text
//! cargo +nightly fuzz run --target-dir ROOT/target/fuzz TARGET ROOT/target/fuzz/corpus/TARGET corpus/TARGET \
//!     -- [-dict=FILE] -runs=N -max_total_time=S -print_final_stats=1
//! ```
//!
//! The committed seed corpus (`corpus/TARGET`, small and hand-picked, with the inputs of fixed
//! crashes as `regression-*`) is only read: what the fuzzer finds goes to
//! `target/fuzz/corpus/TARGET` (not committed; it carries over between runs, unless `--fresh`
//! empties it first, so that a figure depends only on the commit, the command and the seeds). All fuzz crates share one target directory, so libFuzzer and the shared crates are built
//! once. `--sanitizer none` builds without AddressSanitizer (in `target/fuzz/sanitizer-none`):
//! several times faster, and the fuzzed crates forbid unsafe code. A crash (or timeout, or
//! out-of-memory) fails the command and names the input libFuzzer wrote to the crate's
//! `artifacts/TARGET/`; otherwise the executions done and the coverage reached (libFuzzer's
//! `cov:`, edges) are reported per target.
//!
//! `cargo xtask test` calls [`smoke`]: every committed input of every target run once (libFuzzer
//! runs files given as arguments once each, without fuzzing), so that an input that once crashed
//! fails CI if it crashes again, then a short fuzzing pass of every target. `--replay` does only
//! the first part, for the targets named. The nightly toolchain and cargo-fuzz are installed when missing (both per user, in
//! rustup's and cargo's own directories); libFuzzer's C++ sources need g++ (see `setup`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use crate::{root, run_checked, setup};

/// One fuzz target: its name (a `[[bin]]` of the crate) and its cargo-fuzz crate.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    /// The fuzz crate's directory, relative to the repository root.
    pub dir: &'static str,
    /// A libFuzzer dictionary, relative to `dir`.
    pub dict: Option<&'static str>,
}

/// Every fuzz target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "syscall_decode", dir: "kernel/abi/fuzz", dict: None },
    Target { name: "register_stream", dir: "userland/devices/fuzz", dict: None },
    Target { name: "platform_stream", dir: "userland/devices/fuzz", dict: None },
    Target { name: "pci_stream", dir: "userland/virtio/fuzz", dict: None },
    Target { name: "virtqueue_walk", dir: "userland/virtio/fuzz", dict: None },
    Target { name: "blk_request", dir: "userland/virtio/fuzz", dict: None },
    Target { name: "scsi_request", dir: "userland/virtio/fuzz", dict: None },
    Target { name: "net_tx", dir: "userland/virtio/fuzz", dict: None },
    Target { name: "net_rx", dir: "userland/virtio/fuzz", dict: None },
    Target { name: "emulate", dir: "userland/x86emu/fuzz", dict: None },
    Target { name: "string_io", dir: "userland/x86emu/fuzz", dict: None },
    Target { name: "vmconf_parse", dir: "userland/vmconf/fuzz", dict: Some("vmconf.dict") },
    Target { name: "line_editor", dir: "userland/shell/fuzz", dict: None },
    Target { name: "escape_filter", dir: "userland/shell/fuzz", dict: None },
    Target { name: "partition_table", dir: "userland/partitions/fuzz", dict: None },
    Target { name: "datastore_mount", dir: "userland/datastore/fuzz", dict: None },
    Target { name: "qcow2_image", dir: "userland/diskimage/fuzz", dict: None },
    Target { name: "switch_frame", dir: "userland/net/fuzz", dict: None },
    Target { name: "dhcp_parse", dir: "userland/net/fuzz", dict: None },
];

/// `cargo xtask fuzz` without `--runs` or `--seconds`: a minute per target.
const DEFAULT_SECONDS: u64 = 60;

/// The CI smoke pass per target (`cargo xtask test`): whichever limit comes first.
const SMOKE_RUNS: u64 = 20_000;
const SMOKE_SECONDS: u64 = 10;

const USAGE: &str =
    "usage: cargo xtask fuzz [TARGET...] [--runs N] [--seconds S] [--sanitizer none] [--fresh] [--replay] [-- LIBFUZZER_ARGS...]";

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub targets: Vec<&'static Target>,
    /// libFuzzer's `-runs` (total executions, the seed corpus included).
    pub runs: Option<u64>,
    /// libFuzzer's `-max_total_time`.
    pub seconds: Option<u64>,
    /// cargo-fuzz's `--sanitizer` (its default is `address`); `none` runs several times faster.
    pub sanitizer: Option<String>,
    /// Empty the working corpus first: start from the committed seeds only.
    pub fresh: bool,
    /// Only run every committed input once (no fuzzing).
    pub replay: bool,
    /// Passed on to libFuzzer as they are.
    pub extra: Vec<String>,
}

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn target_names() -> String {
    TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

fn number(option: &str, value: Option<&String>) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{option} needs a number\n{USAGE}"))?;
    match value.replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{option}: '{value}' is not a positive number")),
    }
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        targets: Vec::new(),
        runs: None,
        seconds: None,
        sanitizer: None,
        fresh: false,
        replay: false,
        extra: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => options.runs = Some(number(a, it.next())?),
            "--seconds" => options.seconds = Some(number(a, it.next())?),
            "--sanitizer" => match it.next().map(String::as_str) {
                Some("address") => options.sanitizer = None,
                Some(s @ ("none" | "leak" | "memory" | "thread")) => options.sanitizer = Some(s.to_string()),
                _ => return Err(format!("--sanitizer needs address, none, leak, memory or thread\n{USAGE}")),
            },
            "--fresh" => options.fresh = true,
            "--replay" => options.replay = true,
            "--" => options.extra.extend(it.by_ref().cloned()),
            "all" if options.targets.is_empty() => options.targets.extend(TARGETS.iter()),
            other if other.starts_with('-') => return Err(format!("fuzz: unknown option '{other}'\n{USAGE}")),
            name => {
                let target =
                    find(name).ok_or_else(|| format!("fuzz: no target '{name}' (the targets: {})", target_names()))?;
                if !options.targets.contains(&target) {
                    options.targets.push(target);
                }
            }
        }
    }
    if options.targets.is_empty() {
        options.targets.extend(TARGETS.iter());
    }
    if options.runs.is_none() && options.seconds.is_none() {
        options.seconds = Some(DEFAULT_SECONDS);
    }
    Ok(options)
}

/// How one libFuzzer run ended, from its output.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// Executions (from `stat::number_of_executed_units`, else the final `Done N runs` line).
    pub runs: Option<u64>,
    /// The input libFuzzer wrote on a crash, timeout, out-of-memory or leak (not slow units).
    pub artifact: Option<String>,
    /// Coverage: the last `cov: N` libFuzzer printed (edges reached, the seeds included).
    pub cov: Option<u64>,
    /// Inputs run one by one (files given as arguments): how many, and the last one started
    /// (the one that crashed, if the run failed).
    pub executed: usize,
    pub last_running: Option<String>,
}

/// Reads libFuzzer's output: the executions done and the artifact written, if any.
pub fn parse_output(output: &str) -> Report {
    let mut report = Report { runs: None, artifact: None, cov: None, executed: 0, last_running: None };
    let mut done = None;
    for line in output.lines() {
        // "#4096\tpulse  cov: 91 ft: 315 corp: 82/6457b ..."
        if line.starts_with('#') {
            if let Some((_, rest)) = line.split_once(" cov: ") {
                report.cov = rest.split_whitespace().next().and_then(|n| n.parse().ok()).or(report.cov);
            }
        }
        if let Some(file) = line.strip_prefix("Running: ") {
            report.last_running = Some(file.trim().to_string());
        } else if line.starts_with("Executed ") {
            report.executed += 1;
        }
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            report.runs = n.trim().parse().ok().or(report.runs);
        } else if let Some(rest) = line.trim_start().strip_prefix("Done ") {
            // "Done 2000 runs in 3 second(s)"
            if let Some(n) = rest.strip_suffix(")").and_then(|r| r.split_once(" runs in ")).map(|(n, _)| n) {
                done = n.parse().ok().or(done);
            }
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            // A slow unit (libFuzzer's -report_slow_units) is only a note, not a failure.
            let path = path.trim();
            if !path.rsplit('/').next().unwrap_or(path).starts_with("slow-unit-") {
                report.artifact = Some(path.to_string());
            }
        }
    }
    report.runs = report.runs.or(done);
    report
}

/// What an artifact is, from libFuzzer's file name prefix.
pub fn artifact_kind(path: &str) -> &'static str {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.split('-').next() {
        Some("timeout") => "timeout",
        Some("oom") => "out-of-memory",
        Some("leak") => "memory leak",
        _ => "crash",
    }
}

/// Lines of libFuzzer's output not worth showing: one per new coverage point, and its
/// recommended dictionary.
fn is_noise(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with("NEW_FUNC[")
        || t.starts_with("NEW_PC:")
        || (t.starts_with("######") && t.contains("ecommended dictionary"))
    {
        return true;
    }
    if t.starts_with('"') && t.trim_end().rsplit_once("# Uses: ").is_some_and(|(_, n)| n.parse::<u64>().is_ok()) {
        return true;
    }
    let Some(rest) = t.strip_prefix('#') else { return false };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
    rest.starts_with("NEW ") || rest.starts_with("REDUCE ") || rest.starts_with("RELOAD ")
}

/// The nightly toolchain and cargo-fuzz, installed when missing; g++ for libFuzzer.
pub fn ensure_tools() -> Result<(), String> {
    setup::ensure_fuzz_packages()?;
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map_err(|e| format!("cannot run rustup (fuzzing needs rustup and a nightly toolchain): {e}"))?;
    if !String::from_utf8_lossy(&toolchains.stdout).lines().any(|l| l.starts_with("nightly")) {
        eprintln!("fuzz: installing the nightly toolchain: rustup toolchain install nightly --profile minimal");
        run_checked(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
    }
    let have_cargo_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_cargo_fuzz {
        let started = Instant::now();
        eprintln!("fuzz: installing cargo-fuzz: cargo install cargo-fuzz --locked (a minute or two)");
        run_checked(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]).current_dir(root()))
            .map_err(|e| format!("{e}\n(fuzzing needs cargo-fuzz: cargo install cargo-fuzz --locked)"))?;
        eprintln!("fuzz: cargo-fuzz installed in {} s", started.elapsed().as_secs());
    }
    Ok(())
}

/// Where the fuzz crates build (one shared target directory), and the working corpora.
fn fuzz_dir() -> PathBuf {
    root().join("target/fuzz")
}

/// The shared target directory: one per sanitizer, so that switching does not rebuild.
fn build_dir(sanitizer: Option<&str>) -> PathBuf {
    match sanitizer {
        None => fuzz_dir(),
        Some(s) => fuzz_dir().join(format!("sanitizer-{s}")),
    }
}

/// What a target's run did when it ended without a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub runs: u64,
    /// Edges covered (libFuzzer's last `cov:`), if it printed one.
    pub cov: Option<u64>,
}

/// `cargo +nightly fuzz run` for `target`, from its crate's directory, up to the `--`.
fn cargo_fuzz(target: &Target, sanitizer: Option<&str>) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["+nightly", "fuzz", "run", "--target-dir"]).arg(build_dir(sanitizer));
    if let Some(s) = sanitizer {
        cmd.args(["--sanitizer", s]);
    }
    cmd.arg(target.name).current_dir(root().join(target.dir));
    // Under `cargo xtask`, rustup and cargo point at Keel's pinned toolchain: `+nightly` decides.
    for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO"] {
        cmd.env_remove(var);
    }
    cmd
}

/// The committed inputs of `target` (seeds and `regression-*`), sorted, relative to its crate.
pub fn committed_inputs(target: &Target) -> Result<Vec<PathBuf>, String> {
    let seeds = Path::new("corpus").join(target.name);
    let dir = root().join(target.dir).join(&seeds);
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| seeds.join(e.file_name()))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every committed input of `target` once (no fuzzing); `Ok(count)` when none crashed.
fn replay_one(target: &Target, sanitizer: Option<&str>) -> Result<usize, String> {
    let files = committed_inputs(target)?;
    let mut cmd = cargo_fuzz(target, sanitizer);
    cmd.args(&files).arg("--");
    let output = run_streaming(&mut cmd)?;
    let report = parse_output(&output.text);
    if !output.success {
        let input = report.last_running.as_deref().unwrap_or("(not named in the output)");
        return Err(format!(
            "{}: a committed input crashes: {input}\n  reproduce: cd {} && cargo +nightly fuzz run {} {input}",
            target.name, target.dir, target.name
        ));
    }
    if report.executed != files.len() {
        return Err(format!("{}: {} inputs given, libFuzzer ran {}", target.name, files.len(), report.executed));
    }
    Ok(files.len())
}

/// Runs one target; its runs and coverage when it ended without a crash.
fn run_one(target: &Target, o: &Options) -> Result<Outcome, String> {
    let work = fuzz_dir().join("corpus").join(target.name);
    if o.fresh && work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("cannot empty {}: {e}", work.display()))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let seeds = Path::new("corpus").join(target.name);
    let mut cmd = cargo_fuzz(target, o.sanitizer.as_deref());
    cmd.arg(&work).arg(&seeds).arg("--");
    if let Some(dict) = target.dict {
        cmd.arg(format!("-dict={dict}"));
    }
    if let Some(n) = o.runs {
        cmd.arg(format!("-runs={n}"));
    }
    if let Some(s) = o.seconds {
        cmd.arg(format!("-max_total_time={s}"));
    }
    cmd.arg("-print_final_stats=1").args(&o.extra);
    let output = run_streaming(&mut cmd)?;
    let report = parse_output(&output.text);
    if let Some(artifact) = report.artifact.filter(|_| !output.success) {
        return Err(format!(
            "{}: {} after {} runs; the input is {artifact}\n  reproduce: cd {} && cargo +nightly fuzz run {} {artifact}",
            target.name,
            artifact_kind(&artifact),
            report.runs.map_or("?".to_string(), |n| n.to_string()),
            target.dir,
            target.name,
        ));
    }
    if !output.success {
        return Err(format!("{}: cargo fuzz failed without a crash input (see above)", target.name));
    }
    let runs = report.runs.ok_or_else(|| format!("{}: libFuzzer's output has no 'Done N runs' line", target.name))?;
    Ok(Outcome { runs, cov: report.cov })
}

struct Output {
    success: bool,
    text: String,
}

/// Runs `cmd`, showing its output (less the per-coverage-point lines) and keeping all of it.
fn run_streaming(cmd: &mut Command) -> Result<Output, String> {
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    fn pump(stream: impl Read + Send + 'static) -> thread::JoinHandle<String> {
        thread::spawn(move || {
            let mut all = String::new();
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line);
                if !is_noise(&text) {
                    eprint!("{text}");
                }
                all.push_str(&text);
                line.clear();
            }
            all
        })
    }
    let out = pump(child.stdout.take().expect("piped"));
    let err = pump(child.stderr.take().expect("piped"));
    let status = child.wait().map_err(|e| e.to_string())?;
    let mut text = out.join().unwrap_or_default();
    text.push_str(&err.join().unwrap_or_default());
    Ok(Output { success: status.success(), text })
}

/// `cov N` for the summary, or `cov ?`.
fn cov_text(cov: Option<u64>) -> String {
    cov.map_or("cov ?".to_string(), |n| format!("cov {n}"))
}

/// Runs the given targets one after the other; a summary at the end, an error on any crash.
fn run_all(o: &Options) -> Result<(), String> {
    ensure_tools()?;
    let targets = &o.targets;
    let limit = match (o.runs, o.seconds) {
        (Some(n), Some(s)) => format!("{n} runs or {s} s, whichever comes first"),
        (Some(n), None) => format!("{n} runs"),
        (None, Some(s)) => format!("{s} s"),
        (None, None) => "no limit".to_string(),
    };
    let limit = match &o.sanitizer {
        Some(s) => format!("{limit}, sanitizer {s}"),
        None => limit,
    };
    let limit = if o.fresh { format!("{limit}, fresh corpus") } else { limit };
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        eprintln!("fuzz: [{}/{}] {} in {}: {limit}", i + 1, targets.len(), target.name, target.dir);
        let started = Instant::now();
        let result = run_one(target, o);
        let secs = started.elapsed().as_secs();
        match &result {
            Ok(r) => eprintln!(
                "fuzz: {}: {} runs, {}, no crash ({secs} s with the build)",
                target.name,
                r.runs,
                cov_text(r.cov)
            ),
            Err(e) => {
                eprintln!("fuzz: FAILED {e}");
                failures.push(e.clone());
            }
        }
        results.push((target.name, result, secs));
    }
    eprintln!("fuzz: summary ({limit})");
    for (name, result, secs) in &results {
        match result {
            Ok(r) => eprintln!("  {name:<16} {:>12} runs  {:<9}  ok      {secs:>5} s", r.runs, cov_text(r.cov)),
            Err(_) => eprintln!("  {name:<16} {:>12}       {:<9}  FAILED  {secs:>5} s", "-", ""),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz: {} of {} targets failed:\n  {}", failures.len(), targets.len(), failures.join("\n  ")))
    }
}

/// Every committed input of each target once; an error naming every input that crashes.
fn replay_all(targets: &[&Target], sanitizer: Option<&str>) -> Result<(), String> {
    let mut failures = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        eprintln!("fuzz: [{}/{}] {}: replaying the committed inputs", i + 1, targets.len(), target.name);
        match replay_one(target, sanitizer) {
            Ok(n) => eprintln!("fuzz: {}: {n} committed inputs, none crashes", target.name),
            Err(e) => {
                eprintln!("fuzz: FAILED {e}");
                failures.push(e);
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz: committed inputs crash again:\n  {}", failures.join("\n  ")))
    }
}

pub fn command(args: &[String]) -> Result<(), String> {
    let o = parse_args(args)?;
    if o.replay {
        ensure_tools()?;
        return replay_all(&o.targets, o.sanitizer.as_deref());
    }
    run_all(&o)
}

/// The CI smoke pass: every committed input of every target once (a crash regression input that
/// crashes again fails `cargo xtask test`), then every target briefly from its working corpus.
///
/// If the tools cannot be had (no nightly toolchain and none can be fetched, crates.io
/// unreachable), the pass is skipped with a loud message rather than failing every other test
/// with it: a crash found by a target always fails.
pub fn smoke() -> Result<(), String> {
    if let Err(e) = ensure_tools() {
        eprintln!("fuzz: SMOKE PASS SKIPPED: the fuzzing tools are not available here: {e}");
        return Ok(());
    }
    replay_all(&TARGETS.iter().collect::<Vec<_>>(), None)?;
    run_all(&Options {
        targets: TARGETS.iter().collect(),
        runs: Some(SMOKE_RUNS),
        seconds: Some(SMOKE_SECONDS),
        sanitizer: None,
        fresh: false,
        replay: false,
        extra: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn no_target_means_all_for_a_minute() {
        let o = parse_args(&[]).unwrap();
        assert_eq!(o.targets.len(), TARGETS.len());
        assert_eq!((o.runs, o.seconds), (None, Some(DEFAULT_SECONDS)));
        assert_eq!(parse_args(&args("all --runs 5")).unwrap().targets.len(), TARGETS.len());
    }

    #[test]
    fn target_and_limits() {
        let o = parse_args(&args("vmconf_parse --runs 10_000_000")).unwrap();
        assert_eq!(o.targets, vec![find("vmconf_parse").unwrap()]);
        assert_eq!((o.runs, o.seconds), (Some(10_000_000), None));
        let o = parse_args(&args("--seconds 30 emulate line_editor emulate -- -max_len=64 -jobs=1")).unwrap();
        assert_eq!(o.targets.iter().map(|t| t.name).collect::<Vec<_>>(), ["emulate", "line_editor"]);
        assert_eq!((o.runs, o.seconds), (None, Some(30)));
        assert_eq!(o.extra, ["-max_len=64", "-jobs=1"]);
        assert_eq!(o.sanitizer, None);
        let o = parse_args(&args("pci_stream --sanitizer none")).unwrap();
        assert_eq!(o.sanitizer.as_deref(), Some("none"));
        assert!(!o.fresh);
        let o = parse_args(&args("--runs 4_000_000 --sanitizer none --fresh -- -seed=1")).unwrap();
        assert!(o.fresh && !o.replay);
        assert!(parse_args(&args("virtqueue_walk --replay")).unwrap().replay);
        assert_eq!((o.runs, o.extra.as_slice()), (Some(4_000_000), ["-seed=1".to_string()].as_slice()));
        assert_eq!(parse_args(&args("--sanitizer none --sanitizer address")).unwrap().sanitizer, None);
    }

    #[test]
    fn bad_arguments() {
        assert!(parse_args(&args("nosuch")).unwrap_err().contains("vmconf_parse"));
        assert!(parse_args(&args("--runs")).is_err());
        assert!(parse_args(&args("--runs 0")).is_err());
        assert!(parse_args(&args("--seconds ten")).is_err());
        assert!(parse_args(&args("--jobs 2")).unwrap_err().contains("unknown option"));
        assert!(parse_args(&args("--sanitizer asan")).is_err());
    }

    #[test]
    fn table_lookup() {
        let t = find("vmconf_parse").unwrap();
        assert_eq!((t.dir, t.dict), ("userland/vmconf/fuzz", Some("vmconf.dict")));
        assert_eq!(find("emulate").unwrap().dir, "userland/x86emu/fuzz");
        assert_eq!(find("fuzz"), None);
    }

    /// The table matches the fuzz crates: every target is a `[[bin]]` of its crate with a seed
    /// corpus, every dictionary exists, and every `[[bin]]` of those crates is in the table.
    #[test]
    fn table_matches_the_fuzz_crates() {
        for t in TARGETS {
            let dir = root().join(t.dir);
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            assert!(manifest.contains(&format!("name = \"{}\"", t.name)), "{} not in {}/Cargo.toml", t.name, t.dir);
            let seeds = std::fs::read_dir(dir.join("corpus").join(t.name)).map(|d| d.count()).unwrap_or(0);
            assert!(seeds > 0, "no seed corpus for {}", t.name);
            if let Some(dict) = t.dict {
                assert!(dir.join(dict).is_file(), "{dict} missing in {}", t.dir);
            }
            let bins: Vec<&str> = manifest
                .split("[[bin]]")
                .skip(1)
                .filter_map(|b| b.lines().find_map(|l| l.trim().strip_prefix("name = \"")?.strip_suffix('"')))
                .collect();
            for bin in bins {
                assert!(
                    TARGETS.iter().any(|t2| t2.dir == t.dir && t2.name == bin),
                    "{bin} of {} not in TARGETS",
                    t.dir
                );
            }
        }
    }

    #[test]
    fn done_line_and_stats() {
        let out = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #2000\tDONE   cov: 57 ft: 80 corp: 9/100b lim: 4 exec/s: 0 rss: 31Mb\n\
                   Done 2000 runs in 0 second(s)\n";
        let r = parse_output(out);
        assert_eq!((r.runs, r.artifact, r.cov), (Some(2000), None, Some(57)));
        let with_stats = format!("{out}stat::number_of_executed_units: 2003\nstat::average_exec_per_sec:     0\n");
        assert_eq!(parse_output(&with_stats).runs, Some(2003));
        assert_eq!(
            parse_output("no libFuzzer here\n"),
            Report { runs: None, artifact: None, cov: None, executed: 0, last_running: None }
        );
    }

    #[test]
    fn crash_artifact() {
        let out = "==123== ERROR: libFuzzer: deadly signal\n\
                   MS: 1 ChangeBit-; base unit: 0000\n\
                   artifact_prefix='/k/userland/vmconf/fuzz/artifacts/vmconf_parse/'; \
                   Test unit written to /k/userland/vmconf/fuzz/artifacts/vmconf_parse/crash-da39a3ee\n\
                   stat::number_of_executed_units: 4567\n";
        let r = parse_output(out);
        assert_eq!(r.runs, Some(4567));
        assert_eq!(r.artifact.as_deref(), Some("/k/userland/vmconf/fuzz/artifacts/vmconf_parse/crash-da39a3ee"));
        assert_eq!(artifact_kind(r.artifact.as_deref().unwrap()), "crash");
        assert_eq!(artifact_kind("a/b/timeout-12ab"), "timeout");
        assert_eq!(artifact_kind("oom-12ab"), "out-of-memory");
    }

    #[test]
    fn slow_units_are_not_artifacts() {
        let out = "Slowest unit: 100 s:
                   artifact_prefix='artifacts/vmconf_parse/'; Test unit written to                    artifacts/vmconf_parse/slow-unit-eedd98cd
                   Done 6000000 runs in 760 second(s)
";
        let r = parse_output(out);
        assert_eq!((r.runs, r.artifact), (Some(6_000_000), None));
    }

    /// The coverage is the last `cov:` of a status line (`NEW` lines included, which the
    /// terminal does not show); a `cov:` elsewhere (a dictionary entry, a log) does not count.
    #[test]
    fn coverage_edges() {
        let out = "#2\tINITED cov: 62 ft: 79 corp: 3/3081b exec/s: 0 rss: 27Mb\n\
                   #40\tNEW    cov: 91 ft: 300 corp: 9/1b lim: 4 exec/s: 0 rss: 27Mb L: 3/3 MS: 1 ChangeBit-\n\
                   #5568355\tDONE   cov: 227 ft: 760 corp: 148/7176b lim: 4096 exec/s: 36018 rss: 28Mb\n\
                   \"cov: 999\" # Uses: 3\n\
                   Done 5568355 runs in 61 second(s)\n";
        let r = parse_output(out);
        assert_eq!((r.runs, r.cov), (Some(5_568_355), Some(227)));
        assert_eq!(parse_output("#2\tINITED cov: 62 ft: 79\n").cov, Some(62));
        assert_eq!(parse_output("#2\tINITED exec/s: 0\n").cov, None);
    }

    /// Inputs given as files: each is announced, then executed; the last announced is the one
    /// that crashed.
    #[test]
    fn replayed_inputs() {
        let ok = "INFO: Running with entropic power schedule (0xFF, 100).\n\
                  Running: corpus/virtqueue_walk/loop\n\
                  Executed corpus/virtqueue_walk/loop in 0 ms\n\
                  Running: corpus/virtqueue_walk/regression-x\n\
                  Executed corpus/virtqueue_walk/regression-x in 1 ms\n\
                  ***\n*** NOTE: fuzzing was not performed, you have only\n";
        let r = parse_output(ok);
        assert_eq!((r.executed, r.last_running.as_deref()), (2, Some("corpus/virtqueue_walk/regression-x")));
        let crash = "Running: corpus/virtqueue_walk/loop\n\
                     Executed corpus/virtqueue_walk/loop in 0 ms\n\
                     Running: corpus/virtqueue_walk/regression-x\n\
                     thread '<unnamed>' panicked at fuzz_targets/virtqueue_walk.rs:49:13:\n\
                     ==1== ERROR: libFuzzer: deadly signal\n";
        let r = parse_output(crash);
        assert_eq!((r.executed, r.last_running.as_deref()), (1, Some("corpus/virtqueue_walk/regression-x")));
    }

    /// Every target's committed inputs are found, and the regression inputs of issue 12 are among
    /// those the smoke pass replays.
    #[test]
    fn committed_inputs_include_regressions() {
        for t in TARGETS {
            let files = committed_inputs(t).unwrap();
            assert!(!files.is_empty(), "{}", t.name);
            assert!(files.iter().all(|f| f.starts_with(Path::new("corpus").join(t.name))));
        }
        let files = committed_inputs(find("virtqueue_walk").unwrap()).unwrap();
        let names: Vec<_> = files.iter().filter_map(|f| f.file_name()?.to_str()).collect();
        assert!(names.iter().filter(|n| n.starts_with("regression-issue12-")).count() >= 2, "{names:?}");
    }

    #[test]
    fn noise_filter() {
        assert!(is_noise("#1234\tNEW    cov: 57 ft: 80 corp: 9/100b"));
        assert!(is_noise("#99\tREDUCE cov: 57 ft: 80"));
        assert!(is_noise("\tNEW_FUNC[1/2]: 0x55 in keel_vmconf::parse"));
        assert!(is_noise("###### Recommended dictionary. ######\n"));
        assert!(is_noise("\"\\377\\014\" # Uses: 29\n"));
        assert!(!is_noise("\"quoted\" text"));
        assert!(!is_noise("#262144\tpulse  cov: 57 ft: 80 corp: 9/100b exec/s: 87381"));
        assert!(!is_noise("#2\tINITED cov: 10"));
        assert!(is_noise("###### End of recommended dictionary. ######"));
        assert!(!is_noise("Done 2000 runs in 0 second(s)"));
        assert!(!is_noise("   Compiling keel-vmconf v0.1.0"));
    }
}
