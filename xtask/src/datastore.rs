//! `cargo xtask datastore mkfs|put|get|ls`: make a datastore image and move files into and out
//! of it on the host, without mounting it, through the same file-system crate the storage
//! service uses (keel-datastore over a `keel_block::FileDisk`). Images are sparse files holding
//! one exFAT volume (FAT32 images are read and written too); `--offset BYTES` addresses a volume
//! inside a partition (the partition-table readers will find it; until then the caller says
//! where). It does not partition a disk or write to block devices other than image files.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use keel_block::FileDisk;
use keel_datastore::{mkfs_exfat, Volume};

const USAGE: &str = "\
usage: cargo xtask datastore mkfs IMAGE [--size 1G] [--label L] [--offset BYTES]
       cargo xtask datastore put IMAGE FILE... [--to DIR] [--offset BYTES]
       cargo xtask datastore get IMAGE PATH [OUT] [--offset BYTES]      (OUT '-' is stdout)
       cargo xtask datastore ls IMAGE [PATH] [--offset BYTES]";

/// Bytes moved per read or write.
const CHUNK: usize = 1 << 20;

/// Parse `1G`, `512M`, `64K` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is not a size (e.g. 1G, 512M)"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("'{text}': unknown unit '{unit}'")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{text}' is too large"))
}

/// The current time as a DOS timestamp (exFAT spec 7.4.8), UTC.
fn dos_now() -> u32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rest) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
    let (h, m, s) = ((rest / 3600) as u32, (rest / 60 % 60) as u32, (rest % 60) as u32);
    (year.saturating_sub(1980).min(127) << 25) | (month << 21) | (day << 16) | (h << 11) | (m << 5) | (s / 2)
}

struct Args {
    positional: Vec<String>,
    size: Option<u64>,
    label: String,
    offset: u64,
    to: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args { positional: Vec::new(), size: None, label: String::new(), offset: 0, to: "/".into() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--size" => out.size = Some(parse_size(&value()?)?),
            "--label" => out.label = value()?,
            "--offset" => out.offset = parse_size(&value()?)?,
            "--to" => out.to = value()?,
            s if s.starts_with("--") => return Err(format!("datastore: unknown option '{s}'\n{USAGE}")),
            _ => out.positional.push(a.clone()),
        }
    }
    Ok(out)
}

fn open_disk(image: &str, offset: u64, write: bool) -> Result<FileDisk, String> {
    let file = File::options().read(true).write(write).open(image).map_err(|e| format!("{image}: {e}"))?;
    FileDisk::new(file, offset, !write).map_err(|e| format!("{image}: {e}"))
}

fn mount(image: &str, offset: u64, write: bool) -> Result<Volume<FileDisk>, String> {
    let mut vol = Volume::mount(open_disk(image, offset, write)?).map_err(|e| format!("{image}: {e}"))?;
    if let Volume::Exfat(v) = &mut vol {
        v.set_timestamp(dos_now());
    }
    Ok(vol)
}

pub fn command(args: &[String]) -> Result<(), String> {
    let (verb, rest) = args.split_first().ok_or(USAGE)?;
    let a = parse(rest)?;
    let image = a.positional.first().ok_or(USAGE)?.clone();
    match verb.as_str() {
        "mkfs" => mkfs(&image, &a),
        "put" => put(&image, &a.positional[1..], &a.to, a.offset),
        "get" => get(&image, a.positional.get(1).ok_or(USAGE)?, a.positional.get(2).map(String::as_str), a.offset),
        "ls" => ls(&image, a.positional.get(1).map_or("/", String::as_str), a.offset),
        other => Err(format!("datastore: unknown verb '{other}'\n{USAGE}")),
    }
}

fn mkfs(image: &str, a: &Args) -> Result<(), String> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(image)
        .map_err(|e| format!("{image}: {e}"))?;
    if let Some(size) = a.size {
        // Sparse: set_len allocates nothing.
        file.set_len(a.offset + size).map_err(|e| format!("{image}: {e}"))?;
    }
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len <= a.offset {
        return Err(format!("{image} is empty: give --size"));
    }
    drop(file);
    let serial = dos_now() ^ std::process::id().rotate_left(16);
    mkfs_exfat(open_disk(image, a.offset, true)?, &a.label, serial).map_err(|e| format!("{image}: {e}"))?;
    let vol = mount(image, a.offset, false)?;
    let (total, free) = vol.space();
    println!("{image}: exFAT, label '{}', {} MiB, {} MiB free", vol.label(), total >> 20, free >> 20);
    Ok(())
}

