//! Parses one shell line into a [`Command`], with vmctl(8)'s verbs, flags and checks.
//!
//! What it does: skips an optional leading `vmctl` (so `vmctl show` works as typed in the
//! OpenBSD FAQ), splits the line into words ([`crate::words`]), resolves the verb (vmctl verbs
//! may be abbreviated, see [`crate::verbs`]), parses flags getopt-style (`-fw` is `-f -w`,
//! `-m1G` and `-m 1G` are the same, `--` ends the flags) and checks the arguments the way
//! vmctl does before it talks to vmd: VM names, ids, sizes, counts and limits. The rules for
//! names, sizes and limits are keel-vmlimits', the same vm.conf follows. Errors name the verb
//! and carry its usage, as vmctl prints them.
//!
//! What it does not do: look anything up (whether a VM, file, switch or process exists is for
//! vmd to say), or run the command. One difference from vmctl: flags may also follow the VM
//! name (`stop web -f`), as in vmctl's older synopsis, since getopt's stop at the first operand
//! only gets in the way at an interactive prompt.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use keel_vmlimits::{
    check_path, check_switch_name, check_vm_name, parse_disk_size, parse_memory, MAX_DISKS_PER_VM, MAX_NICS_PER_VM,
};

use crate::verbs::{lookup, usage, Lookup, Origin, Verb};
use crate::words::split_words;

/// The longest error message kept from a typed word, in characters.
const MAX_QUOTED: usize = 40;

/// Which VM a command is about: vmctl takes a numeric id or a name wherever it says `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A VM's number (never 0).
    Id(u32),
    /// A VM's name, as [`keel_vmlimits::check_vm_name`] allows it (`web`, `vm-1.example`).
    Name(String),
    /// Every VM (`stop -a`).
    All,
}

/// What `reset` resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetWhat {
    /// The running state (the default).
    All,
    /// The virtual switches.
    Switches,
    /// Reset and terminate all VMs.
    Vms,
}

/// Where `start -B` boots from this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    Disk,
    Cdrom,
    Net,
}

/// The arguments of `start`, as vmctl(8)'s `start` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartArgs {
    /// The VM: the id or name of a configured VM, or the name of a new one (never [`Target::All`]).
    pub name: Target,
    /// `-m size`: memory in bytes, as [`keel_vmlimits::parse_memory`] reads it (rounded down to a
    /// whole MiB, within its bounds). vmd's default is [`keel_vmlimits::DEFAULT_MEMORY`].
    pub memory: Option<u64>,
    /// `-b path`: the kernel or BIOS image to boot.
    pub boot: Option<String>,
    /// `-B device`: boot from this device this time.
    pub boot_device: Option<BootDevice>,
    /// `-d disk`, repeatable (at most [`MAX_DISKS_PER_VM`]); a path, maybe prefixed `raw:` or `qcow2:`.
    pub disks: Vec<String>,
    /// `-r path`: the ISO image for the virtual CD-ROM.
    pub cdrom: Option<String>,
    /// `-i count`: how many network interfaces (1 or more).
    pub interfaces: Option<u32>,
    /// `-n switch`, repeatable: one interface attached to each named switch, in order.
    pub switches: Vec<String>,
    /// `-t name`: the VM to use as a template.
    pub template: Option<String>,
    /// `-c`: attach to the console once the VM has started.
    pub console: bool,
    /// `-L`: add a local interface (vmd assigns addresses and serves DHCP).
    pub local_interface: bool,
}

impl StartArgs {
    /// `start name` with no options.
    pub fn new(name: Target) -> Self {
        Self {
            name,
            memory: None,
            boot: None,
            boot_device: None,
            disks: Vec::new(),
            cdrom: None,
            interfaces: None,
            switches: Vec::new(),
            template: None,
            console: false,
            local_interface: false,
        }
    }

    /// How many network interfaces the VM gets, as vmctl counts them: at least `-i count`, and
    /// at least one for each `-n` and `-L` (those come first; the rest attach to no switch).
    pub fn interface_count(&self) -> u32 {
        let attached =
            u32::try_from(self.switches.len()).unwrap_or(u32::MAX).saturating_add(u32::from(self.local_interface));
        self.interfaces.unwrap_or(0).max(attached)
    }
}

/// A parsed shell line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A blank line.
    Empty,
    Start(StartArgs),
    /// `stop [-fw] [id | -a]`.
    Stop {
        target: Target,
        force: bool,
        wait: bool,
    },
    /// `show [id]` and `status [id]`.
    Show(Option<Target>),
    Console(Target),
    Pause(Target),
    Unpause(Target),
    Wait(Target),
    Reset(ResetWhat),
    /// `load filename`.
    Load(String),
    Reload,
    /// `log brief` (false) or `log verbose` (true).
    Log {
        verbose: bool,
    },
    Dmesg,
    /// `help` or `help VERB` (the verb's full name).
    Help(Option<&'static str>),
    Version,
    Cpus,
    Mem,
    /// `stats`: exact counters for benchmarks (boot TSC, free bytes, heap use, running VMs).
    Stats,
    Reboot,
    /// `disks`: the disks, partitions and datastores the storage service found.
    Disks,
    /// `ls [path]`: a directory of the datastore.
    Ls(Option<String>),
    /// `newfs [-f] disk`: make a disk or partition a datastore (after a confirmation).
    Newfs {
        disk: String,
        force: bool,
    },
    /// `spawn [-s] PROGRAM` (debugging): start a boot-module program as a process; with `-s`,
    /// give it a channel to the storage service (every file of the datastore).
    Spawn {
        program: String,
        storage: bool,
    },
    /// `kill PID` (debugging).
    Kill(u32),
    /// `create [-b base | -i disk] [-s size] path`: a new disk image on the datastore, raw or
    /// qcow2 by the name (vmctl(8)); `-b`: a qcow2 overlay on `base`; `-i`: a copy of `disk`.
    Create {
        path: String,
        size: Option<u64>,
        base: Option<String>,
        input: Option<String>,
    },
}

