//! System-test harness: boots the real image in QEMU or Bochs, reads the serial console as it
//! arrives, waits for marker lines under a timeout, types commands, and on failure reports the
//! tail of the serial log.
//!
//! Paths come from `cargo xtask test` (KEEL_ISO, KEEL_KERNEL, KEEL_XTASK); run the tests through
//! it. Each test gets its own scratch directory under target/systest/.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use keel_image::qemu::{Firmware, Media, QemuSpec};

/// The markers every successful boot prints.
pub const PROMPT: &str = "keel> ";
pub const AMD_VIRT_LINE: &str = "virt: AMD SVM with nested paging (NPT), ASIDs: 16, 2 CPUs";

fn env_path(var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run the system tests with `cargo xtask test`"))
}

pub fn iso() -> PathBuf {
    env_path("KEEL_ISO")
}

pub fn kernel() -> PathBuf {
    env_path("KEEL_KERNEL")
}

pub fn xtask() -> PathBuf {
    env_path("KEEL_XTASK")
}

/// Run `cargo xtask datastore ARGS...` (the host's tool for datastore images).
pub fn datastore(args: &[&str]) {
    let status = std::process::Command::new(xtask()).arg("datastore").args(args).status().unwrap();
    assert!(status.success(), "xtask datastore {args:?} failed");
}

/// A datastore file's bytes, taken out of datastore image `image` on the host (through `dir`).
pub fn datastore_get(dir: &Path, image: &Path, path: &str) -> Vec<u8> {
    let out = dir.join("got");
    let _ = std::fs::remove_file(&out);
    datastore(&["get", image.to_str().unwrap(), path, out.to_str().unwrap()]);
    std::fs::read(&out).unwrap()
}

/// Where xtask put the user programs (vmd, crashtest).
pub fn user_dir() -> PathBuf {
    env_path("KEEL_USER_DIR")
}

/// The ring-3 programs every image carries.
pub const USER_PROGRAMS: &[&str] = &[
    "vmd",
    "monitor",
    "crashtest",
    "selftest",
    "hello",
    "cpuid",
    "memtest",
    "mmio",
    "irq",
    "fault",
    "hello32",
    "fw16",
    "bench",
    "spinner",
    "hostile",
    "hostile_io",
];

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/systest").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Build an image variant: another kernel command line, a vm.conf, and extra text files as boot
/// modules (name, contents).
pub fn image_with(test: &str, cmdline: &str, vm_conf: &str, extra: &[(&str, &str)]) -> PathBuf {
    build_variant(test, cmdline, USER_PROGRAMS, vm_conf, extra)
}

/// An image variant without the program `left_out` (e.g. "vmd"), with an empty vm.conf.
pub fn image_without(test: &str, cmdline: &str, left_out: &str) -> PathBuf {
    let programs: Vec<&str> = USER_PROGRAMS.iter().copied().filter(|p| *p != left_out).collect();
    build_variant(test, cmdline, &programs, "", &[])
}

fn build_variant(test: &str, cmdline: &str, programs: &[&str], vm_conf: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = scratch(test);
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut modules: Vec<keel_image::ModuleFile> =
        programs.iter().map(|p| keel_image::ModuleFile { source: user_dir().join(p), name: p.to_string() }).collect();
    for (name, text) in std::iter::once(&("vm.conf", vm_conf)).chain(extra) {
        std::fs::write(files.join(name), text).unwrap();
        modules.push(keel_image::ModuleFile { source: files.join(name), name: name.to_string() });
    }
    let output = dir.join("keel.iso");
    keel_image::build(&keel_image::ImageSpec {
        kernel: kernel(),
        cmdline: cmdline.into(),
        modules,
        staging: dir.join("root"),
        output: output.clone(),
    })
    .expect("build image variant");
    output
}

/// An image variant with another kernel command line (and an empty vm.conf).
pub fn image_with_cmdline(test: &str, cmdline: &str) -> PathBuf {
    image_with(test, cmdline, "", &[])
}

/// Serial output collected by a reader thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn spawn_reader(&self, mut source: impl Read + Send + 'static) {
        let log = self.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = source.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.0.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
}

/// A running machine (QEMU or Bochs) with its serial console.
pub struct Machine {
    name: String,
    child: Child,
    input: Box<dyn Write + Send>,
    log: Log,
    /// Where in the log the next `expect` starts looking.
    cursor: usize,
}

impl Machine {
    /// Boot QEMU with the serial port on its stdio.
    pub fn qemu(name: &str, spec: &QemuSpec) -> Machine {
        let args = keel_image::qemu::args(spec);
        eprintln!("[{name}] qemu-system-x86_64 {}", args.join(" "));
        let mut child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64 (cargo xtask test installs it)");
        let log = Log::default();
        log.spawn_reader(child.stdout.take().unwrap());
        log.spawn_reader(child.stderr.take().unwrap());
        let stdin: ChildStdin = child.stdin.take().unwrap();
        Machine { name: name.into(), child, input: Box::new(stdin), log, cursor: 0 }
    }

    /// Boot Bochs with COM1 on a loopback socket (live output, and input).
    pub fn bochs(name: &str, iso: &Path, cpu_model: &str) -> Machine {
        Self::bochs_with_memory(name, iso, cpu_model, 256)
    }

