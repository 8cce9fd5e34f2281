//! The shell's verbs: their names, usage lines and help text, and how a typed verb is found.
//!
//! What it does: holds one table of every verb (vmctl(8)'s and Keel's own), answers
//! [`usage`], [`help_text`] and [`verb_help`], and resolves a typed word to a verb. As vmctl
//! does, a vmctl verb may be shortened to any unambiguous prefix (`sh` is `show`, `st` is
//! ambiguous); Keel's own verbs (`reboot`, `kill`...) must be typed in full.
//!
//! What it does not do: parse arguments (that is [`crate::command`]).

/// Where a verb comes from, which decides whether it may be abbreviated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A vmctl(8) verb Keel implements; may be abbreviated.
    Vmctl,
    /// A vmctl(8) verb Keel does not implement; known so that abbreviations stay as in vmctl.
    VmctlUnsupported,
    /// Keel's own verb; exact match only.
    Keel,
}

pub(crate) struct Verb {
    pub(crate) name: &'static str,
    pub(crate) origin: Origin,
    /// The full usage text, starting with "usage: ".
    pub(crate) usage: &'static str,
    /// Longer help for `help VERB`, after the usage.
    pub(crate) help: &'static str,
}

const fn verb(name: &'static str, origin: Origin, usage: &'static str, help: &'static str) -> Verb {
    Verb { name, origin, usage, help }
}

use Origin::{Keel, Vmctl, VmctlUnsupported};

/// Every verb, vmctl's in vmctl's (alphabetical) order, then Keel's.
pub(crate) static VERBS: &[Verb] = &[
    verb(
        "console",
        Vmctl,
        "usage: console id",
        "Attach to the serial console of the VM with the given id or name.\n\
         Type ~. at the start of a line to detach, ~~ to send a ~, ~? for help.",
    ),
    verb(
        "create",
        Vmctl,
        "usage: create [-b base | -i disk] [-s size] disk",
        "Create a disk image on the datastore: qcow2 if its name ends in .qcow2,\n\
         else raw. -s gives the size (at least 1M, rounded down to a MiB);\n\
         -b base makes a qcow2 overlay whose unwritten clusters read from base (the\n\
         size defaults to base's); -i disk copies an existing image, converting\n\
         between raw and qcow2.",
    ),
    verb("load", Vmctl, "usage: load filename", "Load additional vm.conf(5) configuration from the named file."),
    verb("log", Vmctl, "usage: log brief | verbose", "Disable (brief) or enable (verbose) verbose debug logging."),
    verb("pause", Vmctl, "usage: pause id", "Pause the VM with the given id or name."),
    verb("receive", VmctlUnsupported, "usage: receive name", "Not supported on Keel."),
    verb(
        "reload",
        Vmctl,
        "usage: reload",
        "Remove all stopped VMs and reload the configuration from the default\n\
         configuration file.",
    ),
    verb(
        "reset",
        Vmctl,
        "usage: reset [all | switches | vms]",
        "Reset the running state (all, the default), reset the switches, or reset and\n\
         terminate all VMs.",
    ),
    verb("send", VmctlUnsupported, "usage: send id", "Not supported on Keel."),
    verb("show", Vmctl, "usage: show [id]", "An alias for the status command."),
    verb(
        "start",
        Vmctl,
        "usage: start [-cL] [-B device] [-b path] [-d disk] [-i count]\n             \
         [-m size] [-n switch] [-r path] [-t name] id | name",
        "Start a VM, given by the id or name of a configured VM or by a new name:\n  \
         -B device  boot from disk, cdrom or net this time\n  \
         -b path    boot the VM with this kernel or BIOS image\n  \
         -c         connect to the VM's console once it starts\n  \
         -d disk    add a disk image (at most 4; may be raw:disk or qcow2:disk)\n  \
         -i count   number of network interfaces\n  \
         -L         add a local network interface\n  \
         -m size    memory size, e.g. 512M or 1G (rounded down to megabytes)\n  \
         -n switch  add a network interface attached to this virtual switch\n  \
         -r path    ISO image for the virtual CD-ROM\n  \
         -t name    use the VM with this name as a template",
    ),
    verb("status", Vmctl, "usage: status [id]", "List the VMs, or only the one with the given id or name."),
    verb(
        "stop",
        Vmctl,
        "usage: stop [-fw] [id | -a]",
        "Stop the VM with the given id or name, or all running VMs (-a):\n  \
         -f  stop the VM forcefully, without a graceful shutdown\n  \
         -w  wait until the VM has been terminated",
    ),
    verb(
        "unpause",
        Vmctl,
        "usage: unpause id",
        "Unpause (resume from a paused state) the VM with the given id or name.",
    ),
    verb("wait", Vmctl, "usage: wait id", "Wait until the VM with the given id or name has stopped."),
    verb("dmesg", Keel, "usage: dmesg", "Show the kernel's message buffer."),
    verb("help", Keel, "usage: help [command]", "List the commands, or explain one."),
    verb("version", Keel, "usage: version", "Show Keel's version and build."),
    verb("cpus", Keel, "usage: cpus", "Show the processors and their virtualization support."),
    verb("mem", Keel, "usage: mem", "Show physical memory: total, free, kernel heap."),
    verb(
        "stats",
        Keel,
        "usage: stats",
        "Exact counters for benchmarks (cargo xtask bench): the TSC at the kernel's first\n\
         instruction and at vmd's first prompt, free memory and kernel heap use in bytes,\n\
         and the running VMs with their RAM.",
    ),
    verb("reboot", Keel, "usage: reboot", "Restart the machine."),
    verb(
        "disks",
        Keel,
        "usage: disks",
        "List the machine's disks (controller, model, size), their partitions, and the\n\
         datastore file system on each (format, label, free space).",
    ),
    verb("ls", Keel, "usage: ls [path]", "List a directory of the datastore (the root by default)."),
    verb(
        "newfs",
        Keel,
        "usage: newfs [-f] disk",
        "Make a disk (sd1: a GPT with one exFAT partition) or a partition (sd1p2: exFAT\n\
         in place) a datastore, after asking. A disk or partition that holds anything\n\
         is refused unless -f is given; the datastore in use never is formatted.",
    ),
    verb(
        "spawn",
        Keel,
        "usage: spawn [-s] program",
        "Debugging: start a boot-module program as a process; with -s, give it a\n\
         channel to the storage service (it may use every file of the datastore).",
    ),
    verb("kill", Keel, "usage: kill pid", "Debugging: kill a spawned process or a VM's monitor (PID in show)."),
];

