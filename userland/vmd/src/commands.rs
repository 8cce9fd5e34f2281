//! vmd's state and the shell verbs: what each vmctl verb does, and the kernel log, child
//! processes and console attachment around them.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use keel_abi::{ExitStatus, Handle, InfoKind, HANDLE_CONSOLE, HANDLE_MODULES, HANDLE_SYSTEM};
use keel_rt::sys;
use keel_shell::{format_show, parse, Command, EditorEvent, EscapeAction, LineEditor, ResetWhat, Target};
use keel_vmconf::Config;

use crate::disks::VmFiles;
use crate::term::{Term, PROMPT};
use crate::vms::{describe, VmTable};
use crate::{config, BIT_CHILD};

/// The configuration file read at start-up and by `reload`.
const CONFIG_FILE: &str = "vm.conf";
/// The configuration file on the datastore, used instead of the boot media's when it exists.
const DATASTORE_CONFIG_FILE: &str = "/etc/vm.conf";

struct Child {
    handle: Handle,
    pid: u64,
    name: String,
    /// Its number as a client of the storage service, to detach it when it ends.
    storage_client: Option<u64>,
}

pub struct Vmd {
    pub term: Term,
    notify: Handle,
    editor: LineEditor,
    config: Config,
    vms: VmTable,
    /// The VM whose console is attached, by index.
    attached: Option<usize>,
    klog_pos: u64,
    log_verbose: bool,
    children: Vec<Child>,
    /// The storage service, once started.
    storage: Option<crate::storage::Storage>,
    /// A `newfs` waiting for its confirmation (the next line typed): disk, force.
    pending_newfs: Option<(String, bool)>,
    /// The TSC when the first prompt was written (for `stats`).
    prompt_tsc: u64,
}

fn empty_config() -> Config {
    keel_vmconf::parse(CONFIG_FILE, "", &mut keel_vmconf::NoIncludes).unwrap_or_else(|_| unreachable!())
}

impl Vmd {
    pub fn new(notify: Handle) -> Self {
        // Start reading the kernel log where it is now: the boot log was already on the screen.
        let klog_pos = sys::klog_read(HANDLE_CONSOLE, u64::MAX, &mut []).map(|(_, end)| end).unwrap_or(0);
        Self {
            term: Term::default(),
            notify,
            editor: LineEditor::new(),
            config: empty_config(),
            vms: VmTable::default(),
            attached: None,
            klog_pos,
            log_verbose: false,
            children: Vec::new(),
            storage: None,
            pending_newfs: None,
            prompt_tsc: 0,
        }
    }

    /// Read vm.conf and show the prompt.
    pub fn start(&mut self) {
        self.start_storage_service();
        let (file, loaded) = self.load_config(None);
        match loaded {
            Ok(c) => {
                let _ = writeln!(self.term, "vmd: {} vm(s) and {} switch(es) in {file}", c.vms.len(), c.switches.len());
                self.vms.apply(&c);
                self.config = c;
            }
            Err(e) => {
                let _ = writeln!(self.term, "vmd: {e}");
                let _ = writeln!(self.term, "vmd: starting with no VMs; fix the file and use 'reload'");
            }
        }
        // vm.conf(5): VMs that are enabled (the default) start with vmd, when they have an image.
        let autostart: Vec<u32> =
            self.vms.vms.iter().filter(|v| v.config.enabled && v.config.boot.is_some()).map(|v| v.id).collect();
        for id in autostart {
            self.start_vm(keel_shell::StartArgs::new(Target::Id(id)));
        }
        self.term.line("type 'help' for commands");
        self.term.text(PROMPT);
        self.term.flush();
        self.prompt_tsc = keel_rt::cpu::rdtsc();
    }

    /// Start the storage service (storage.rs), when the image has it. It is watched like any
    /// child: its end is reported.
    fn start_storage_service(&mut self) {
        if sys::module_size(HANDLE_MODULES, crate::storage::PROGRAM).is_err() {
            return;
        }
        match crate::storage::Storage::start(self.notify, BIT_CHILD) {
            Ok((storage, handle, pid)) => {
                self.storage = Some(storage);
                self.children.push(Child {
                    handle,
                    pid,
                    name: String::from(crate::storage::PROGRAM),
                    storage_client: None,
                });
            }
            Err(e) => {
                let _ = writeln!(self.term, "vmd: cannot start the storage service: {e}");
            }
        }
    }