    /// Bochs with `megs` MiB of memory (a Linux guest inside Keel needs more than the default).
    pub fn bochs_with_memory(name: &str, iso: &Path, cpu_model: &str, megs: u32) -> Machine {
        let dir = scratch(name);
        let port = free_port();
        let com1 = keel_image::bochs::Com1::Socket(port);
        let rc = keel_image::bochs::bochsrc_with_memory(iso, cpu_model, com1, &dir.join("bochs.log"), megs);
        std::fs::write(dir.join("bochsrc"), rc).unwrap();
        std::fs::write(dir.join("continue"), "c\n").unwrap();
        eprintln!("[{name}] bochs -q -f bochsrc (COM1 on localhost:{port})");
        let child = Command::new("bochs")
            .args(["-q", "-f", "bochsrc", "-rc", "continue"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bochs (cargo xtask test installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("[{name}] cannot connect to Bochs's COM1 on port {port}: {e}"),
            }
        };
        let log = Log::default();
        log.spawn_reader(stream.try_clone().unwrap());
        Machine { name: name.into(), child, input: Box::new(stream), log, cursor: 0 }
    }

    /// Everything the machine printed so far.
    pub fn output(&self) -> String {
        self.log.text()
    }

    fn fail(&mut self, what: &str) -> ! {
        // Drop carriage returns and the erase-line escape so the tail reads as plain lines.
        let text = self.output().replace("\x1b[K", "").replace('\r', "");
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let _ = self.child.kill();
        panic!("[{}] {what}\n--- last 40 lines of the serial log ---\n{}\n---", self.name, tail.join("\n"));
    }

    /// Wait until `needle` appears after the previous match; fail after `timeout`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.output();
            if let Some(pos) = text.get(self.cursor..).and_then(|t| t.find(needle)) {
                self.cursor += pos + needle.len();
                eprintln!("[{}] saw {needle:?}", self.name);
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("exited ({status}) before printing {needle:?}"));
            }
            if Instant::now() > deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for {needle:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until every one of `needles` has appeared after the current position, in any order;
    /// the position then moves past the last of them.
    pub fn expect_all(&mut self, needles: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.output();
            let rest = text.get(self.cursor..).unwrap_or("");
            let found: Vec<Option<usize>> = needles.iter().map(|n| rest.find(n).map(|p| p + n.len())).collect();
            if found.iter().all(Option::is_some) {
                self.cursor += found.into_iter().flatten().max().unwrap_or(0);
                eprintln!("[{}] saw all of {needles:?}", self.name);
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("exited ({status}) before printing all of {needles:?}"));
            }
            if Instant::now() > deadline {
                self.fail(&format!("timed out after {timeout:?} waiting for all of {needles:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type a line at the prompt (as a terminal would: CR at the end).
    pub fn send_line(&mut self, line: &str) {
        let bytes = format!("{line}\r");
        if let Err(e) = self.input.write_all(bytes.as_bytes()).and_then(|_| self.input.flush()) {
            self.fail(&format!("cannot type {line:?}: {e}"));
        }
    }

    /// Type bytes without a line end.
    pub fn send_raw(&mut self, text: &str) {
        if let Err(e) = self.input.write_all(text.as_bytes()).and_then(|_| self.input.flush()) {
            self.fail(&format!("cannot type {text:?}: {e}"));
        }
    }

    /// Run a prompt command and wait for `reply` in its answer, then for the next prompt.
    pub fn command(&mut self, line: &str, reply: &str) {
        self.send_line(line);
        self.expect(reply, Duration::from_secs(30));
        self.expect(PROMPT, Duration::from_secs(30));
    }

    /// Type `line` at the shell and return what it printed between the echo of the line and the
    /// next prompt (an older prompt, reprinted after a log line, cannot be mistaken for it).
    pub fn answer(&mut self, line: &str) -> String {
        self.send_line(line);
        self.expect(line, Duration::from_secs(30));
        let start = self.cursor;
        self.expect(PROMPT, Duration::from_secs(30));
        let end = self.cursor - PROMPT.len();
        self.output().get(start..end).unwrap_or("").to_string()
    }

    /// Ask `show NAME` until the VM shows `state` (monitors act on requests asynchronously).
    pub fn wait_state(&mut self, name: &str, state: &str, timeout: Duration) {
        let want = format!("{state} {name}");
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.answer(&format!("show {name}"));
            if answer.contains(&want) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("{name} never showed as {state}; the last answer:\n{answer}"));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Wait for the machine to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                self.fail(&format!("did not exit within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// The spec for a default test boot: `-cpu max -smp 2`, serial on stdio.
pub fn spec(firmware: Firmware, media: Media) -> QemuSpec {
    QemuSpec::new(firmware, media)
}

/// UEFI firmware with a private variable store in `dir`.
pub fn uefi(dir: &Path) -> Firmware {
    Firmware::Uefi { vars: keel_image::qemu::fresh_uefi_vars(&dir.join("OVMF_VARS.fd")).expect("OVMF vars") }
}

/// Boot-to-prompt timeouts: BIOS boots in seconds, UEFI firmware takes longer (shared/TESTBED.md),
/// and two tests run at once on two cores.
pub const BIOS_BOOT: Duration = Duration::from_secs(60);
pub const UEFI_BOOT: Duration = Duration::from_secs(120);
