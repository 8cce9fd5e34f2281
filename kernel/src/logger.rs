//! The `log` backend: one line per record on COM1. Info lines print bare (`virt: ...`), other
//! levels carry their name. The level comes from `log=` on the kernel command line.
//!
//! Does not: buffer (the ring buffer for vmd comes with the userland issue).

use log::{LevelFilter, Log, Metadata, Record};

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
            log::Level::Info => return crate::println!("{}", record.args()),
            log::Level::Error => "error",
            log::Level::Warn => "warn",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        crate::println!("{name}: {}", record.args());
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
