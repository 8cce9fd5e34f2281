//! The parsed configuration: plain data, no behaviour beyond defaults and `Display` for the small
//! enums. What a field means is what vm.conf(5) says of the statement that sets it.
//! Does not: resolve `vm "parent" instance "name"` inheritance, look up users or groups, or check
//! that files exist (the parser keeps paths and names as written).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A whole configuration: the main file and everything it includes, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub globals: Globals,
    pub switches: Vec<Switch>,
    pub vms: Vec<VmConfig>,
}

impl Config {
    /// The VM named `name`, if configured.
    pub fn vm(&self, name: &str) -> Option<&VmConfig> {
        self.vms.iter().find(|vm| vm.name == name)
    }

    /// The switch named `name`, if configured.
    pub fn switch(&self, name: &str) -> Option<&Switch> {
        self.switches.iter().find(|sw| sw.name == name)
    }

    /// `(vm, switch)` for every interface that names a switch which is not configured. vmd accepts
    /// these (the interface is then simply not attached), so this is for warnings, not errors.
    pub fn unknown_switch_refs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for vm in &self.vms {
            for sw in vm.interfaces.iter().filter_map(|i| i.switch.as_ref()) {
                if self.switch(sw).is_none() {
                    out.push((vm.name.clone(), sw.clone()));
                }
            }
        }
        out
    }
}

/// Global settings (vm.conf(5) GLOBAL CONFIGURATION).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Globals {
    /// `local prefix ADDRESS[/LEN]`, as written (validated: IPv4, LEN 1..=16, no host bits).
    pub local_prefix: Option<String>,
    /// `local inet6 prefix ADDRESS[/LEN]`, as written (validated: IPv6, LEN 0..=64, no host bits).
    pub local_prefix6: Option<String>,
    /// `local inet6` with or without a prefix: IPv6 is enabled on local interfaces.
    pub local_inet6: bool,
    /// `socket owner USER[:GROUP]` or `socket owner :GROUP`.
    pub socket_owner: Option<Owner>,
    /// `staggered start parallel N delay SECONDS`: (parallelism, delay in seconds).
    pub staggered_start: Option<(u32, u32)>,
    /// `agentx [context NAME] [path PATH]`.
    pub agentx: Option<Agentx>,
}

/// `agentx [context NAME] [path PATH]`: export metrics to an AgentX master. Parsed for
/// compatibility; `path` is `None` when vmd's default (/var/agentx/master) applies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agentx {
    pub context: Option<String>,
    pub path: Option<String>,
}

/// One `vm "name" { ... }` block (vm.conf(5) VM CONFIGURATION and VM INSTANCES).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The VM's name; for `vm "parent" instance "name"` this is the instance's name.
    pub name: String,
    /// The file the block is in (the main file or an included one).
    pub file: String,
    /// Line of the `vm` keyword in `file`.
    pub line: u32,
    /// `enable` (the default) or `disable`: whether vmd starts it at boot.
    pub enabled: bool,
    /// `memory SIZE` in bytes, rounded down to a whole MiB as vmd does. `None`: vmd's default.
    pub memory: Option<u64>,
    /// `disk PATH [format FMT]`, at most 4, in order.
    pub disks: Vec<Disk>,
    pub cdrom: Option<String>,
    /// `boot PATH`: kernel or BIOS image.
    pub boot: Option<String>,
    /// `boot device (cdrom|disk|net)`.
    pub boot_device: Option<BootDevice>,
    /// Keel extension: `initrd PATH`, an initial ramdisk for a directly booted Linux kernel.
    pub initrd: Option<String>,
    /// Keel extension: `cmdline "STRING"`, the command line for a directly booted Linux kernel.
    pub cmdline: Option<String>,
    /// `[local] interface ...` entries in order, then defaults up to `interfaces COUNT`.
    pub interfaces: Vec<Interface>,
    /// `owner USER[:GROUP]` / `owner :GROUP`.
    pub owner: Option<Owner>,
    /// For `vm "parent" instance "name"`: the parent's name.
    pub instance_of: Option<String>,
    /// `allow instance { ... }` options, deduplicated, in order of first mention: any of "boot",
    /// "cdrom", "disk", "instance", "interface", "memory", "owner".
    pub allow_instance: Vec<String>,
    /// `allow instance { owner USER[:GROUP] }`: who may create instances.
    pub instance_owner: Option<Owner>,
    /// `sev`: run the guest with AMD SEV memory encryption.
    pub sev: bool,
    /// `seves`: AMD SEV-ES (implies `sev`).
    pub seves: bool,
}

impl Default for VmConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            file: String::new(),
            line: 0,
            enabled: true,
            memory: None,
            disks: Vec::new(),
            cdrom: None,
            boot: None,
            boot_device: None,
            initrd: None,
            cmdline: None,
            interfaces: Vec::new(),
            owner: None,
            instance_of: None,
            allow_instance: Vec::new(),
            instance_owner: None,
            sev: false,
            seves: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    pub path: String,
    /// `None`: not given; vmd then derives it from the image's magic, else raw.
    pub format: Option<DiskFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    Cdrom,
    Disk,
    Net,
}

impl fmt::Display for BootDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cdrom => "cdrom",
            Self::Disk => "disk",
            Self::Net => "net",
        })
    }
}

/// One network interface of a VM. All-`None` is a default interface (`interfaces COUNT`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    /// `local interface`: vmd gives it a /31 from the local prefix and answers DHCP on it.
    pub local: bool,
    /// `interface NAME`: host-side name (`tap` or `tapN` in vmd).
    pub name: Option<String>,
    pub switch: Option<String>,
    /// `lladdr ADDR`, normalised to lower-case `xx:xx:xx:xx:xx:xx`.
    pub lladdr: Option<String>,
    /// `locked lladdr [ADDR]`: drop guest frames whose source address is not the interface's.
    pub locked_lladdr: bool,
    pub group: Option<String>,
    pub rdomain: Option<u32>,
    /// `up` / `down`; `None` means not given (vmd's default is up).
    pub up: Option<bool>,
}

/// One `switch "name" { ... }` block (vm.conf(5) SWITCH CONFIGURATION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub name: String,
    /// The file the block is in.
    pub file: String,
    /// Line of the `switch` keyword in `file`.
    pub line: u32,
    /// `enable` (the default) or `disable`.
    pub enabled: bool,
    /// `interface NAME` statements in order (vmd keeps only the last).
    pub interfaces: Vec<String>,
    pub group: Option<String>,
    pub locked_lladdr: bool,
    pub rdomain: Option<u32>,
    /// `up` / `down`; `None` means not given (vmd's default is up).
    pub up: Option<bool>,
}

impl Default for Switch {
    fn default() -> Self {
        Self {
            name: String::new(),
            file: String::new(),
            line: 0,
            enabled: true,
            interfaces: Vec::new(),
            group: None,
            locked_lladdr: false,
            rdomain: None,
            up: None,
        }
    }
}

/// `USER`, `USER:GROUP` or `:GROUP`; a numeric owner (`owner 1000`) is kept as the string "1000".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub user: Option<String>,
    pub group: Option<String>,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            f.write_str(user)?;
        }
        if let Some(group) = &self.group {
            write!(f, ":{group}")?;
        }
        Ok(())
    }
}