/// The usage text of `verb` (its full name), starting with "usage: ", as vmctl(8) prints it
/// (without vmctl's program name). `start`'s usage takes two lines.
pub fn usage(verb: &str) -> Option<&'static str> {
    find_exact(verb).map(|v| v.usage)
}

/// A longer explanation of `verb` (its full name), for `help VERB`; it does not repeat the
/// usage (print [`usage`] first).
pub fn verb_help(verb: &str) -> Option<&'static str> {
    find_exact(verb).map(|v| v.help)
}

/// The answer to `help`: every verb, one line each, with what it does.
pub fn help_text() -> &'static str {
    HELP
}

const HELP: &str = "\
commands (as vmctl(8); a command may be shortened, e.g. sh for show):
  console id                   attach to a VM's console (~. detaches)
  create [-b base | -i disk] [-s size] disk
                               make a disk image (.qcow2 names: qcow2)
  load filename                load vm.conf(5) configuration from a file
  log brief | verbose          disable or enable verbose logging
  pause id                     pause a VM
  reload                       remove stopped VMs and reload the configuration
  reset [all | switches | vms] reset the running state, the switches, or the VMs
  show [id]                    list the VMs (the same as status)
  start [options] id | name    start a VM (help start lists the options)
  status [id]                  list the VMs
  stop [-fw] [id | -a]         stop a VM, or all VMs with -a
  unpause id                   resume a paused VM
  wait id                      wait until a VM has stopped
machine:
  dmesg                        show the kernel's messages
  help [command]               this list, or help on one command
  version                      Keel's version and build
  cpus                         the processors and their virtualization support
  mem                          physical memory: total, free, kernel heap
  stats                        exact counters for benchmarks (boot TSC, memory)
  reboot                       restart the machine
storage:
  disks                        the disks, their partitions and datastores
  ls [path]                    list a directory of the datastore
  newfs [-f] disk              make a disk or partition a datastore (asks first)
