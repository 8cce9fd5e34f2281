//! The VM table: one entry per VM defined in vm.conf, with a stable id, its state and its
//! console. Until guests can run, every VM is stopped and its console is a loopback stream.

use alloc::string::String;
use alloc::vec::Vec;

use keel_shell::{Console, LoopbackStream, Target, VmRow};
use keel_vmconf::{Config, VmConfig};

use keel_vmlimits::DEFAULT_MEMORY;

// Every name the rule allows fits the control area's name field uncut.
const _: () = assert!(keel_vmlimits::VM_NAME_MAX <= keel_vmproto::NAME_MAX);

const CONSOLE_BACKLOG: usize = 64 * 1024;

pub struct Vm {
    pub id: u32,
    pub config: VmConfig,
    pub console: Console,
    pub loopback: LoopbackStream,
    /// The monitor, while the VM runs.
    pub running: Option<crate::running::Running>,
    /// Why it last stopped (shown by `show` as the state until it starts again).
    pub last_stop: Option<String>,
}

impl Vm {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn tty(&self) -> String {
        alloc::format!("ttyp{}", self.id - 1)
    }

    pub fn memory(&self) -> u64 {
        self.config.memory.unwrap_or(DEFAULT_MEMORY)
    }

    pub fn state(&self) -> &'static str {
        match &self.running {
            None => "stopped",
            Some(r) => match r.control.state.load(core::sync::atomic::Ordering::Acquire) {
                keel_vmproto::state::STARTING => "starting",
                keel_vmproto::state::PAUSED => "paused",
                keel_vmproto::state::STOPPED => "stopping",
                _ => "running",
            },
        }
    }

    pub fn row(&self) -> VmRow {
        let owner = self.config.owner.as_ref().and_then(|o| o.user.clone()).unwrap_or_else(|| String::from("root"));
        VmRow {
            id: self.id,
            pid: self.running.as_ref().map(|r| r.pid as u32),
            vcpus: 1,
            max_mem: self.running.as_ref().map_or(self.memory(), |r| r.memory),
            cur_mem: self.running.as_ref().map_or(0, |r| r.memory),
            tty: self.running.as_ref().map(|_| self.tty()),
            owner,
            state: String::from(self.state()),
            name: self.config.name.clone(),
        }
    }
}

#[derive(Default)]
pub struct VmTable {
    pub vms: Vec<Vm>,
    next_id: u32,
}

impl VmTable {
    /// Make the table match `config`: VMs keep their id (and console) by name, new ones get the
    /// next id, VMs no longer configured leave (unless they are running).
    pub fn apply(&mut self, config: &Config) {
        let mut old = core::mem::take(&mut self.vms);
        let keep_running: Vec<Vm> = {
            let (running, rest): (Vec<Vm>, Vec<Vm>) = old
                .into_iter()
                .partition(|v| v.running.is_some() && !config.vms.iter().any(|c| c.name == v.config.name));
            old = rest;
            running
        };
        for vc in &config.vms {
            let vm = match old.iter().position(|v| v.config.name == vc.name) {
                Some(i) => {
                    let mut vm = old.swap_remove(i);
                    vm.config = vc.clone();
                    vm
                }
                None => {
                    self.next_id += 1;
                    Vm {
                        id: self.next_id,
                        config: vc.clone(),
                        console: Console::new(CONSOLE_BACKLOG),
                        loopback: LoopbackStream::new(CONSOLE_BACKLOG),
                        running: None,
                        last_stop: None,
                    }
                }
            };
            self.vms.push(vm);
        }
        self.vms.extend(keep_running);
    }

    /// A VM made by `start -b ... -m ... name` that vm.conf does not define.
    pub fn add(&mut self, config: VmConfig) -> usize {
        self.next_id += 1;
        self.vms.push(Vm {
            id: self.next_id,
            config,
            console: Console::new(CONSOLE_BACKLOG),
            loopback: LoopbackStream::new(CONSOLE_BACKLOG),
            running: None,
            last_stop: None,
        });
        self.vms.len() - 1
    }

    /// Add or replace the VMs of `config` (for `load`), keeping the others.
    pub fn merge(&mut self, config: &Config) {
        let mut merged = Config { vms: self.vms.iter().map(|v| v.config.clone()).collect(), ..config.clone() };
        for vc in &config.vms {
            match merged.vms.iter_mut().find(|v| v.name == vc.name) {
                Some(slot) => *slot = vc.clone(),
                None => merged.vms.push(vc.clone()),
            }
        }
        self.apply(&merged);
    }

    pub fn find(&self, target: &Target) -> Option<usize> {
        match target {
            Target::Id(id) => self.vms.iter().position(|v| v.id == *id),
            Target::Name(name) => self.vms.iter().position(|v| v.config.name == *name),
            Target::All => None,
        }
    }

    /// The indices a target names (`All`: every VM).
    pub fn select(&self, target: &Target) -> Vec<usize> {
        match target {
            Target::All => (0..self.vms.len()).collect(),
            t => self.find(t).into_iter().collect(),
        }
    }
}

pub fn describe(target: &Target) -> String {
    match target {
        Target::Id(id) => alloc::format!("{id}"),
        Target::Name(n) => n.clone(),
        Target::All => String::from("-a"),
    }
}
