//! `cargo xtask flash <device>`: write the boot image to a USB stick and verify it.
//!
//! Refuses, unless `--force`: a device that is mounted (or has a mounted partition), one the
//! kernel does not call removable, and a partition instead of a whole disk. Asks for confirmation
//! unless `--yes`. A regular file is accepted as the target (that is how the tests exercise it).
//! After writing it syncs and reads everything back to compare.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// What we know about a target, gathered from /sys and /proc/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file (existing or to be created).
    File,
    BlockDevice {
        name: String,
        partition: bool,
        removable: bool,
        mounted: Vec<String>,
        size: u64,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Mounted(Vec<String>),
    NotRemovable,
    Partition,
    TooSmall { need: u64, have: u64 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mounted(m) => write!(f, "it is mounted ({}); unmount it first", m.join(", ")),
            Self::NotRemovable => write!(f, "the kernel does not report it as removable; is it really the USB stick?"),
            Self::Partition => write!(f, "it is a partition; give the whole device (e.g. /dev/sdb, not /dev/sdb1)"),
            Self::TooSmall { need, have } => write!(f, "it holds {have} bytes but the image needs {need}"),
        }
    }
}

/// Reasons not to write; `--force` overrides all but a too-small device.
pub fn check(target: &Target, image_len: u64, force: bool) -> Result<(), Refusal> {
    let Target::BlockDevice { partition, removable, mounted, size, .. } = target else {
        return Ok(());
    };
    if *size < image_len {
        return Err(Refusal::TooSmall { need: image_len, have: *size });
    }
    if force {
        return Ok(());
    }
    if !mounted.is_empty() {
        return Err(Refusal::Mounted(mounted.clone()));
    }
    if *partition {
        return Err(Refusal::Partition);
    }
    if !removable {
        return Err(Refusal::NotRemovable);
    }
    Ok(())
}

/// Mount points whose source is `dev_name` or one of its partitions, from /proc/mounts text.
pub fn mounted_from(mounts: &str, dev_name: &str) -> Vec<String> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?, w.next()?))
        })
        .filter(|(src, _)| {
            src.strip_prefix("/dev/").is_some_and(|s| {
                s == dev_name
                    || (s.starts_with(dev_name)
                        && s[dev_name.len()..].trim_start_matches('p').chars().all(|c| c.is_ascii_digit()))
            })
        })
        .map(|(src, mnt)| format!("{src} on {mnt}"))
        .collect()
}

fn inspect(path: &Path) -> Result<Target, String> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if path.starts_with("/dev") {
                return Err(format!("{}: no such device", path.display()));
            }
            return Ok(Target::File);
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if meta.is_file() {
        return Ok(Target::File);
    }
    if !meta.file_type().is_block_device() {
        return Err(format!("{}: not a block device or regular file", path.display()));
    }
    let real = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = real.file_name().and_then(|n| n.to_str()).ok_or("bad device name")?.to_string();
    let sys = PathBuf::from("/sys/class/block").join(&name);
    let read = |f: &str| fs::read_to_string(sys.join(f)).unwrap_or_default();
    let partition = sys.join("partition").exists();
    let removable = read("removable").trim() == "1";
    let size = read("size").trim().parse::<u64>().unwrap_or(0) * 512;
    let mounted = mounted_from(&fs::read_to_string("/proc/mounts").unwrap_or_default(), &name);
    Ok(Target::BlockDevice { name, partition, removable, mounted, size })
}

pub fn command(args: &[String]) -> Result<(), String> {
    let mut yes = false;
    let mut force = false;
    let mut image: Option<PathBuf> = None;
    let mut target: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--yes" | "-y" => yes = true,
            "--force" => force = true,
            "--image" => image = Some(it.next().ok_or("--image needs a path")?.into()),
            s if s.starts_with('-') => return Err(format!("flash: unknown option '{s}'")),
            s if target.is_none() => target = Some(s.into()),
            s => return Err(format!("flash: one target only ('{s}' is extra)")),
        }
    }
    let target = target.ok_or("usage: cargo xtask flash <device|file> [--yes] [--force] [--image PATH]")?;
    let image = match image {
        Some(p) => p,
        None => {
            crate::setup::ensure(false)?;
            crate::kernel::image(crate::kernel::DEFAULT_CMDLINE, &[], crate::kernel::VmConf::User)?
        }
    };
    let image_len = fs::metadata(&image).map_err(|e| format!("{}: {e}", image.display()))?.len();
    let kind = inspect(&target)?;
    if let Err(refusal) = check(&kind, image_len, force) {
        let hint = if matches!(refusal, Refusal::TooSmall { .. }) { "" } else { " (--force to write anyway)" };
        return Err(format!("refusing to write {}: {refusal}{hint}", target.display()));
    }
    if !yes {
        eprint!(
            "flash: this overwrites everything on {} with {} ({:.1} MB). Type 'yes' to go on: ",
            target.display(),
            image.display(),
            image_len as f64 / 1e6
        );
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer).map_err(|e| e.to_string())?;
        if answer.trim() != "yes" {
            return Err("not confirmed; nothing written".into());
        }
    }
    write_and_verify(&image, &target, image_len, matches!(kind, Target::File))
}

