//! What changed between two configurations, for `reload`. The order is stable: globals first, then
//! switches, then vms; within each kind removals (in the old file's order) come before additions
//! and changes (in the new file's order). Where a block is in the file (`file`, `line`) does not
//! count as a change.
//! Does not: say what changed inside a vm or switch, or decide what to do about it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::ast::{Config, Switch, VmConfig};
use crate::error::quote;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    VmAdded(String),
    VmRemoved(String),
    VmChanged(String),
    SwitchAdded(String),
    SwitchRemoved(String),
    SwitchChanged(String),
    GlobalsChanged,
}

impl fmt::Display for Change {
    /// `vm 'web': changed`, `switch 'uplink': added`, `globals: changed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VmAdded(n) => write!(f, "vm {}: added", quote(n, '\'')),
            Self::VmRemoved(n) => write!(f, "vm {}: removed", quote(n, '\'')),
            Self::VmChanged(n) => write!(f, "vm {}: changed", quote(n, '\'')),
            Self::SwitchAdded(n) => write!(f, "switch {}: added", quote(n, '\'')),
            Self::SwitchRemoved(n) => write!(f, "switch {}: removed", quote(n, '\'')),
            Self::SwitchChanged(n) => write!(f, "switch {}: changed", quote(n, '\'')),
            Self::GlobalsChanged => f.write_str("globals: changed"),
        }
    }
}

fn same_vm(a: &VmConfig, b: &VmConfig) -> bool {
    let strip = |v: &VmConfig| VmConfig { file: String::new(), line: 0, ..v.clone() };
    strip(a) == strip(b)
}

fn same_switch(a: &Switch, b: &Switch) -> bool {
    let strip = |s: &Switch| Switch { file: String::new(), line: 0, ..s.clone() };
    strip(a) == strip(b)
}

/// The changes that turn `old` into `new`.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    if old.globals != new.globals {
        out.push(Change::GlobalsChanged);
    }
    for sw in &old.switches {
        if new.switch(&sw.name).is_none() {
            out.push(Change::SwitchRemoved(sw.name.clone()));
        }
    }
    for sw in &new.switches {
        match old.switch(&sw.name) {
            None => out.push(Change::SwitchAdded(sw.name.clone())),
            Some(prev) if !same_switch(prev, sw) => out.push(Change::SwitchChanged(sw.name.clone())),
            Some(_) => {}
        }
    }
    for vm in &old.vms {
        if new.vm(&vm.name).is_none() {
            out.push(Change::VmRemoved(vm.name.clone()));
        }
    }
    for vm in &new.vms {
        match old.vm(&vm.name) {
            None => out.push(Change::VmAdded(vm.name.clone())),
            Some(prev) if !same_vm(prev, vm) => out.push(Change::VmChanged(vm.name.clone())),
            Some(_) => {}
        }
    }
    out
}