/// Why a line is not a command. Displays as one line of error and, for a known verb, a
/// newline and the verb's usage (`stop: -a and a VM name are exclusive\nusage: stop [-fw] [id | -a]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    verb: Option<&'static str>,
    message: String,
}

impl ParseError {
    fn general(message: String) -> Self {
        Self { verb: None, message }
    }

    fn verb(verb: &'static str, message: impl Into<String>) -> Self {
        Self { verb: Some(verb), message: message.into() }
    }

    /// The verb the error is about (its full name), if the verb was recognized.
    pub fn command(&self) -> Option<&'static str> {
        self.verb
    }

    /// The error without the verb and usage.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The usage of the verb, if the verb was recognized.
    pub fn usage(&self) -> Option<&'static str> {
        self.verb.and_then(usage)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verb {
            Some(verb) => {
                write!(f, "{verb}: {}", self.message)?;
                match usage(verb) {
                    Some(u) => write!(f, "\n{u}"),
                    None => Ok(()),
                }
            }
            None => f.write_str(&self.message),
        }
    }
}

/// Show a typed word in a message: printable ASCII only, and not too long.
fn quoted(word: &str) -> String {
    let mut s: String =
        word.chars().take(MAX_QUOTED).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if word.chars().count() > MAX_QUOTED {
        s.push_str("...");
    }
    s
}

/// Parse one line. See the module documentation.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let words = split_words(line).map_err(|e| ParseError::general(e.to_string()))?;
    let mut words = words.as_slice();
    if words.first().is_some_and(|w| w == "vmctl") {
        words = &words[1..];
        if words.is_empty() {
            // Plain `vmctl` prints its usage; the nearest thing here is the command list.
            return Ok(Command::Help(None));
        }
    }
    let Some((first, args)) = words.split_first() else {
        return Ok(Command::Empty);
    };
    let verb = match lookup(first) {
        Lookup::Found(v) => v,
        Lookup::Unknown => return Err(ParseError::general(format!("unknown command '{}' (try help)", quoted(first)))),
        Lookup::Ambiguous(names) => {
            return Err(ParseError::general(format!(
                "ambiguous command '{}': {} (try help)",
                quoted(first),
                names.join(", ")
            )))
        }
    };
    if verb.origin == Origin::VmctlUnsupported {
        return Err(ParseError::general(format!("{}: not supported on Keel (try help)", verb.name)));
    }
    parse_verb(verb, args)
}

fn parse_verb(verb: &'static Verb, args: &[String]) -> Result<Command, ParseError> {
    let name = verb.name;
    Ok(match name {
        "start" => Command::Start(parse_start(args)?),
        "stop" => parse_stop(args)?,
        "show" | "status" => {
            let ops = Options::parse(name, args, "")?;
            ops.at_most(1)?;
            Command::Show(ops.operands.first().map(|w| parse_target(name, w)).transpose()?)
        }
        "console" => Command::Console(one_target(name, args)?),
        "pause" => Command::Pause(one_target(name, args)?),
        "unpause" => Command::Unpause(one_target(name, args)?),
        "wait" => Command::Wait(one_target(name, args)?),
        "reset" => {
            let ops = Options::parse(name, args, "")?;
            ops.at_most(1)?;
            Command::Reset(match ops.operands.first().map(|w| w.to_ascii_lowercase()).as_deref() {
                None | Some("all") => ResetWhat::All,
                Some("switches") => ResetWhat::Switches,
                Some("vms") => ResetWhat::Vms,
                Some(_) => return Err(ParseError::verb(name, "expected all, switches or vms")),
            })
        }
        "load" => Command::Load(one_operand(name, args, "missing file name")?),
        "log" => {
            let word = one_operand(name, args, "missing brief or verbose")?.to_ascii_lowercase();
            // vmctl accepts any prefix: `log v`.
            if !word.is_empty() && "brief".starts_with(&word) {
                Command::Log { verbose: false }
            } else if !word.is_empty() && "verbose".starts_with(&word) {
                Command::Log { verbose: true }
            } else {
                return Err(ParseError::verb(name, "expected brief or verbose"));
            }
        }
        "help" => {
            let ops = Options::parse(name, args, "")?;
            ops.at_most(1)?;
            match ops.operands.first() {
                None => Command::Help(None),
                Some(word) => match lookup(word) {
                    Lookup::Found(v) => Command::Help(Some(v.name)),
                    Lookup::Ambiguous(names) => {
                        return Err(ParseError::verb(
                            name,
                            format!("ambiguous command '{}': {}", quoted(word), names.join(", ")),
                        ))
                    }
                    Lookup::Unknown => {
                        return Err(ParseError::verb(name, format!("unknown command '{}'", quoted(word))))
                    }
                },
            }
        }
        "spawn" => {
            let ops = Options::parse(name, args, "s")?;
            let program = String::from(ops.one("missing program name")?);
            Command::Spawn { program, storage: ops.flags.iter().any(|(c, _)| *c == 's') }
        }
        "newfs" => {
            let ops = Options::parse(name, args, "f")?;
            let disk = String::from(ops.one("missing disk (see disks)")?);
            Command::Newfs { disk, force: ops.flags.iter().any(|(c, _)| *c == 'f') }
        }
        "create" => parse_create(args)?,
        "ls" => {
            let ops = Options::parse(name, args, "")?;
            ops.at_most(1)?;
            Command::Ls(ops.operands.first().map(|p| String::from(*p)))
        }
        "kill" => {
            let word = one_operand(name, args, "missing process id")?;
            match parse_number(&word) {
                Some(pid) => Command::Kill(pid),
                None => return Err(ParseError::verb(name, format!("invalid pid: {}", quoted(&word)))),
            }
        }
        _ => {
            let ops = Options::parse(name, args, "")?;
            ops.at_most(0)?;
            match name {
                "reload" => Command::Reload,
                "dmesg" => Command::Dmesg,
                "version" => Command::Version,
                "cpus" => Command::Cpus,
                "mem" => Command::Mem,
                "stats" => Command::Stats,
                "reboot" => Command::Reboot,
                "disks" => Command::Disks,
                // Every verb in the table is handled above; an unexpected one is still no panic.
                _ => return Err(ParseError::general(format!("{name}: not supported on Keel (try help)"))),
            }
        }
    })
}