    /// The answer to `newfs`'s question: anything but y or yes leaves the disk alone.
    fn newfs_confirmed(&mut self, disk: &str, force: bool, answer: &str) {
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            self.term.line("newfs: nothing done");
            return;
        }
        let Some(storage) = self.storage.as_mut() else { return };
        let mut request = keel_storeproto::Request::new(keel_storeproto::Op::Format);
        request.path = String::from(disk);
        request.offset = u64::from(force);
        match storage.client.call(&request, &[]) {
            Ok(reply) => {
                let text = storage.client.data(reply.result);
                let _ = writeln!(self.term, "newfs: {}", String::from_utf8_lossy(&text));
            }
            Err(e) => {
                let _ = writeln!(self.term, "newfs: {e}");
            }
        }
    }

    /// Where a VM's file is: on the datastore (the path, made absolute), else a boot module of
    /// the same last component (its name). Neither: why, for `start`'s message.
    fn locate(&mut self, path: &str) -> Result<String, String> {
        if let Some(storage) = self.storage.as_mut() {
            let absolute = if path.starts_with('/') { String::from(path) } else { alloc::format!("/{path}") };
            if storage.client.file_size(&absolute)?.is_some() {
                return Ok(absolute);
            }
        }
        let name = config::module_name(path);
        if !name.is_empty() && sys::module_size(HANDLE_MODULES, name).is_ok() {
            return Ok(String::from(name));
        }
        let on = if self.storage.is_some() { "the datastore or the boot media" } else { "the boot media" };
        Err(alloc::format!("{path}: no such file on {on}"))
    }

    /// `create`: vmctl's messages; a copy (`-i`) says how far it is every tenth.
    fn create(&mut self, args: crate::create::CreateArgs) {
        let Some(storage) = self.storage.as_ref() else {
            let _ = writeln!(self.term, "vmctl: create imagefile operation failed: no datastore");
            return;
        };
        let client = storage.client.clone();
        let term = &mut self.term;
        let mut shown = 0;
        let mut progress = |done: u64, total: u64| {
            let tenth = (done.saturating_mul(10) / total.max(1)).min(10);
            if tenth > shown {
                shown = tenth;
                let _ = writeln!(term, "vmctl: copying {}%", tenth * 10);
            }
        };
        match crate::create::run(&client, &args, &mut progress) {
            Ok(line) => {
                let _ = writeln!(self.term, "vmctl: {line}");
            }
            Err(e) => {
                let _ = writeln!(self.term, "vmctl: create imagefile operation failed: {e}");
            }
        }
    }

    /// `spawn [-s] program`: start a boot-module program; with `storage`, its handles 1 to 3 are
    /// a channel to the storage service with every file (keel_rt::storage::StorageClient).
    fn spawn(&mut self, program: String, storage: bool) {
        let client = match (storage, self.storage.as_mut()) {
            (false, _) => None,
            (true, Some(s)) => match s.attach(&keel_storeproto::Grants::All) {
                Ok(handles) => Some(handles),
                Err(e) => {
                    let _ = writeln!(self.term, "spawn: {program}: {e}");
                    return;
                }
            },
            (true, None) => {
                let _ = writeln!(self.term, "spawn: {program}: no storage service");
                return;
            }
        };
        let grants = client.as_ref().map(|c| c.grants());
        let started = sys::process_spawn_with(
            HANDLE_MODULES,
            &program,
            self.notify,
            BIT_CHILD,
            grants.as_ref().map_or(&[], |g| g),
        );
        if let Some(c) = &client {
            c.close();
        }
        match started {
            Ok((handle, pid)) => {
                let _ = writeln!(self.term, "vmd: started process {pid} ({program})");
                let storage_client = client.map(|c| c.number);
                self.children.push(Child { handle, pid, name: program, storage_client });
            }
            Err(e) => {
                if let (Some(c), Some(s)) = (client, self.storage.as_mut()) {
                    s.detach(c.number);
                }
                let _ = writeln!(self.term, "spawn: {program}: {e}");
            }
        }
    }

    /// One byte typed on the serial port.
    pub fn input(&mut self, byte: u8) {
        if let Some(i) = self.attached {
            self.console_input(i, byte);
            return;
        }
        let event = self.editor.feed(byte, self.term.raw_buf());
        match event {
            Some(EditorEvent::Line(line)) => {
                if let Some((disk, force)) = self.pending_newfs.take() {
                    self.newfs_confirmed(&disk, force, &line);
                    if self.attached.is_none() {
                        self.term.text(PROMPT);
                    }
                    return;
                }
                match parse(&line) {
                    Ok(command) => self.execute(command),
                    Err(e) => {
                        let _ = writeln!(self.term, "{e}");
                    }
                }
                if self.attached.is_none() {
                    self.term.text(PROMPT);
                }
            }
            Some(EditorEvent::Interrupt) => self.term.text(PROMPT),
            None => {}
        }
    }

    fn console_input(&mut self, i: usize, byte: u8) {
        let mut to_guest = Vec::new();
        let action = self.vms.vms[i].console.user_input(byte, &mut to_guest);
        if let (false, Some(r)) = (to_guest.is_empty(), &self.vms.vms[i].running) {
            r.control.to_guest.push(&to_guest);
            let _ = sys::notify_signal(r.to_monitor, 1);
        } else if !to_guest.is_empty() {
            let vm = &mut self.vms.vms[i];
            vm.loopback.write(&to_guest);
            // The loopback "guest" answers at once with what it was sent.
            let mut echo = vec![0u8; vm.loopback.len()];
            let n = vm.loopback.read(&mut echo);
            vm.console.guest_output(&echo[..n], self.term.raw_buf());
        }
        match action {
            EscapeAction::Continue => {}
            EscapeAction::Help => self.term.raw(keel_shell::mux::ESCAPE_HELP.as_bytes()),
            EscapeAction::Detach => {
                self.attached = None;
                self.term.text("\n[EOT]\n");
                self.term.text(PROMPT);
            }
        }
    }

    /// New kernel log lines: shown at the prompt (above the line being typed) unless a console
    /// is attached; `log brief` hides debug lines.
    pub fn show_new_kernel_log(&mut self) {
        if self.attached.is_some() {
            return; // kept in the ring buffer: `dmesg` shows it later
        }
        let mut buf = vec![0u8; 4096];
        let mut text = String::new();
        while let Ok((n, end)) = sys::klog_read(HANDLE_CONSOLE, self.klog_pos, &mut buf) {
            self.klog_pos = end;
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| self.log_verbose || !(l.starts_with("debug: ") || l.starts_with("trace: ")))
            .collect();
        if lines.is_empty() {
            return;
        }
        self.term.raw(b"\r\x1b[K");
        for l in lines {
            self.term.line(l);
        }
        self.editor.redraw(PROMPT, self.term.raw_buf());
    }

    /// A monitor has news: console output, or a state change.
    pub fn vm_news(&mut self) {
        let mut buf = vec![0u8; 4096];
        for (i, vm) in self.vms.vms.iter_mut().enumerate() {
            let Some(r) = &vm.running else { continue };
            loop {
                let n = r.control.to_vmd.pop(&mut buf);
                if n == 0 {
                    break;
                }
                let attached = self.attached == Some(i);
                if attached {
                    vm.console.guest_output(&buf[..n], self.term.raw_buf());
                } else {
                    vm.console.guest_output(&buf[..n], &mut Vec::new());
                }
            }
        }
        self.reap_children();
    }

    /// A monitor exited: the VM is stopped; say why.
    fn reap_monitors(&mut self) {
        let mut report = String::new();
        let mut reboot = Vec::new();
        for i in 0..self.vms.vms.len() {
            let Some(r) = &self.vms.vms[i].running else { continue };
            let Ok(status) = sys::process_wait(r.process) else { continue };
            // Output still in the ring first.
            let mut buf = vec![0u8; keel_vmproto::OUT_RING];
            let n = r.control.to_vmd.pop(&mut buf);
            let stopped_cleanly =
                r.control.state.load(core::sync::atomic::Ordering::Acquire) == keel_vmproto::state::STOPPED;
            let reason = if stopped_cleanly {
                r.reason()
            } else {
                match status {
                    ExitStatus::Killed { vector: 0xff } => String::from("its monitor was killed"),
                    ExitStatus::Killed { vector } => alloc::format!("its monitor crashed (CPU exception {vector})"),
                    ExitStatus::Exited(code) => alloc::format!("its monitor exited with code {code}"),
                }
            };
            let code = r.control.exit_code.load(core::sync::atomic::Ordering::Relaxed);
            let r = self.vms.vms[i].running.take().expect("checked");
            let _ = sys::handle_close(r.process);
            let _ = sys::handle_close(r.to_monitor);
            if let (Some(number), Some(storage)) = (r.storage_client, self.storage.as_mut()) {
                storage.detach(number);
            }
            let attached = self.attached == Some(i);
            let vm = &mut self.vms.vms[i];
            if attached {
                vm.console.guest_output(&buf[..n], self.term.raw_buf());
            } else {
                vm.console.guest_output(&buf[..n], &mut Vec::new());
            }
            if stopped_cleanly && code == keel_vmproto::EXIT_REBOOT {
                let _ = writeln!(report, "vmd: vm {} is rebooting", vm.config.name);
                reboot.push(vm.id);
            } else {
                let _ = writeln!(report, "vmd: vm {} stopped: {reason} (status {code})", vm.config.name);
            }
            vm.last_stop = Some(reason);
        }
        if !report.is_empty() {
            if self.attached.is_some() {
                self.term.text("\n");
                self.term.text(&report);
            } else {
                self.term.raw(b"\r\x1b[K");
                self.term.text(&report);
                self.editor.redraw(PROMPT, self.term.raw_buf());
            }
        }
        for id in reboot {
            self.start_vm(keel_shell::StartArgs::new(Target::Id(id)));
        }
    }

    /// A child process exited: report it.
    pub fn reap_children(&mut self) {
        self.reap_monitors();
        let mut i = 0;
        let mut report = String::new();
        while i < self.children.len() {
            match sys::process_wait(self.children[i].handle) {
                Ok(status) => {
                    let c = self.children.swap_remove(i);
                    let how = match status {
                        ExitStatus::Exited(code) => alloc::format!("exited with code {code}"),
                        ExitStatus::Killed { vector: 0xff } => String::from("was killed"),
                        ExitStatus::Killed { vector } => {
                            alloc::format!("was killed by the kernel (CPU exception {vector})")
                        }
                    };
                    let _ = writeln!(report, "vmd: process {} ({}) {how}", c.pid, c.name);
                    let _ = sys::handle_close(c.handle);
                    if let (Some(number), Some(storage)) = (c.storage_client, self.storage.as_mut()) {
                        storage.detach(number);
                    }
                }
                Err(_) => i += 1,
            }
        }
        if !report.is_empty() && self.attached.is_none() {
            self.term.raw(b"\r\x1b[K");
            self.term.text(&report);
            self.editor.redraw(PROMPT, self.term.raw_buf());
        }
    }

    fn info(&mut self, kind: InfoKind) {
        self.term.text(&crate::info::report(kind));
    }

    fn execute(&mut self, command: Command) {
        match command {
            Command::Empty => {}
            Command::Help(None) => self.term.line(keel_shell::help_text()),
            Command::Help(Some(verb)) => self.term.line(keel_shell::verb_help(verb).unwrap_or("no help for that verb")),
            Command::Version => self.info(InfoKind::Version),
            Command::Cpus => self.info(InfoKind::Cpus),
            Command::Mem => self.info(InfoKind::Memory),
            Command::Stats => self.stats(),
            Command::Disks => match self.storage.as_mut().map(|s| s.client.disks()) {
                Some(Ok(text)) => self.term.text(&text),
                Some(Err(e)) => {
                    let _ = writeln!(self.term, "disks: {e}");
                }
                None => self.term.line("disks: no storage service"),
            },
            Command::Newfs { disk, force } => {
                if self.storage.is_none() {
                    self.term.line("newfs: no storage service");
                } else {
                    let _ = writeln!(self.term, "newfs: make {disk} a datastore? Everything on it is lost. [y/N]");
                    self.pending_newfs = Some((disk, force));
                }
            }
            Command::Ls(path) => {
                let path = path.unwrap_or_else(|| String::from("/"));
                match self.storage.as_mut().map(|s| s.client.list(&path)) {
                    Some(Ok(entries)) => self.term.text(&crate::storage::format_entries(&entries)),
                    Some(Err(e)) => {
                        let _ = writeln!(self.term, "ls: {e}");
                    }
                    None => self.term.line("ls: no storage service"),
                }
            }
            Command::Reboot => {
                self.term.flush();
                if let Err(e) = sys::reboot(HANDLE_SYSTEM) {
                    let _ = writeln!(self.term, "reboot: {e}");
                }
            }
            Command::Show(target) => self.show(target),
            Command::Start(args) => self.start_vm(args),
            Command::Stop { target, force, .. } => self.stop(&target, force),
            Command::Pause(target) => self.pause(&target, true),
            Command::Unpause(target) => self.pause(&target, false),
            Command::Wait(target) => self.for_each_vm(&target, "waiting for vm", "vm not running"),
            Command::Console(target) => self.attach(&target),
            Command::Reset(what) => {
                let what = match what {
                    ResetWhat::All => "all",
                    ResetWhat::Switches => "switches",
                    ResetWhat::Vms => "vms",
                };
                let _ = writeln!(self.term, "reset {what}: no running VMs or switches to reset");
            }
            Command::Load(file) => self.load(Some(&file), true),
            Command::Reload => self.load(None, false),
            Command::Log { verbose } => {
                self.log_verbose = verbose;
                let _ = writeln!(
                    self.term,
                    "log: {}",
                    if verbose { "verbose (kernel debug lines shown)" } else { "brief" }
                );
            }
            Command::Dmesg => self.dmesg(),
            Command::Spawn { program, storage } => self.spawn(program, storage),
            Command::Create { path, size, base, input } => {
                self.create(crate::create::CreateArgs { path, size, base, input })
            }
            Command::Kill(pid) => match self.children.iter().find(|c| c.pid == u64::from(pid)) {
                Some(c) => {
                    if let Err(e) = sys::process_kill(c.handle) {
                        let _ = writeln!(self.term, "kill: {pid}: {e}");
                    }
                }
                None => self.kill_monitor(pid),
            },
        }
    }

    /// `kill PID` for a VM's monitor (the PID column of `show`): the VM stops as if its monitor
    /// had crashed, and the shell reports it once the process is gone (`reap_monitors`).
    fn kill_monitor(&mut self, pid: u32) {
        let monitor = self.vms.vms.iter().find_map(|v| {
            v.running.as_ref().filter(|r| r.pid == u64::from(pid)).map(|r| (v.config.name.clone(), r.process))
        });
        match monitor {
            Some((name, process)) => match sys::process_kill(process) {
                Ok(()) => {
                    let _ = writeln!(self.term, "kill: killed process {pid}, the monitor of vm {name}");
                }
                Err(e) => {
                    let _ = writeln!(self.term, "kill: {pid}: {e}");
                }
            },
            None => {
                let _ = writeln!(self.term, "kill: no process {pid} started from this shell or running a vm");
            }
        }
    }

    /// `stats`: the kernel's counters, the first prompt's TSC, and the running VMs' RAM.
    fn stats(&mut self) {
        self.info(InfoKind::Stats);
        let _ = writeln!(self.term, "boot: first prompt at tsc {}", self.prompt_tsc);
        for vm in self.vms.vms.iter().filter(|v| v.running.is_some()) {
            let _ = writeln!(self.term, "vm {}: running, {} bytes of RAM", vm.config.name, vm.memory());
        }
    }

    fn show(&mut self, target: Option<Target>) {
        let indices = match &target {
            None => (0..self.vms.vms.len()).collect(),
            Some(t) => self.vms.select(t),
        };
        if let (Some(t), true) = (&target, indices.is_empty()) {
            let _ = writeln!(self.term, "vmctl: no such vm: {}", describe(t));
            return;
        }
        let rows: Vec<_> = indices.iter().map(|&i| self.vms.vms[i].row()).collect();
        let table = format_show(&rows);
        self.term.text(&table);
        // `show NAME` of a stopped VM also says why it stopped (vmctl's table has no column for it).
        if let (Some(Target::Id(_) | Target::Name(_)), [i]) = (&target, indices.as_slice()) {
            let vm = &self.vms.vms[*i];
            if let (None, Some(reason)) = (&vm.running, &vm.last_stop) {
                let _ = writeln!(self.term, "vm {} stopped: {reason}", vm.config.name);
            }
            // Its disks and CD-ROM: what the running VM has, else what vm.conf gives it.
            let lines: Vec<String> = match &vm.running {
                Some(r) => {
                    let disks = r.files.disks.iter().enumerate().map(|(n, d)| alloc::format!("disk {n}: {d}"));
                    let cdrom = (!r.files.cdrom.is_empty()).then(|| alloc::format!("cdrom: {}", r.files.cdrom));
                    disks.chain(cdrom).collect()
                }
                None => {
                    let disks = vm.config.disks.iter().enumerate().map(|(n, d)| match d.format {
                        Some(f) => alloc::format!("disk {n}: {f}:{}", d.path),
                        None => alloc::format!("disk {n}: {}", d.path),
                    });
                    disks.chain(vm.config.cdrom.iter().map(|c| alloc::format!("cdrom: {c}"))).collect()
                }
            };
            for line in lines {
                self.term.line(&line);
            }
        }
    }

    /// vmctl's per-VM reply: "stopping vm NAME: RESULT".
    fn for_each_vm(&mut self, target: &Target, doing: &str, result: &str) {
        let indices = self.vms.select(target);
        if indices.is_empty() {
            let what = if *target == Target::All {
                String::from("no vms configured")
            } else {
                alloc::format!("no such vm: {}", describe(target))
            };
            let _ = writeln!(self.term, "vmctl: {what}");
            return;
        }
        for i in indices {
            let _ = writeln!(self.term, "{doing} {}: {result}", self.vms.vms[i].name());
        }
    }

    fn start_vm(&mut self, args: keel_shell::StartArgs) {
        // `start -m`: checked by the shell already; again here, by the same rule, before any change.
        let memory = match args.memory.map(keel_vmlimits::check_memory).transpose() {
            Ok(m) => m,
            Err(e) => {
                let _ = writeln!(self.term, "vmctl: start vm command failed: {e}");
                return;
            }
        };
        let name = describe(&args.name);
        // Everything is checked before the table changes: a refused start leaves no new VM behind
        // and no changed image or memory size.
        let existing = self.vms.find(&args.name);
        match existing {
            Some(i) if self.vms.vms[i].running.is_some() => {
                let vm_name = &self.vms.vms[i].config.name;
                let _ = writeln!(self.term, "vmctl: start vm command failed: vm {vm_name} is already running");
                return;
            }
            Some(_) => {}
            None => {
                let (Target::Name(new_name), Some(_)) = (&args.name, &args.boot) else {
                    let _ = writeln!(
                        self.term,
                        "vmctl: start vm command failed: no vm '{name}' in {CONFIG_FILE} (or give -b and -m)"
                    );
                    return;
                };
                // The shell checked the name by the rule vm.conf uses (keel-vmlimits); vmd checks
                // again rather than trust that every way in did.
                if let Err(e) = keel_vmlimits::check_vm_name(new_name) {
                    let shown = alloc::format!("'{}'", new_name.escape_default());
                    let _ = writeln!(self.term, "vmctl: start vm command failed: {}", e.message("VM name", &shown));
                    return;
                }
            }
        }
        let configured = existing.map(|i| &self.vms.vms[i].config);
        if args.boot.is_none() && configured.is_none_or(|c| c.boot.is_none()) {
            let vm_name = configured.map_or(name.as_str(), |c| c.name.as_str());
            let _ = writeln!(
                self.term,
                "vmctl: start vm command failed: vm {vm_name} has no boot image (boot in vm.conf, or start -b)"
            );
            return;
        }
        // Its RAM must fit in what is free now: said here, rather than by a monitor that fails.
        let asked = memory.or(configured.and_then(|c| c.memory)).unwrap_or(keel_vmlimits::DEFAULT_MEMORY);
        if let Ok(free) = sys::free_memory() {
            if asked > free {
                let short = keel_vmlimits::NotEnoughMemory { asked, free };
                let _ = writeln!(self.term, "vmctl: start vm command failed: {short}");
                return;
            }
        }
        // So must every file it needs.
        let boot_path = args.boot.clone().or_else(|| configured.and_then(|c| c.boot.clone())).unwrap_or_default();
        let initrd_path = configured.and_then(|c| c.initrd.clone());
        let files = self.locate(&boot_path).and_then(|image| {
            let initrd = initrd_path.as_deref().map(|p| self.locate(p)).transpose()?;
            Ok((image, initrd.unwrap_or_default()))
        });
        let (image, initrd) = match files {
            Ok(found) => found,
            Err(e) => {
                let _ = writeln!(self.term, "vmctl: start vm command failed: {e}");
                return;
            }
        };
        // Its disks and CD-ROM: on the datastore, readable, and not written by another VM.
        let vm_files = match self.vm_files(&args, existing) {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(self.term, "vmctl: start vm command failed: {e}");
                return;
            }
        };
        let index = match existing {
            Some(i) => i,
            // A new VM is `start -b ... name` (checked above).
            None => {
                let Target::Name(new_name) = &args.name else { return };
                let config = keel_vmconf::VmConfig { name: new_name.clone(), ..Default::default() };
                self.vms.add(config)
            }
        };
        let vm = &mut self.vms.vms[index];
        if let Some(b) = &args.boot {
            vm.config.boot = Some(b.clone());
        }
        if let Some(m) = memory {
            vm.config.memory = Some(m);
        }
        let cmdline = vm.config.cmdline.clone().unwrap_or_else(|| String::from("console=ttyS0"));
        let spec = crate::running::Boot { image, initrd, cmdline };
        // A monitor whose files are on the datastore reads them through a channel of its own,
        // limited to those files, read-only.
        let mut on_datastore: Vec<(String, bool)> = [&spec.image, &spec.initrd]
            .into_iter()
            .filter(|f| f.starts_with('/'))
            .map(|f| (f.clone(), false))
            .collect();
        on_datastore.extend(vm_files.grants());
        let client = match (on_datastore.is_empty(), self.storage.as_mut()) {
            (false, Some(s)) => match s.attach(&keel_storeproto::Grants::Files(on_datastore)) {
                Ok(handles) => Some(handles),
                Err(e) => {
                    let _ = writeln!(self.term, "vmctl: start vm command failed: {e}");
                    return;
                }
            },
            _ => None,
        };
        let vm = &mut self.vms.vms[index];
        let started = crate::running::Running::start(
            self.notify,
            vm.id,
            &vm.config.name.clone(),
            &spec,
            vm.memory(),
            client.as_ref(),
            vm_files,
        );
        if let Some(c) = &client {
            c.close();
            if started.is_err() {
                if let Some(s) = self.storage.as_mut() {
                    s.detach(c.number);
                }
            }
        }
        let vm = &mut self.vms.vms[index];
        match started {
            Ok(r) => {
                vm.running = Some(r);
                vm.last_stop = None;
                let _ = writeln!(self.term, "vmctl: started vm {} successfully, tty /dev/{}", vm.id, vm.tty());
                if args.console {
                    self.attach(&Target::Id(self.vms.vms[index].id));
                }
            }
            Err(e) => {
                let _ = writeln!(self.term, "vmctl: start vm command failed: {e}");
            }
        }
    }

    /// The disks and CD-ROM `start` gives the VM (`-d`/`-r`, else vm.conf's), checked.
    fn vm_files(&mut self, args: &keel_shell::StartArgs, existing: Option<usize>) -> Result<VmFiles, String> {
        let configured = existing.map(|i| &self.vms.vms[i].config);
        let disks: Vec<String> = if args.disks.is_empty() {
            let listed = configured.map(|c| c.disks.as_slice()).unwrap_or_default();
            listed
                .iter()
                .map(|d| match d.format {
                    Some(f) => alloc::format!("{f}:{}", d.path),
                    None => d.path.clone(),
                })
                .collect()
        } else {
            args.disks.clone()
        };
        let cdrom = args.cdrom.clone().or_else(|| configured.and_then(|c| c.cdrom.clone()));
        if disks.is_empty() && cdrom.is_none() {
            return Ok(VmFiles::default());
        }
        let storage = self.storage.as_ref().ok_or_else(|| String::from("disks and CD-ROMs need a datastore"))?;
        let files = VmFiles::gather(&storage.client, &disks, cdrom.as_deref())?;
        for other in &self.vms.vms {
            if let Some(running) = &other.running {
                if let Some(path) = files.conflict(&running.files) {
                    return Err(alloc::format!("{path}: in use by vm {}", other.name()));
                }
            }
        }
        Ok(files)
    }

    /// vmctl's `stop`: "stopping vm NAME: requested to shutdown vm ID" (or forced).
    fn stop(&mut self, target: &Target, force: bool) {
        let indices = self.vms.select(target);
        if indices.is_empty() {
            let _ = writeln!(self.term, "vmctl: no such vm: {}", describe(target));
            return;
        }
        for i in indices {
            let vm = &self.vms.vms[i];
            match &vm.running {
                None if *target == Target::All => {}
                None => {
                    let _ = writeln!(self.term, "stopping vm {}: vm not running", vm.config.name);
                }
                Some(r) if force => {
                    let _ = sys::process_kill(r.process);
                    let _ = writeln!(self.term, "stopping vm {}: forced to terminate vm {}", vm.config.name, vm.id);
                }
                Some(r) => {
                    r.ask(keel_vmproto::request::STOP);
                    let _ = writeln!(self.term, "stopping vm {}: requested to shutdown vm {}", vm.config.name, vm.id);
                }
            }
        }
    }

    fn pause(&mut self, target: &Target, pause: bool) {
        let Some(i) = self.vms.find(target) else {
            let _ = writeln!(self.term, "vmctl: no such vm: {}", describe(target));
            return;
        };
        let vm = &self.vms.vms[i];
        let verb = if pause { "pause" } else { "unpause" };
        match &vm.running {
            None => {
                let _ = writeln!(self.term, "vmctl: {verb} vm command failed: vm {} is not running", vm.config.name);
            }
            Some(r) => {
                r.ask(if pause { keel_vmproto::request::PAUSE } else { keel_vmproto::request::UNPAUSE });
                let _ = writeln!(self.term, "vmctl: {verb}d vm {} successfully", vm.id);
            }
        }
    }

    fn attach(&mut self, target: &Target) {
        let Some(i) = self.vms.find(target) else {
            let _ = writeln!(self.term, "vmctl: no such vm: {}", describe(target));
            return;
        };
        let vm = &mut self.vms.vms[i];
        if let Some(reason) = vm.running.is_none().then_some(()).and(vm.last_stop.as_ref()) {
            let _ =
                writeln!(self.term, "vm {} is stopped ({reason}); its console shows what it printed", vm.config.name);
        }
        let _ = writeln!(self.term, "Connected to /dev/{} (speed 115200)", vm.tty());
        let lost = vm.console.attach(self.term.raw_buf());
        if lost > 0 {
            let _ = writeln!(self.term, "[{lost} bytes of console output were lost while detached]");
        }
        self.attached = Some(i);
    }

    /// Read a configuration file: `file`, or the default one (`/etc/vm.conf` on the datastore
    /// when it is there, else the boot media's `vm.conf`). Returns the name to show with it.
    fn load_config(&mut self, file: Option<&str>) -> (String, Result<Config, String>) {
        if let Some(storage) = self.storage.as_mut().map(|s| &mut s.client) {
            let path = file.unwrap_or(DATASTORE_CONFIG_FILE);
            match storage.file_size(path) {
                Ok(Some(_)) => return (String::from(path), config::load_from_datastore(storage, path)),
                // Not on the datastore (or none): the boot media may have it.
                Ok(None) => {}
                Err(e) => {
                    let _ = writeln!(self.term, "vmd: datastore: {e}; using the boot media");
                }
            }
        }
        let file = file.unwrap_or(CONFIG_FILE);
        (String::from(file), config::load(file))
    }

    fn load(&mut self, file: Option<&str>, merge: bool) {
        let (file, loaded) = self.load_config(file);
        match loaded {
            Ok(new) => {
                let before =
                    Config { vms: self.vms.vms.iter().map(|v| v.config.clone()).collect(), ..self.config.clone() };
                if merge {
                    self.vms.merge(&new);
                } else {
                    self.vms.apply(&new);
                }
                let after = Config { vms: self.vms.vms.iter().map(|v| v.config.clone()).collect(), ..new.clone() };
                let changes = keel_vmconf::diff(&before, &after);
                if changes.is_empty() {
                    let _ = writeln!(self.term, "vmd: {file}: no changes");
                }
                for c in changes {
                    let _ = writeln!(self.term, "vmd: {file}: {c}");
                }
                self.config = after;
            }
            Err(e) => {
                let _ = writeln!(self.term, "vmd: {e}");
                let _ = writeln!(self.term, "vmd: configuration not changed");
            }
        }
    }

    fn dmesg(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        match sys::klog_read(HANDLE_CONSOLE, 0, &mut buf) {
            Ok((n, _)) => self.term.text(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => {
                let _ = writeln!(self.term, "dmesg: {e}");
            }
        }
    }
}