/// Make every directory of `dir` that is missing.
fn make_dirs(vol: &mut Volume<FileDisk>, dir: &str) -> Result<(), String> {
    let mut path = String::new();
    for name in dir.split('/').filter(|n| !n.is_empty()) {
        path = format!("{path}/{name}");
        match vol.stat(&path) {
            Ok(m) if m.is_dir => {}
            Ok(_) => return Err(format!("{path}: not a directory")),
            Err(keel_datastore::Error::NotFound) => vol.mkdir(&path).map_err(|e| format!("{path}: {e}"))?,
            Err(e) => return Err(format!("{path}: {e}")),
        }
    }
    Ok(())
}

fn put(image: &str, files: &[String], to: &str, offset: u64) -> Result<(), String> {
    if files.is_empty() {
        return Err(USAGE.into());
    }
    let mut vol = mount(image, offset, true)?;
    make_dirs(&mut vol, to)?;
    for host in files {
        let name =
            Path::new(host).file_name().and_then(|n| n.to_str()).ok_or_else(|| format!("{host}: no file name"))?;
        let path = format!("{}/{name}", to.trim_end_matches('/'));
        let mut src = File::open(host).map_err(|e| format!("{host}: {e}"))?;
        let mut file = match vol.create(&path) {
            Ok(f) => f,
            Err(keel_datastore::Error::AlreadyExists) => {
                let mut f = vol.open(&path).map_err(|e| format!("{path}: {e}"))?;
                vol.truncate(&mut f, 0).map_err(|e| format!("{path}: {e}"))?;
                f
            }
            Err(e) => return Err(format!("{path}: {e}")),
        };
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0u64;
        loop {
            let n = src.read(&mut buf).map_err(|e| format!("{host}: {e}"))?;
            if n == 0 {
                break;
            }
            vol.write(&mut file, at, &buf[..n]).map_err(|e| format!("{path}: {e}"))?;
            at += n as u64;
        }
        println!("{host} -> {path} ({at} bytes)");
    }
    vol.flush().map_err(|e| format!("{image}: {e}"))
}

fn get(image: &str, path: &str, out: Option<&str>, offset: u64) -> Result<(), String> {
    let mut vol = mount(image, offset, false)?;
    let file = vol.open(path).map_err(|e| format!("{path}: {e}"))?;
    let default = path.rsplit('/').next().unwrap_or("out").to_string();
    let out = out.unwrap_or(&default);
    let mut sink: Box<dyn Write> = if out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(out).map_err(|e| format!("{out}: {e}"))?)
    };
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    loop {
        let n = vol.read(&file, at, &mut buf).map_err(|e| format!("{path}: {e}"))?;
        if n == 0 {
            break;
        }
        sink.write_all(&buf[..n]).map_err(|e| format!("{out}: {e}"))?;
        at += n as u64;
    }
    sink.flush().map_err(|e| format!("{out}: {e}"))?;
    if out != "-" {
        eprintln!("{path} -> {out} ({at} bytes)");
    }
    Ok(())
}

fn ls(image: &str, path: &str, offset: u64) -> Result<(), String> {
    let mut vol = mount(image, offset, false)?;
    let meta = vol.stat(path).map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_dir {
        println!("{:>14}  {path}", meta.len);
        return Ok(());
    }
    for entry in vol.list(path).map_err(|e| format!("{path}: {e}"))? {
        let kind = if entry.metadata.is_dir { "<dir>".to_string() } else { entry.metadata.len.to_string() };
        println!("{kind:>14}  {}{}", entry.name, if entry.metadata.is_dir { "/" } else { "" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn mkfs_put_get_ls_round_trip() {
        let dir = std::env::temp_dir().join(format!("keel-xtask-datastore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("ds.img");
        let image = image.to_str().unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        command(&s(&["mkfs", image, "--size", "64M", "--label", "KEEL", "--offset", "1M"])).unwrap();
        let src = dir.join("kernel.bin");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        command(&s(&["put", image, src.to_str().unwrap(), "--to", "/boot/linux", "--offset", "1M"])).unwrap();
        let out = dir.join("back.bin");
        command(&s(&["get", image, "/boot/linux/kernel.bin", out.to_str().unwrap(), "--offset", "1048576"])).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data);
        command(&s(&["ls", image, "/boot/linux", "--offset", "1M"])).unwrap();
        assert!(command(&s(&["ls", image, "/nope", "--offset", "1M"])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