/// A getopt-style reading of a verb's arguments.
struct Options<'a> {
    verb: &'static str,
    /// Flags and options in the order given, with their argument if they take one.
    flags: Vec<(char, Option<&'a str>)>,
    /// The words that are not flags.
    operands: Vec<&'a str>,
}

impl<'a> Options<'a> {
    /// Read `args` against a getopt(3) spec such as `"b:B:cd:"` (a letter followed by `:` takes
    /// an argument). Flags may come before or after operands; `--` ends the flags; `-` alone is
    /// an operand.
    fn parse(verb: &'static str, args: &'a [String], spec: &str) -> Result<Self, ParseError> {
        let mut ops = Self { verb, flags: Vec::new(), operands: Vec::new() };
        let mut words = args.iter();
        while let Some(word) = words.next() {
            if word == "--" {
                ops.operands.extend(words.map(String::as_str));
                break;
            }
            let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) else {
                ops.operands.push(word);
                continue;
            };
            for (i, c) in cluster.char_indices() {
                let takes_arg = match spec.find(c) {
                    Some(at) if c != ':' => spec[at + c.len_utf8()..].starts_with(':'),
                    _ => return Err(ParseError::verb(verb, format!("unknown option -{}", quoted(&c.to_string())))),
                };
                if !takes_arg {
                    ops.flags.push((c, None));
                    continue;
                }
                let rest = &cluster[i + c.len_utf8()..];
                let value = if rest.is_empty() {
                    words
                        .next()
                        .map(String::as_str)
                        .ok_or_else(|| ParseError::verb(verb, format!("option -{c} needs an argument")))?
                } else {
                    rest
                };
                ops.flags.push((c, Some(value)));
                break;
            }
        }
        Ok(ops)
    }

    fn at_most(&self, n: usize) -> Result<(), ParseError> {
        if self.operands.len() > n {
            return Err(ParseError::verb(self.verb, "too many arguments"));
        }
        Ok(())
    }

    /// The single operand, or `missing` as the error.
    fn one(&self, missing: &str) -> Result<&'a str, ParseError> {
        self.at_most(1)?;
        self.operands.first().copied().ok_or_else(|| ParseError::verb(self.verb, missing))
    }
}

fn one_operand(verb: &'static str, args: &[String], missing: &str) -> Result<String, ParseError> {
    Options::parse(verb, args, "")?.one(missing).map(String::from)
}

fn one_target(verb: &'static str, args: &[String]) -> Result<Target, ParseError> {
    let ops = Options::parse(verb, args, "")?;
    parse_target(verb, ops.one("missing VM id or name")?)
}

/// A decimal number that fits a `u32` (digits only: no sign, no blanks).
fn parse_number(word: &str) -> Option<u32> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok()
}

/// A typed word in single quotes for a message (see [`quoted`]).
fn shown(word: &str) -> String {
    format!("'{}'", quoted(word))
}

/// A VM id or name, as vmctl's `parse_vmid`: all digits is an id, anything else a name.
fn parse_target(verb: &'static str, word: &str) -> Result<Target, ParseError> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        return match parse_number(word) {
            Some(id) if id != 0 => Ok(Target::Id(id)),
            _ => Err(ParseError::verb(verb, format!("invalid id: {}", quoted(word)))),
        };
    }
    check_vm_name(word).map_err(|e| ParseError::verb(verb, e.message("VM name", &shown(word))))?;
    Ok(Target::Name(word.into()))
}

