//! The `show`/`status` table, laid out byte for byte as vmctl(8) prints it.
//!
//! What it does: [`format_show`] writes vmctl's header and one row per VM with vmctl's printf
//! widths (`%5s %5s %5s %7s %7s %7s %12s %8s %s`), memory through [`fmt_scaled`], `-` for a
//! VM that is not running (no PID, TTY or current memory), the TTY without its `/dev/` path, and
//! the owner cut to 15 bytes as vmctl's `user[16]` buffer does.
//!
//! What it does not do: choose, sort or filter the rows (the caller passes the VMs to show, in
//! the order to show them), or name states (`state` is printed as given: vmctl uses `running`,
//! `paused`, `waiting`, `stopping`, `stopped`, `unknown`). Lines end in "\n"; the serial
//! writer turns that into CR LF.

use alloc::string::String;
use core::fmt::Write;

pub use keel_vmlimits::fmt_scaled;

/// The longest owner shown, in bytes (vmctl formats it into a 16-byte buffer).
const MAX_OWNER: usize = 15;

/// One VM in the `show` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRow {
    pub id: u32,
    /// The VM's process; `None` when the VM is not running.
    pub pid: Option<u32>,
    pub vcpus: u32,
    /// Configured memory, bytes.
    pub max_mem: u64,
    /// Memory in use, bytes (shown only while the VM runs).
    pub cur_mem: u64,
    /// The console's name, e.g. `ttyp8` (a leading path such as `/dev/` is dropped).
    pub tty: Option<String>,
    pub owner: String,
    pub state: String,
    pub name: String,
}

/// vmctl's header line, without the newline: its printf puts STATE right-aligned in 8 columns
/// and one space before NAME (`    STATE NAME`).
pub const SHOW_HEADER: &str = "   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    STATE NAME";

/// The `show` table: the header and one line per row, each ending in "\n".
pub fn format_show(rows: &[VmRow]) -> String {
    let mut out = String::new();
    out.push_str(SHOW_HEADER);
    out.push('\n');
    for row in rows {
        push_row(&mut out, row);
    }
    out
}

fn push_row(out: &mut String, row: &VmRow) {
    let running = row.pid.is_some();
    let pid = row.pid.map_or_else(|| String::from("-"), |p| alloc::format!("{p}"));
    let cur_mem = if running { fmt_scaled(row.cur_mem) } else { String::from("-") };
    let tty = match (&row.tty, running) {
        (Some(t), true) => tty_name(t),
        _ => "-",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:>5} {:>5} {:>5} {:>7} {:>7} {:>7} {:>12} {:>8} {}",
        row.id,
        pid,
        row.vcpus,
        fmt_scaled(row.max_mem),
        cur_mem,
        tty,
        truncate(&row.owner, MAX_OWNER),
        row.state,
        row.name
    );
}

/// The TTY without its directory, as vmctl shows it (`/dev/ttyp8` is `ttyp8`).
fn tty_name(tty: &str) -> &str {
    match tty.rsplit_once('/') {
        Some((_, last)) if !last.is_empty() => last,
        _ if tty.is_empty() => "-",
        _ => tty,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn faq_row() -> VmRow {
        VmRow {
            id: 1,
            pid: Some(72118),
            vcpus: 1,
            max_mem: 1 << 30,
            cur_mem: 92_379_545,
            tty: Some("/dev/ttyp8".into()),
            owner: "root".into(),
            state: "running".into(),
            name: "example".into(),
        }
    }

    #[test]
    fn header_matches_vmctl_printf() {
        let printf = alloc::format!(
            "{:>5} {:>5} {:>5} {:>7} {:>7} {:>7} {:>12} {:>8} {}",
            "ID",
            "PID",
            "VCPUS",
            "MAXMEM",
            "CURMEM",
            "TTY",
            "OWNER",
            "STATE",
            "NAME"
        );
        assert_eq!(SHOW_HEADER, printf);
        assert_eq!(format_show(&[]), alloc::format!("{SHOW_HEADER}\n"));
    }

    #[test]
    fn faq_row_byte_for_byte() {
        let table = format_show(&[faq_row()]);
        let row = table.lines().nth(1).unwrap();
        // The OpenBSD FAQ's line (from before vmctl grew the STATE column), with STATE added.
        let faq = "    1 72118     1    1.0G   88.1M   ttyp8         root example";
        let (before, after) = faq.split_at(faq.len() - "example".len());
        assert_eq!(row, alloc::format!("{before} running {after}"));
        assert_eq!(row, "    1 72118     1    1.0G   88.1M   ttyp8         root  running example");
    }

    #[test]
    fn stopped_vm_shows_dashes() {
        let row = VmRow {
            id: 2,
            pid: None,
            vcpus: 1,
            max_mem: 512 << 20,
            cur_mem: 12345,
            tty: Some("ttyp9".into()),
            owner: "root".into(),
            state: "stopped".into(),
            name: "web".into(),
        };
        let table = format_show(&[faq_row(), row]);
        assert_eq!(
            table,
            "   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    STATE NAME\n\
             \x20   1 72118     1    1.0G   88.1M   ttyp8         root  running example\n\
             \x20   2     -     1    512M       -       -         root  stopped web\n"
        );
    }

    #[test]
    fn running_without_tty_and_wide_values() {
        let row = VmRow {
            id: 4_000_000,
            pid: Some(1_234_567),
            vcpus: 64,
            max_mem: 0,
            cur_mem: 0,
            tty: None,
            owner: "a-very-long-owner-name".into(),
            state: "paused".into(),
            name: "n".into(),
        };
        let table = format_show(&[row]);
        // Wide values push the columns right, as printf does; the owner is cut to 15 bytes.
        assert_eq!(
            table.lines().nth(1).unwrap(),
            "4000000 1234567    64      0B      0B       - a-very-long-own   paused n"
        );
    }

    #[test]
    fn tty_names() {
        assert_eq!(tty_name("/dev/ttyp8"), "ttyp8");
        assert_eq!(tty_name("ttyp8"), "ttyp8");
        assert_eq!(tty_name("/dev/"), "/dev/");
        assert_eq!(tty_name(""), "-");
        assert_eq!(truncate("ééé", 5), "éé");
        assert_eq!(truncate("abc", 15), "abc");
    }

    #[test]
    fn many_rows() {
        let rows = vec![faq_row(); 10];
        assert_eq!(format_show(&rows).lines().count(), 11);
    }
}