debugging:
  spawn [-s] program           start a program (-s: with the datastore)
  kill pid                     kill a process or a VM's monitor
an id is a VM's number or its name";

pub(crate) fn find_exact(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

/// How a typed word resolved.
pub(crate) enum Lookup {
    Found(&'static Verb),
    Unknown,
    /// Several vmctl verbs start with the word.
    Ambiguous(alloc::vec::Vec<&'static str>),
}

/// Resolve a typed verb: an exact name, or an unambiguous prefix of a vmctl verb.
pub(crate) fn lookup(word: &str) -> Lookup {
    if word == "?" {
        return find_exact("help").map_or(Lookup::Unknown, Lookup::Found);
    }
    if let Some(v) = find_exact(word) {
        return Lookup::Found(v);
    }
    if word.is_empty() {
        return Lookup::Unknown;
    }
    let mut matches = VERBS.iter().filter(|v| v.origin != Keel && v.name.starts_with(word));
    match (matches.next(), matches.next()) {
        (None, _) => Lookup::Unknown,
        (Some(v), None) => Lookup::Found(v),
        (Some(a), Some(b)) => {
            let mut names = alloc::vec![a.name, b.name];
            names.extend(matches.map(|v| v.name));
            Lookup::Ambiguous(names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_has_a_usage_and_help_line() {
        for v in VERBS {
            assert!(v.usage.starts_with(&alloc::format!("usage: {}", v.name)), "{}", v.name);
            assert_eq!(usage(v.name), Some(v.usage));
            assert!(verb_help(v.name).is_some());
            if v.origin != VmctlUnsupported {
                let listed = help_text().lines().any(|l| l.trim_start().starts_with(&alloc::format!("{} ", v.name)));
                assert!(listed, "{} missing from help", v.name);
            }
        }
        assert_eq!(usage("frob"), None);
        assert_eq!(usage("sh"), None);
    }

    #[test]
    fn usage_lines_match_vmctl() {
        assert_eq!(usage("stop"), Some("usage: stop [-fw] [id | -a]"));
        assert_eq!(usage("show"), Some("usage: show [id]"));
        assert_eq!(usage("reset"), Some("usage: reset [all | switches | vms]"));
        assert_eq!(usage("console"), Some("usage: console id"));
        assert_eq!(usage("load"), Some("usage: load filename"));
        assert_eq!(
            usage("start"),
            Some(
                "usage: start [-cL] [-B device] [-b path] [-d disk] [-i count]\n             \
                 [-m size] [-n switch] [-r path] [-t name] id | name"
            )
        );
    }

    #[test]
    fn help_fits_a_terminal() {
        for line in help_text().lines() {
            assert!(line.len() <= 80, "{line}");
        }
        for v in VERBS {
            for line in v.usage.lines().chain(v.help.lines()) {
                assert!(line.len() <= 80, "{line}");
            }
        }
    }

    #[test]
    fn prefixes_resolve_like_vmctl() {
        let name = |w| match lookup(w) {
            Lookup::Found(v) => v.name,
            Lookup::Unknown => "?unknown",
            Lookup::Ambiguous(_) => "?ambiguous",
        };
        assert_eq!(name("sh"), "show");
        assert_eq!(name("stat"), "status");
        assert_eq!(name("sto"), "stop");
        assert_eq!(name("st"), "?ambiguous");
        assert_eq!(name("s"), "?ambiguous");
        assert_eq!(name("re"), "?ambiguous");
        assert_eq!(name("rel"), "reload");
        assert_eq!(name("u"), "unpause");
        assert_eq!(name("w"), "wait");
        // "c" is ambiguous in vmctl (console, create), so it is here too.
        assert_eq!(name("c"), "?ambiguous");
        assert_eq!(name("co"), "console");
        // Keel's verbs are exact only.
        assert_eq!(name("reb"), "?unknown");
        assert_eq!(name("reboot"), "reboot");
        assert_eq!(name("k"), "?unknown");
        assert_eq!(name("?"), "help");
        assert_eq!(name(""), "?unknown");
        assert_eq!(name("shows"), "?unknown");
        let Lookup::Ambiguous(names) = lookup("st") else { panic!() };
        assert_eq!(names, ["start", "status", "stop"]);
    }
}