fn parse_stop(args: &[String]) -> Result<Command, ParseError> {
    const VERB: &str = "stop";
    let ops = Options::parse(VERB, args, "afw")?;
    let has = |f: char| ops.flags.iter().any(|&(c, _)| c == f);
    let (all, force, wait) = (has('a'), has('f'), has('w'));
    ops.at_most(1)?;
    let target = match (all, ops.operands.first()) {
        (true, Some(_)) => return Err(ParseError::verb(VERB, "-a and a VM name are exclusive")),
        (true, None) => Target::All,
        (false, Some(word)) => parse_target(VERB, word)?,
        (false, None) => return Err(ParseError::verb(VERB, "missing VM id or name (or -a for all)")),
    };
    Ok(Command::Stop { target, force, wait })
}

/// Set an option that may be given once.
fn once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::verb("start", format!("{what} specified multiple times")));
    }
    *slot = Some(value);
    Ok(())
}

/// A path given to `start` ([`check_path`]); `what` names it in the error.
fn path(value: &str, what: &str) -> Result<(), ParseError> {
    check_path(value).map_err(|e| ParseError::verb("start", e.message(what, &shown(value))))
}

/// `create [-b base | -i disk] [-s size] path`, with vmctl(8)'s rules: a size is needed unless
/// the image copies or overlays another, and -b and -i exclude each other.
fn parse_create(args: &[String]) -> Result<Command, ParseError> {
    const VERB: &str = "create";
    let err = |m: String| ParseError::verb(VERB, m);
    let ops = Options::parse(VERB, args, "b:i:s:")?;
    let (mut size, mut base, mut input) = (None, None, None);
    for &(flag, value) in &ops.flags {
        let value = value.unwrap_or_default();
        let (slot, what) = match flag {
            's' => {
                let bytes = parse_disk_size(value).map_err(|e| err(e.message(&shown(value))))?;
                if size.replace(bytes).is_some() {
                    return Err(err("size specified multiple times".into()));
                }
                continue;
            }
            'b' => (&mut base, "base image path"),
            'i' => (&mut input, "input image path"),
            _ => return Err(err(format!("unknown option -{flag}"))),
        };
        check_path(value).map_err(|e| err(e.message(what, &shown(value))))?;
        if slot.replace(String::from(value)).is_some() {
            return Err(err(format!("-{flag} specified multiple times")));
        }
    }
    let path = String::from(ops.one("missing disk image path")?);
    check_path(&path).map_err(|e| err(e.message("disk image path", &shown(&path))))?;
    if base.is_some() && input.is_some() {
        return Err(err("conflicting -b and -i arguments".into()));
    }
    if size.is_none() && base.is_none() && input.is_none() {
        return Err(err(format!("could not create {path}: missing size argument")));
    }
    Ok(Command::Create { path, size, base, input })
}

