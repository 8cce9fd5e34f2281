//! A QEMU whose serial port is this program's pipe, for the benchmarks: its output is read by a
//! thread as it arrives; `expect` waits for text with a timeout and says, when it fails, the tail
//! of what the machine printed.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// vmd's prompt.
pub const PROMPT: &str = "keel> ";
/// How long a shell command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A QEMU with its serial port on stdin/stdout, read by a thread as it arrives.
pub struct Serial {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    cursor: usize,
}

impl Serial {
    pub fn start(name: &'static str, cmd: &mut Command) -> Result<Serial, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().expect("piped");
        let sink = log.clone();
        // KEEL_BENCH_TEE=1 shows the machine's output as it comes (for working on a benchmark).
        let tee = std::env::var_os("KEEL_BENCH_TEE").is_some();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if tee {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                sink.lock().expect("log lock").extend_from_slice(&buf[..n]);
            }
        });
        Ok(Serial { name, child, log, cursor: 0 })
    }

    /// Everything printed so far, as it came (the cursor indexes it).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().expect("log lock")).into_owned()
    }

    /// Wait until the first of `needles` appears after the cursor; return the text up to its
    /// end and move the cursor there.
    pub fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            let rest = text.get(self.cursor..).unwrap_or("");
            if let Some(end) = needles.iter().filter_map(|n| rest.find(n).map(|p| p + n.len())).min() {
                let seen = rest[..end].to_string();
                self.cursor += end;
                return Ok(seen);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(&format!("exited ({status}) before printing {needles:?}")));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!("timed out after {timeout:?} waiting for {needles:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        self.expect_any(&[needle], timeout)
    }

    /// The whole line that starts with `prefix` (after the cursor), once it has ended.
    pub fn line_starting(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        self.expect(prefix, timeout)?;
        let rest = self.expect("\n", COMMAND_TIMEOUT)?;
        Ok(format!("{prefix}{}", rest.trim_end()))
    }

    /// Type a command at the prompt; return what it printed up to the next prompt.
    pub fn command(&mut self, line: &str) -> Result<String, String> {
        self.send_line(line);
        self.expect(PROMPT, COMMAND_TIMEOUT)
    }

    pub fn send_line(&mut self, line: &str) {
        self.send_raw(&format!("{line}\r"));
    }

    pub fn send_raw(&mut self, text: &str) {
        if let Some(input) = self.child.stdin.as_mut() {
            let _ = input.write_all(text.as_bytes()).and_then(|_| input.flush());
        }
    }

    pub fn failure(&self, what: &str) -> String {
        let text = self.text().replace("\x1b[K", "").replace('\r', "");
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("bench: [{}] {what}\n--- last 30 lines of its serial output ---\n{}", self.name, tail.join("\n"))
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
