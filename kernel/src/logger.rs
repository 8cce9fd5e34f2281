//! The `log` backend: one line per record on COM1. Info lines print bare (`virt: ...`), other
//! levels carry their name. The level comes from `log=` on the kernel command line.
//!
//! Every record also goes to the kernel log ring (`klog`); once vmd claims the console, only there.

use core::fmt::Write;
use log::{LevelFilter, Log, Metadata, Record};

/// One formatted record, cut at 512 bytes (no heap: the logger works before the heap exists).
struct LineBuffer {
    buf: [u8; 512],
    len: usize,
}

impl Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() - 1 {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

struct SerialLogger;

static LOGGER: SerialLogger = SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let name = match record.level() {
            log::Level::Info => "",
            log::Level::Error => "error: ",
            log::Level::Warn => "warn: ",
            log::Level::Debug => "debug: ",
            log::Level::Trace => "trace: ",
        };
        let mut line = LineBuffer { buf: [0; 512], len: 0 };
        let _ = writeln!(line, "{name}{}", record.args());
        crate::klog::write(&line.buf[..line.len]);
        if crate::klog::serial_echo() {
            let bytes = &line.buf[..line.len];
            let text = core::str::from_utf8(bytes)
                .unwrap_or_else(|e| core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""));
            crate::serial::write_str(text);
        }
    }

    fn flush(&self) {}
}

/// Parse a `log=` value; `None` for an unknown level.
pub fn parse_level(value: &str) -> Option<LevelFilter> {
    match value {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

pub fn init(cmdline: &str) {
    let _ = log::set_logger(&LOGGER);
    let requested = keel_bootinfo::cmdline::value(cmdline, "log");
    let level = requested.and_then(parse_level).unwrap_or(LevelFilter::Info);
    log::set_max_level(level);
    if let Some(bad) = requested.filter(|v| parse_level(v).is_none()) {
        log::warn!("log={bad}: unknown level (use off, error, warn, info, debug or trace); using info");
    }
}