fn write_and_verify(image: &Path, target: &Path, len: u64, is_file: bool) -> Result<(), String> {
    let err = |what: &str, e: io::Error| format!("{what} {}: {e}", target.display());
    let mut src = File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .read(true)
        .create(is_file)
        .truncate(is_file)
        .open(target)
        .map_err(|e| err("cannot open", e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut last_report = 0;
    while done < len {
        let n = src.read(&mut buf).map_err(|e| format!("{}: {e}", image.display()))?;
        if n == 0 {
            return Err(format!("{} shrank while being written", image.display()));
        }
        dst.write_all(&buf[..n]).map_err(|e| err("write failed on", e))?;
        done += n as u64;
        let percent = done * 100 / len;
        if percent >= last_report + 10 || done == len {
            eprintln!("flash: wrote {:.1} of {:.1} MB ({percent}%)", done as f64 / 1e6, len as f64 / 1e6);
            last_report = percent;
        }
    }
    dst.sync_all().map_err(|e| err("sync failed on", e))?;
    eprintln!("flash: verifying");
    src.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    dst.seek(SeekFrom::Start(0)).map_err(|e| err("cannot seek", e))?;
    let mut back = vec![0u8; 1 << 20];
    let mut checked = 0u64;
    while checked < len {
        let n = src.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        dst.read_exact(&mut back[..n]).map_err(|e| err("read-back failed on", e))?;
        if buf[..n] != back[..n] {
            let at = checked + buf[..n].iter().zip(&back[..n]).position(|(a, b)| a != b).unwrap_or(0) as u64;
            return Err(format!("verification failed: {} differs from the image at byte {at}", target.display()));
        }
        checked += n as u64;
    }
    eprintln!("flash: done: {} verified ({len} bytes); it boots by BIOS or UEFI", target.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(partition: bool, removable: bool, mounted: &[&str], size: u64) -> Target {
        let mounted = mounted.iter().map(|s| s.to_string()).collect();
        Target::BlockDevice { name: "sdb".into(), partition, removable, mounted, size }
    }

    #[test]
    fn accepts_files_and_removable_sticks() {
        assert_eq!(check(&Target::File, 20 << 20, false), Ok(()));
        assert_eq!(check(&device(false, true, &[], 8 << 30), 20 << 20, false), Ok(()));
    }

    #[test]
    fn refuses_unless_forced() {
        let mounted = device(false, true, &["/dev/sdb1 on /media/x"], 8 << 30);
        assert!(matches!(check(&mounted, 1, false), Err(Refusal::Mounted(_))));
        assert_eq!(check(&mounted, 1, true), Ok(()));
        let fixed = device(false, false, &[], 8 << 30);
        assert_eq!(check(&fixed, 1, false), Err(Refusal::NotRemovable));
        assert_eq!(check(&fixed, 1, true), Ok(()));
        let part = device(true, true, &[], 8 << 30);
        assert_eq!(check(&part, 1, false), Err(Refusal::Partition));
        let small = device(false, true, &[], 10);
        assert_eq!(check(&small, 100, true), Err(Refusal::TooSmall { need: 100, have: 10 }));
    }

    #[test]
    fn finds_mounted_partitions() {
        let mounts = "/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /media/stick vfat rw 0 0\n/dev/sdba1 /x ext4 rw 0 0\n\
                      /dev/nvme0n1p1 /boot vfat rw 0 0\nproc /proc proc rw 0 0\n";
        assert_eq!(mounted_from(mounts, "sdb"), vec!["/dev/sdb1 on /media/stick".to_string()]);
        assert_eq!(mounted_from(mounts, "nvme0n1"), vec!["/dev/nvme0n1p1 on /boot".to_string()]);
        assert!(mounted_from(mounts, "sdc").is_empty());
    }
}