fn parse_start(args: &[String]) -> Result<StartArgs, ParseError> {
    const VERB: &str = "start";
    let err = |m: String| ParseError::verb(VERB, m);
    let ops = Options::parse(VERB, args, "b:B:cd:i:Lm:n:r:t:")?;
    let mut start = StartArgs::new(Target::All);
    for &(flag, value) in &ops.flags {
        let value = value.unwrap_or_default();
        match flag {
            'b' => {
                path(value, "boot image path")?;
                once(&mut start.boot, value.into(), "boot image")?;
            }
            'B' => {
                let device = match value {
                    "disk" => BootDevice::Disk,
                    "cdrom" => BootDevice::Cdrom,
                    "net" => BootDevice::Net,
                    _ => return Err(err(format!("unknown boot device {}", quoted(value)))),
                };
                once(&mut start.boot_device, device, "boot device")?;
            }
            'c' => start.console = true,
            'd' => {
                if start.disks.len() == MAX_DISKS_PER_VM {
                    return Err(err("too many disks".into()));
                }
                let (_, file) = keel_diskimage::split_disk_spec(value);
                path(file, "disk path")?;
                start.disks.push(value.into());
            }
            'i' => {
                let count = parse_number(value)
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| err(format!("invalid interface count: {}", quoted(value))))?;
                once(&mut start.interfaces, count, "interfaces")?;
            }
            'L' => {
                if start.local_interface {
                    return Err(err("-L specified multiple times (Keel supports one local interface)".into()));
                }
                start.local_interface = true;
            }
            'm' => {
                let bytes = parse_memory(value).map_err(|e| err(e.message(&shown(value))))?;
                once(&mut start.memory, bytes, "memory")?;
            }
            'n' => {
                check_switch_name(value).map_err(|e| err(e.message("switch name", &shown(value))))?;
                start.switches.push(value.into());
            }
            'r' => {
                path(value, "iso image path")?;
                once(&mut start.cdrom, value.into(), "iso image")?;
            }
            't' => {
                check_vm_name(value).map_err(|e| err(e.message("template name", &shown(value))))?;
                once(&mut start.template, value.into(), "template")?;
            }
            _ => return Err(err(format!("unknown option -{flag}"))),
        }
        if start.interface_count() as usize > MAX_NICS_PER_VM {
            return Err(err("too many network interfaces".into()));
        }
    }
    ops.at_most(1)?;
    let word = ops.operands.first().ok_or_else(|| err("missing VM id or name".into()))?;
    start.name = parse_target(VERB, word)?;
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_vmlimits::{MAX_MEMORY, VM_NAME_MAX};

    fn p(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn e(line: &str) -> String {
        match parse(line) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn name(s: &str) -> Target {
        Target::Name(s.into())
    }

    #[test]
    fn empty_lines() {
        assert_eq!(p(""), Command::Empty);
        assert_eq!(p("   \t "), Command::Empty);
    }

    #[test]
    fn vmctl_prefix_is_skipped() {
        assert_eq!(p("vmctl show"), Command::Show(None));
        assert_eq!(p("vmctl stop -a"), Command::Stop { target: Target::All, force: false, wait: false });
        assert_eq!(p("vmctl"), Command::Help(None));
        // Only the first word.
        assert_eq!(e("vmctl vmctl show"), "unknown command 'vmctl' (try help)");
    }

    #[test]
    fn unknown_and_ambiguous_verbs() {
        assert_eq!(e("frob"), "unknown command 'frob' (try help)");
        assert_eq!(e("st 1"), "ambiguous command 'st': start, status, stop (try help)");
        assert_eq!(e("sen 1"), "send: not supported on Keel (try help)");
        // Hostile words are shown printable and short.
        assert_eq!(e("\u{1b}[2J"), "unknown command '?[2J' (try help)");
        let long = "x".repeat(100);
        assert_eq!(e(&long), format!("unknown command '{}...' (try help)", "x".repeat(40)));
        assert_eq!(e("stop \"a"), "unterminated quote");
    }

    #[test]
    fn abbreviations() {
        assert_eq!(p("sh"), Command::Show(None));
        assert_eq!(p("stat 2"), Command::Show(Some(Target::Id(2))));
        assert_eq!(p("sto -f 2"), Command::Stop { target: Target::Id(2), force: true, wait: false });
        assert_eq!(p("cons web"), Command::Console(name("web")));
        assert_eq!(p("?"), Command::Help(None));
    }

    #[test]
    fn show_and_status() {
        assert_eq!(p("show"), Command::Show(None));
        assert_eq!(p("status"), Command::Show(None));
        assert_eq!(p("show 1"), Command::Show(Some(Target::Id(1))));
        assert_eq!(p("status web-1.example_x"), Command::Show(Some(name("web-1.example_x"))));
        assert_eq!(e("show 1 2"), "show: too many arguments\nusage: show [id]");
        assert_eq!(e("status -r"), "status: unknown option -r\nusage: status [id]");
    }

    #[test]
    fn targets() {
        assert_eq!(p("console 4294967295"), Command::Console(Target::Id(u32::MAX)));
        assert_eq!(p("console 007"), Command::Console(Target::Id(7)));
        assert_eq!(e("console 4294967296"), "console: invalid id: 4294967296\nusage: console id");
        assert_eq!(e("console 0"), "console: invalid id: 0\nusage: console id");
        let start = "console: invalid VM name";
        let usage = "\nusage: console id";
        assert_eq!(e("console -- -web"), format!("{start} '-web': it must start with a letter{usage}"));
        assert_eq!(e("console .web"), format!("{start} '.web': it must start with a letter{usage}"));
        assert_eq!(e("console 1a"), format!("{start} '1a': it must start with a letter{usage}"));
        let only = "it may contain only letters, digits, '.', '-' and '_', not";
        assert_eq!(e("console we/b"), format!("{start} 'we/b': {only} '/'{usage}"));
        assert_eq!(e("console \"\""), format!("console: VM name must not be empty{usage}"));
        let longest = "a".repeat(VM_NAME_MAX);
        assert_eq!(p(&format!("console {longest}")), Command::Console(Target::Name(longest.clone())));
        assert_eq!(
            e(&format!("console {longest}a")),
            format!("{start} '{}...': it is 64 bytes long (at most 63){usage}", "a".repeat(40))
        );
    }

    #[test]
    fn console_pause_unpause_wait() {
        assert_eq!(p("console 1"), Command::Console(Target::Id(1)));
        assert_eq!(p("pause web"), Command::Pause(name("web")));
        assert_eq!(p("unpause 3"), Command::Unpause(Target::Id(3)));
        assert_eq!(p("wait web"), Command::Wait(name("web")));
        for verb in ["console", "pause", "unpause", "wait"] {
            assert_eq!(e(verb), format!("{verb}: missing VM id or name\nusage: {verb} id"));
            assert_eq!(e(&format!("{verb} 1 2")), format!("{verb}: too many arguments\nusage: {verb} id"));
            assert_eq!(e(&format!("{verb} -x 1")), format!("{verb}: unknown option -x\nusage: {verb} id"));
        }
    }

    #[test]
    fn stop() {
        let stop = |target, force, wait| Command::Stop { target, force, wait };
        assert_eq!(p("stop 1"), stop(Target::Id(1), false, false));
        assert_eq!(p("stop -f web"), stop(name("web"), true, false));
        assert_eq!(p("stop -w web"), stop(name("web"), false, true));
        assert_eq!(p("stop -fw 2"), stop(Target::Id(2), true, true));
        assert_eq!(p("stop -w -f 2"), stop(Target::Id(2), true, true));
        assert_eq!(p("stop -a"), stop(Target::All, false, false));
        assert_eq!(p("stop -afw"), stop(Target::All, true, true));
        assert_eq!(p("stop -a -w"), stop(Target::All, false, true));
        // Flags after the name, as in vmctl's older synopsis.
        assert_eq!(p("stop web -f"), stop(name("web"), true, false));
        assert_eq!(e("stop -a web"), "stop: -a and a VM name are exclusive\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop 1 -a"), "stop: -a and a VM name are exclusive\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop"), "stop: missing VM id or name (or -a for all)\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop -f"), "stop: missing VM id or name (or -a for all)\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop -x 1"), "stop: unknown option -x\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop -fx 1"), "stop: unknown option -x\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop 1 2"), "stop: too many arguments\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("stop -a 1 2"), "stop: too many arguments\nusage: stop [-fw] [id | -a]");
    }

    #[test]
    fn start_plain() {
        assert_eq!(p("start web"), Command::Start(StartArgs::new(name("web"))));
        assert_eq!(p("start 3"), Command::Start(StartArgs::new(Target::Id(3))));
        assert_eq!(p("start \"myvm\""), Command::Start(StartArgs::new(name("myvm"))));
    }

    #[test]
    fn start_with_every_option() {
        // The OpenBSD FAQ's install example, plus the rest.
        let got = p("start -c -m 1G -L -i 1 -r install.iso -d disk.img -B cdrom -b /bsd.rd -n uplink \
                     -d qcow2:/vm/two.qcow2 -t openbsd.4G example");
        let want = StartArgs {
            name: name("example"),
            memory: Some(1 << 30),
            boot: Some("/bsd.rd".into()),
            boot_device: Some(BootDevice::Cdrom),
            disks: alloc::vec!["disk.img".into(), "qcow2:/vm/two.qcow2".into()],
            cdrom: Some("install.iso".into()),
            interfaces: Some(1),
            switches: alloc::vec!["uplink".into()],
            template: Some("openbsd.4G".into()),
            console: true,
            local_interface: true,
        };
        assert_eq!(got, Command::Start(want));
    }

    #[test]
    fn start_option_forms() {
        let Command::Start(a) = p("start -cLm512M -i2 web") else { panic!() };
        assert!(a.console && a.local_interface);
        assert_eq!(a.memory, Some(512 << 20));
        assert_eq!(a.interfaces, Some(2));
        // The older vmctl order: name first.
        let Command::Start(a) = p("start \"myvm\" -m 1G -i 1 -b /bsd -d disk.img") else { panic!() };
        assert_eq!(a.name, name("myvm"));
        assert_eq!(a.boot.as_deref(), Some("/bsd"));
        // `--` ends the options; a path may start with `-` as an option's argument.
        let Command::Start(a) = p("start -d -odd.img -- web") else { panic!() };
        assert_eq!(a.disks, ["-odd.img"]);
        for (dev, want) in [("disk", BootDevice::Disk), ("cdrom", BootDevice::Cdrom), ("net", BootDevice::Net)] {
            let Command::Start(a) = p(&format!("start -B {dev} web")) else { panic!() };
            assert_eq!(a.boot_device, Some(want));
        }
    }

    #[test]
    fn start_memory_sizes() {
        let mem = |m: &str| match p(&format!("start -m {m} web")) {
            Command::Start(a) => a.memory.unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(mem("512M"), 512 << 20);
        assert_eq!(mem("512m"), 512 << 20);
        assert_eq!(mem("2G"), 2 << 30);
        assert_eq!(mem("4.5G"), 4608 << 20);
        assert_eq!(mem("1048576"), 1 << 20);
        assert_eq!(mem("1024K"), 1 << 20);
        assert_eq!(mem("128G"), MAX_MEMORY);
        // Rounded down to the megabyte.
        assert_eq!(mem("1.3M"), 1 << 20);
        assert_eq!(mem("1048577"), 1 << 20);
        let usage = "\nusage: start [-cL] [-B device] [-b path] [-d disk] [-i count]\n             \
                     [-m size] [-n switch] [-r path] [-t name] id | name";
        assert_eq!(e("start -m 512 web"), format!("start: memory size must be at least 1M{usage}"));
        assert_eq!(e("start -m 0 web"), format!("start: memory size must be at least 1M{usage}"));
        assert_eq!(
            e("start -m lots web"),
            format!("start: invalid memory size 'lots': expected a number, e.g. 512M or 1.5G{usage}")
        );
        let unit = "unknown unit (use K, M, G or T after the number; a plain number is bytes)";
        assert_eq!(e("start -m 1GB web"), format!("start: invalid memory size '1GB': {unit}{usage}"));
        assert_eq!(e("start -m-1G web"), format!("start: invalid memory size '-1G': a size cannot be negative{usage}"));
        assert_eq!(e("start -m 20E web"), format!("start: memory size too large (limit is 128G){usage}"));
        assert_eq!(e("start -m 129G web"), format!("start: memory size too large (limit is 128G){usage}"));
        assert_eq!(e("start -m 200G web"), format!("start: memory size too large (limit is 128G){usage}"));
        assert_eq!(e("start -m 1G -m 2G web"), format!("start: memory specified multiple times{usage}"));
    }

    #[test]
    fn start_errors() {
        let first = |line: &str| e(line).lines().next().unwrap().to_string();
        assert_eq!(first("start"), "start: missing VM id or name");
        assert_eq!(first("start -c"), "start: missing VM id or name");
        assert_eq!(first("start a b"), "start: too many arguments");
        assert_eq!(first("start -x web"), "start: unknown option -x");
        assert_eq!(first("start -m"), "start: option -m needs an argument");
        assert_eq!(first("start web -d"), "start: option -d needs an argument");
        assert_eq!(first("start -b /a -b /b web"), "start: boot image specified multiple times");
        assert_eq!(first("start -B disk -B net web"), "start: boot device specified multiple times");
        assert_eq!(first("start -B floppy web"), "start: unknown boot device floppy");
        assert_eq!(first("start -r a.iso -r b.iso web"), "start: iso image specified multiple times");
        assert_eq!(first("start -i 1 -i 2 web"), "start: interfaces specified multiple times");
        assert_eq!(first("start -i 0 web"), "start: invalid interface count: 0");
        assert_eq!(first("start -i two web"), "start: invalid interface count: two");
        assert_eq!(first("start -i 5 web"), "start: too many network interfaces");
        assert_eq!(first("start -n a -n b -n c -n d -L web"), "start: too many network interfaces");
        assert_eq!(first("start -L -L web"), "start: -L specified multiple times (Keel supports one local interface)");
        assert_eq!(first("start -d a -d b -d c -d d -d e web"), "start: too many disks");
        assert_eq!(first("start -d \"\" web"), "start: disk path must not be empty");
        assert_eq!(first("start -d qcow2: web"), "start: disk path must not be empty");
        assert_eq!(first("start -b \"\" web"), "start: boot image path must not be empty");
        assert_eq!(first("start -r \"\" web"), "start: iso image path must not be empty");
        let long = "p".repeat(1024);
        assert_eq!(
            first(&format!("start -r {long} web")),
            format!("start: invalid iso image path '{}...': it is 1024 bytes long (at most 1023)", "p".repeat(40))
        );
        let Command::Start(a) = p(&format!("start -d raw:{} web", &long[1..])) else { panic!() };
        assert_eq!(a.disks[0].len(), 1027);
        assert_eq!(first("start -n \"\" web"), "start: switch name must not be empty");
        assert_eq!(
            first(&format!("start -n {} web", "s".repeat(64))),
            format!("start: invalid switch name '{}...': it is 64 bytes long (at most 63)", "s".repeat(40))
        );
        assert_eq!(first("start -t a -t b web"), "start: template specified multiple times");
        assert_eq!(first("start -t _x web"), "start: invalid template name '_x': it must start with a letter");
        let only = "it may contain only letters, digits, '.', '-' and '_', not";
        assert_eq!(first("start my!vm"), format!("start: invalid VM name 'my!vm': {only} '!'"));
        assert_eq!(first("start _vm"), "start: invalid VM name '_vm': it must start with a letter");
        assert_eq!(first("start 1web"), "start: invalid VM name '1web': it must start with a letter");
        assert_eq!(first("start 0"), "start: invalid id: 0");
        // The usage follows on two more lines.
        assert_eq!(e("start").lines().count(), 3);
    }

    #[test]
    fn start_interface_count() {
        let args = |line: &str| match p(line) {
            Command::Start(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(args("start web").interface_count(), 0);
        assert_eq!(args("start -i 3 web").interface_count(), 3);
        assert_eq!(args("start -L -n a web").interface_count(), 2);
        assert_eq!(args("start -L -i 4 web").interface_count(), 4);
        assert_eq!(args("start -n a -n b -n c -n d web").interface_count(), 4);
    }

    #[test]
    fn reset() {
        assert_eq!(p("reset"), Command::Reset(ResetWhat::All));
        assert_eq!(p("reset all"), Command::Reset(ResetWhat::All));
        assert_eq!(p("reset switches"), Command::Reset(ResetWhat::Switches));
        assert_eq!(p("reset VMS"), Command::Reset(ResetWhat::Vms));
        assert_eq!(e("reset sw"), "reset: expected all, switches or vms\nusage: reset [all | switches | vms]");
        assert_eq!(e("reset vms all"), "reset: too many arguments\nusage: reset [all | switches | vms]");
    }

    #[test]
    fn load_and_reload() {
        assert_eq!(p("load /etc/vm.conf"), Command::Load("/etc/vm.conf".into()));
        assert_eq!(p("load \"my vm.conf\""), Command::Load("my vm.conf".into()));
        assert_eq!(e("load"), "load: missing file name\nusage: load filename");
        assert_eq!(e("load a b"), "load: too many arguments\nusage: load filename");
        assert_eq!(p("reload"), Command::Reload);
        assert_eq!(e("reload now"), "reload: too many arguments\nusage: reload");
    }

    #[test]
    fn log() {
        assert_eq!(p("log brief"), Command::Log { verbose: false });
        assert_eq!(p("log verbose"), Command::Log { verbose: true });
        assert_eq!(p("log v"), Command::Log { verbose: true });
        assert_eq!(p("log BRIEF"), Command::Log { verbose: false });
        assert_eq!(e("log"), "log: missing brief or verbose\nusage: log brief | verbose");
        assert_eq!(e("log loud"), "log: expected brief or verbose\nusage: log brief | verbose");
        assert_eq!(e("log \"\""), "log: expected brief or verbose\nusage: log brief | verbose");
        assert_eq!(e("log brief verbose"), "log: too many arguments\nusage: log brief | verbose");
    }

    #[test]
    fn help() {
        assert_eq!(p("help"), Command::Help(None));
        assert_eq!(p("help stop"), Command::Help(Some("stop")));
        assert_eq!(p("help sh"), Command::Help(Some("show")));
        assert_eq!(p("help reboot"), Command::Help(Some("reboot")));
        assert_eq!(e("help frob"), "help: unknown command 'frob'\nusage: help [command]");
        assert_eq!(e("help st"), "help: ambiguous command 'st': start, status, stop\nusage: help [command]");
        assert_eq!(e("help a b"), "help: too many arguments\nusage: help [command]");
    }

    #[test]
    fn machine_verbs() {
        assert_eq!(p("version"), Command::Version);
        assert_eq!(p("cpus"), Command::Cpus);
        assert_eq!(p("mem"), Command::Mem);
        assert_eq!(p("stats"), Command::Stats);
        assert_eq!(p("reboot"), Command::Reboot);
        assert_eq!(p("dmesg"), Command::Dmesg);
        assert_eq!(p("disks"), Command::Disks);
        assert_eq!(p("newfs sd1"), Command::Newfs { disk: "sd1".into(), force: false });
        assert_eq!(p("newfs -f sd1p2"), Command::Newfs { disk: "sd1p2".into(), force: true });
        assert!(parse("newfs").is_err());
        assert_eq!(p("ls"), Command::Ls(None));
        assert_eq!(p("ls /etc"), Command::Ls(Some("/etc".into())));
        assert!(parse("ls /a /b").is_err());
        assert!(parse("disks sd0").is_err());
        assert_eq!(e("mem now"), "mem: too many arguments\nusage: mem");
        assert_eq!(e("reboot -f"), "reboot: unknown option -f\nusage: reboot");
        assert_eq!(e("vers"), "unknown command 'vers' (try help)");
    }

    #[test]
    fn create() {
        let c = |path: &str, size: Option<u64>, base: Option<&str>, input: Option<&str>| Command::Create {
            path: path.into(),
            size,
            base: base.map(Into::into),
            input: input.map(Into::into),
        };
        assert_eq!(p("create -s 50G disk.qcow2"), c("disk.qcow2", Some(50 << 30), None, None));
        assert_eq!(p("create -s 1.5M /vm/a.img"), c("/vm/a.img", Some(1 << 20), None, None));
        assert_eq!(p("create -b base.qcow2 o.qcow2"), c("o.qcow2", None, Some("base.qcow2"), None));
        assert_eq!(p("create -i disk.img -s 8G o.qcow2"), c("o.qcow2", Some(8 << 30), None, Some("disk.img")));
        assert_eq!(e("create disk.qcow2"), "create: could not create disk.qcow2: missing size argument\nusage: create [-b base | -i disk] [-s size] disk");
        assert_eq!(
            e("create -b a -i b c"),
            "create: conflicting -b and -i arguments\nusage: create [-b base | -i disk] [-s size] disk"
        );
        assert!(e("create -s 5GB d").starts_with("create: invalid disk size '5GB'"));
        assert!(e("create -s 512K d").starts_with("create: disk size must be at least 1M"));
        assert!(e("create -s 1G").starts_with("create: missing disk image path"));
        assert!(e("create -s 1G -s 2G d").starts_with("create: size specified multiple times"));
    }

    #[test]
    fn spawn_and_kill() {
        assert_eq!(p("spawn vmm-monitor"), Command::Spawn { program: "vmm-monitor".into(), storage: false });
        assert_eq!(p("spawn -s storetest"), Command::Spawn { program: "storetest".into(), storage: true });
        assert!(parse("spawn -x storetest").is_err());
        assert_eq!(e("spawn"), "spawn: missing program name\nusage: spawn [-s] program");
        assert_eq!(e("spawn a b"), "spawn: too many arguments\nusage: spawn [-s] program");
        assert_eq!(p("kill 12"), Command::Kill(12));
        assert_eq!(e("kill"), "kill: missing process id\nusage: kill pid");
        assert_eq!(e("kill x1"), "kill: invalid pid: x1\nusage: kill pid");
        assert_eq!(e("kill -- -1"), "kill: invalid pid: -1\nusage: kill pid");
        assert_eq!(e("kill 99999999999"), "kill: invalid pid: 99999999999\nusage: kill pid");
    }

    #[test]
    fn parse_error_parts() {
        let err = parse("stop -a web").unwrap_err();
        assert_eq!(err.command(), Some("stop"));
        assert_eq!(err.message(), "-a and a VM name are exclusive");
        assert_eq!(err.usage(), Some("usage: stop [-fw] [id | -a]"));
        let err = parse("frob").unwrap_err();
        assert_eq!(err.command(), None);
        assert_eq!(err.usage(), None);
    }

    #[test]
    fn odd_option_characters_do_not_panic() {
        assert_eq!(e("stop -é 1"), "stop: unknown option -?\nusage: stop [-fw] [id | -a]");
        assert_eq!(e("start -: web").lines().next(), Some("start: unknown option -:"));
        assert_eq!(
            e("start -mé web").lines().next(),
            Some("start: invalid memory size '?': expected a number, e.g. 512M or 1.5G")
        );
        assert_eq!(
            e("start wéb").lines().next(),
            Some("start: invalid VM name 'w?b': it may contain only letters, digits, '.', '-' and '_', not '\\u{e9}'")
        );
        assert_eq!(e("stop -"), "stop: invalid VM name '-': it must start with a letter\nusage: stop [-fw] [id | -a]");
    }
}
