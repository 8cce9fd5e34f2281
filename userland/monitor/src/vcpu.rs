//! Boot the guest and run its vCPU: the `VcpuRun` loop, exit handling, interrupt delivery from
//! the interrupt controllers, console traffic with vmd, and vmd's requests.

use alloc::string::String;

use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use keel_abi::vcpu::{dirty, reg, seg, ExitKind, VcpuState, INJECT_INTERRUPT};
use keel_addr::Gpa;
use keel_rt::sys;
use keel_vcpupage::VcpuPage;
use keel_vmproto::{request, state, ControlArea};

use crate::control::text;
use crate::events;
use keel_devices::WriteEffect;

use crate::platform::Platform;
use crate::ram::GuestRam;
use crate::{H_MODULES, H_VMD, VMD_BIT_VM};

/// Where the kernel maps the vCPU state page in this process.
const STATE_ADDR: u64 = 0x0000_7000_0000_0000;

fn err(what: &str, e: keel_abi::Error) -> String {
    alloc::format!("{what}: {e}")
}

/// A boot file read into memory mapped for it (images can be larger than the heap).
pub struct FileBuf {
    addr: u64,
    map_len: u64,
    len: usize,
}

impl FileBuf {
    fn new(len: usize) -> Result<FileBuf, String> {
        let map_len = (len as u64).div_ceil(4096).max(1) * 4096;
        let addr = sys::mem_map(0, map_len, keel_abi::prot::READ | keel_abi::prot::WRITE)
            .map_err(|e| err("memory for the boot image", e))?;
        Ok(FileBuf { addr, map_len, len })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `addr..addr+map_len` was mapped read-write for this buffer alone and stays mapped
        // until Drop; `len <= map_len`.
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }
}

impl core::ops::Deref for FileBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: as in as_mut_slice; shared access while `self` is borrowed.
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }
}

impl Drop for FileBuf {
    fn drop(&mut self) {
        let _ = sys::mem_unmap(self.addr, self.map_len);
    }
}

/// The largest boot image or initrd read.
const IMAGE_LIMIT: u64 = 256 << 20;

/// A boot file: a path on the datastore (starting with `/`, read through the storage channel
/// vmd granted, which allows exactly this VM's files) or a boot module's name.
fn read_image(name: &str) -> Result<FileBuf, String> {
    if name.starts_with('/') {
        return read_datastore_image(name);
    }
    read_module_image(name)
}

fn read_datastore_image(path: &str) -> Result<FileBuf, String> {
    use crate::{H_STORAGE_CHANNEL, H_STORAGE_REPLIES, H_STORAGE_REQUESTS};
    let mut storage =
        keel_rt::storage::StorageClient::from_handles(H_STORAGE_CHANNEL, H_STORAGE_REQUESTS, H_STORAGE_REPLIES)?;
    let file = storage.open(path, false, false)?;
    let read = if file.size > IMAGE_LIMIT {
        Err(alloc::format!("boot image '{path}' is too large ({} bytes)", file.size))
    } else {
        FileBuf::new(file.size as usize).and_then(|mut buf| {
            let n = storage.read_all(file, buf.as_mut_slice())?;
            if n as u64 != file.size {
                return Err(alloc::format!("boot image '{path}': read {n} of {} bytes", file.size));
            }
            Ok(buf)
        })
    };
    let _ = storage.close(file);
    read
}

fn read_module_image(name: &str) -> Result<FileBuf, String> {
    let size = sys::module_size(H_MODULES, name).map_err(|e| match e {
        keel_abi::Error::NotFound => alloc::format!("boot image '{name}' is not on the boot media"),
        e => err("boot image", e),
    })?;
    if size > IMAGE_LIMIT {
        return Err(alloc::format!("boot image '{name}' is too large ({size} bytes)"));
    }
    let mut buf = FileBuf::new(size as usize)?;
    let bytes = buf.as_mut_slice();
    let mut done = 0;
    while done < bytes.len() {
        let end = (done + keel_abi::MAX_IO as usize).min(bytes.len());
        let n =
            sys::module_read(H_MODULES, name, done as u64, &mut bytes[done..end]).map_err(|e| err("boot image", e))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(buf)
}

/// A firmware image: read-only at the top of the 4 GiB space (writes there are MMIO exits the
/// monitor drops, as for a ROM), and its last 128 KiB copied below 1 MiB, where a PC's BIOS shadow
/// is. See: docs/guests.md.
fn load_firmware(vm: u32, ram: &GuestRam, image: &[u8]) -> Result<(), String> {
    let size = (image.len() as u64).div_ceil(4096) * 4096;
    let shm = sys::shm_create(size).map_err(|e| err("firmware memory", e))?;
    let addr =
        sys::shm_map(shm, 0, keel_abi::prot::READ | keel_abi::prot::WRITE).map_err(|e| err("firmware memory", e))?;
    // SAFETY: `addr..addr+size` was just mapped read-write for us; the image is copied to its end.
    unsafe {
        core::ptr::copy_nonoverlapping(image.as_ptr(), (addr + size - image.len() as u64) as *mut u8, image.len())
    };
    let gpa = Gpa((1u64 << 32) - size);
    sys::vm_map(vm, shm, gpa, keel_abi::vcpu::gprot::READ | keel_abi::vcpu::gprot::EXEC)
        .map_err(|e| err("firmware mapping", e))?;
    let alias = image.len().min(128 * 1024);
    if !ram.write(Gpa(0x10_0000 - alias as u64), &image[image.len() - alias..]) {
        return Err(String::from("firmware needs at least 1 MiB of memory"));
    }
    Ok(())
}

/// An ELF (or firmware) image, docs/guests.md.
fn load_image(vm: u32, ram: &GuestRam, image_name: &str, image: &[u8], memory: u64) -> Result<VcpuState, String> {
    let plan = keel_guestboot::plan(image, memory).map_err(|e| alloc::format!("{image_name}: {e}"))?;
    if plan.kind == keel_guestboot::Kind::Firmware {
        load_firmware(vm, ram, image)?;
        return Ok(keel_guestboot::initial_state(&plan, memory));
    }
    for piece in &plan.pieces {
        if !ram.write(piece.gpa, piece.data) || !ram.zero(piece.gpa + piece.data.len() as u64, piece.zero) {
            return Err(String::from("image does not fit in memory"));
        }
    }
    for (i, e) in keel_guestboot::gdt().iter().enumerate() {
        ram.write(keel_guestboot::GDT_ADDR + 8 * i as u64, &e.to_le_bytes());
    }
    if plan.kind == keel_guestboot::Kind::Elf64 {
        for (gpa, e) in keel_guestboot::page_table_entries() {
            ram.write(gpa, &e.to_le_bytes());
        }
    }
    Ok(keel_guestboot::initial_state(&plan, memory))
}

/// A Linux bzImage by the boot protocol, with the initrd and command line vmd passed.
fn load_linux(
    ctl: &ControlArea,
    ram: &GuestRam,
    image_name: &str,
    image: &[u8],
    memory: u64,
) -> Result<VcpuState, String> {
    use keel_guestboot::linux;
    let initrd_name = text(&ctl.initrd);
    let initrd = if initrd_name.is_empty() { None } else { Some(read_image(&initrd_name)?) };
    let initrd: &[u8] = initrd.as_deref().unwrap_or(&[]);
    let cmdline = text(&ctl.cmdline);
    let plan =
        linux::plan(image, initrd.len() as u64, &cmdline, memory).map_err(|e| alloc::format!("{image_name}: {e}"))?;
    // ACPI tables where a BIOS would leave them (Linux scans 0xE0000-0xFFFFF for the RSDP):
    // the PM block for `poweroff`, the reset register, the PCI root bridge and its interrupts,
    // and the MADT for the local APIC and the I/O APIC (wired as keel-devices' irqchip).
    let mut layout = keel_acpitables::Layout::default();
    if let Some(pci) = layout.pci.as_mut() {
        pci.slot_irqs = crate::platform::pci_slot_irqs();
    }
    let madt_layout = keel_acpitables::madt::MadtLayout {
        level_irqs: core::iter::once(layout.sci_irq)
            .chain((0..16).filter(|irq| crate::platform::pci_irqs() & (1 << irq) != 0))
            .collect(),
        io_apic_id: 0,
    };
    layout.extra_tables.push(keel_acpitables::madt::madt(&madt_layout, &layout.oem_id));
    let acpi = keel_acpitables::build(keel_acpitables::RSDP_ADDR, &layout)
        .map_err(|e| alloc::format!("ACPI tables: {e:?}"))?;
    if !ram.write(keel_acpitables::RSDP_ADDR, &acpi) {
        return Err(String::from("no room for the ACPI tables"));
    }
    let fits = ram.write(plan.kernel_addr, plan.kernel)
        && ram.write(linux::ZERO_PAGE, &plan.zero_page)
        && ram.write(linux::CMDLINE_ADDR, &plan.cmdline)
        && (initrd.is_empty() || ram.write(plan.initrd_addr, initrd));
    if !fits {
        return Err(String::from("the kernel and initrd do not fit in memory"));
    }
    for (i, e) in linux::gdt().iter().enumerate() {
        ram.write(keel_guestboot::GDT_ADDR + 8 * i as u64, &e.to_le_bytes());
    }
    for (gpa, e) in keel_guestboot::page_table_entries() {
        ram.write(gpa, &e.to_le_bytes());
    }
    Ok(linux::initial_state(&plan))
}

/// Load the image and start the guest; returns the process exit code when the VM stops.
pub fn boot_and_run(ctl: &'static ControlArea) -> Result<i32, String> {
    let name = text(&ctl.name);
    let image_name = text(&ctl.image);
    let memory = ctl.memory.load(Ordering::Relaxed);
    let image = read_image(&image_name)?;
    let vm = sys::vm_create().map_err(|e| match e {
        keel_abi::Error::NotSupported => String::from("this machine has no usable hardware virtualization"),
        e => err("cannot create the VM", e),
    })?;
    // Free memory before the RAM is taken: what the message compares the size with.
    let free = sys::free_memory();
    let ram = GuestRam::create(vm, memory).map_err(|e| match (e, free) {
        (keel_abi::Error::NoMemory, Ok(free)) => {
            alloc::format!("{}", keel_vmlimits::NotEnoughMemory { asked: memory, free })
        }
        (e, _) => err("cannot allocate guest memory", e),
    })?;
    let initial = if keel_guestboot::linux::is_bzimage(&image) {
        load_linux(ctl, &ram, &image_name, &image, memory)?
    } else {
        load_image(vm, &ram, &image_name, &image, memory)?
    };
    drop(image);

    let vcpu = sys::vcpu_create(vm, STATE_ADDR).map_err(|e| err("cannot create the vCPU", e))?;
    let page = NonNull::new(STATE_ADDR as *mut VcpuState).expect("STATE_ADDR is not 0");
    // SAFETY: the kernel mapped this vCPU's state page (one page, a VcpuState) read-write at
    // STATE_ADDR for the life of the vCPU handle, which this process never closes; nothing here
    // forms a reference into it. Only this thread uses it, and the kernel writes it during our
    // own VcpuRun calls.
    let st = unsafe { VcpuPage::new(page) };
    st.store_all(&initial);

    let wake = sys::notify_create().map_err(|e| err("notification", e))?;
    events::VCPU.store(vcpu, Ordering::Relaxed);
    events::WAKE.store(wake, Ordering::Relaxed);
    events::start().map_err(|e| err("cannot start the event thread", e))?;

    // The platform's tables are checked here: an overlap of two devices stops the VM with the
    // reason before it runs.
    let disks = crate::disks::open_all(ctl)?;
    let platform = Platform::new(name, disks)?;
    ctl.state.store(state::RUNNING, Ordering::Release);
    let _ = sys::notify_signal(H_VMD, VMD_BIT_VM);
    let mut m = Monitor {
        ctl,
        served: Served::default(),
        platform,
        ram,
        st,
        vcpu,
        wake,
        paused: false,
        out: Vec::new(),
        exit_ns: None,
        pit_next: 0,
        next_timer: 0,
        offered: false,
    };
    let (code, reason) = m.run();
    if let Some(each) = m.served.busy.checked_div(m.served.timed) {
        keel_rt::io::debug(format_args!(
            "monitor: {} device notifications served, {each} instructions each from the guest's exit to its next entry (idle left out)",
            m.served.count,
        ));
    }
    m.flush_console();
    ctl.kernel_exits.store(m.st.kernel_exits(), Ordering::Relaxed);
    ctl.stopped(code, &reason);
    let _ = sys::notify_signal(H_VMD, VMD_BIT_VM);
    Ok(code as i32)
}

/// What serving PCI devices' queues costs Keel, from the guest's exit (a queue notification) to
/// its next entry, idle time left out: the kernel stamps both in the state page
/// (`VcpuState::exit_tsc`, `entry_tsc`). TSC ticks are counted as instructions, which they are
/// under QEMU's `-icount shift=0` (the benchmark's setting).
#[derive(Default)]
struct Served {
    count: u64,
    timed: u64,
    busy: u64,
    /// The exit of the last serve, whose next entry is not yet known: (TSC, idle TSC).
    open: Option<(u64, u64)>,
}

impl Served {
    /// After each `VcpuRun`: close the open serve's span once the guest has been entered again.
    fn close(&mut self, st: &VcpuPage) {
        let Some((exit, exit_idle)) = self.open else { return };
        let (entry, entry_idle) = (st.entry_tsc(), st.entry_idle_tsc());
        if entry > exit {
            self.busy += (entry - exit).saturating_sub(entry_idle.wrapping_sub(exit_idle));
            self.timed += 1;
            self.open = None;
        }
    }
}

struct Monitor {
    ctl: &'static ControlArea,
    served: Served,
    platform: Platform,
    ram: GuestRam,
    /// The shared state page (volatile field access: the kernel writes it too).
    st: VcpuPage,
    vcpu: u32,
    wake: u32,
    paused: bool,
    out: Vec<u8>,
    /// The clock at the last exit (VcpuRun returns it), until `deliver_interrupts` uses it.
    exit_ns: Option<u64>,
    /// When the PIT's counter 0 next raises OUT (u64::MAX: not without a new write).
    pit_next: u64,
    /// When the next timer of any device is due (PIT, local APIC, PM timer's SCI).
    next_timer: u64,
    /// `deliver_interrupts` queued a vector for injection (pending in the state page).
    offered: bool,
}

impl Monitor {
    /// The vCPU loop; returns (exit status, reason) when the VM stops.
    fn run(&mut self) -> (u32, String) {
        loop {
            let requests = self.ctl.take_requests();
            if requests & request::STOP != 0 {
                return (0, String::from("stopped on request"));
            }
            if requests & request::PAUSE != 0 {
                self.paused = true;
                self.ctl.state.store(state::PAUSED, Ordering::Release);
            }
            if requests & request::UNPAUSE != 0 {
                self.paused = false;
                self.ctl.state.store(state::RUNNING, Ordering::Release);
            }
            self.console_input();
            self.flush_console();
            if self.paused {
                let _ = sys::notify_wait(self.wake, None);
                continue;
            }
            self.deliver_interrupts();
            let kind = match sys::vcpu_run(self.vcpu) {
                Ok((k, now)) => {
                    self.exit_ns = Some(now);
                    self.platform.exit_ns = now;
                    k
                }
                Err(e) => return (255, alloc::format!("vcpu_run failed: {e}")),
            };
            self.served.close(&self.st);
            self.ctl.monitor_exits.fetch_add(1, Ordering::Relaxed);
            self.ctl.kernel_exits.store(self.st.kernel_exits(), Ordering::Relaxed);
            match kind {
                ExitKind::Io => {
                    if let Some(stop) = self.port_io() {
                        return stop;
                    }
                }
                ExitKind::Mmio => {
                    if let Err(why) = self.mmio() {
                        return (255, why);
                    }
                    if let Some(stop) = stop_for(core::mem::replace(&mut self.platform.mmio_effect, WriteEffect::None))
                    {
                        return stop;
                    }
                }
                // A CPU halted with interrupts off never wakes again (Keel sends no NMI or INIT):
                // that is how an OS without ACPI powers off (Linux's `poweroff`).
                ExitKind::Hlt if self.st.rflags() & (1 << 9) == 0 => {
                    return (0, String::from("powered off (halted with interrupts disabled)"))
                }
                ExitKind::Hlt => self.halt(),
                ExitKind::Poked | ExitKind::None => {}
                ExitKind::Shutdown => return (255, String::from("triple fault (the guest reset itself or crashed)")),
                ExitKind::IoString => {
                    if let Some(stop) = self.string_io() {
                        return stop;
                    }
                }
                ExitKind::InvalidState => {
                    return (255, alloc::format!("the CPU refused the guest state (code {:#x})", self.st.exit_detail()))
                }
                ExitKind::Unhandled => return (255, alloc::format!("unhandled VM exit {:#x}", self.st.exit_detail())),
            }
        }
    }

    /// A PCI device register was written (a virtio queue notification, say): serve the queues
    /// now, and time it (`Served`): the benchmark reads what a disk request costs Keel.
    fn serve_pci(&mut self) {
        if !core::mem::take(&mut self.platform.pci_dirty) {
            return;
        }
        self.served.count += 1;
        self.served.open = Some((self.st.exit_tsc(), self.st.exit_idle_tsc()));
        self.platform.dev.pci.process(&mut self.ram);
    }

    fn port_io(&mut self) -> Option<(u32, String)> {
        // The four fields used, not a copy of the whole exit record.
        let (port, write, data) = (self.st.exit_port(), self.st.exit_write(), self.st.exit_data());
        let size = usize::from(self.st.exit_size().clamp(1, 4));
        if write != 0 {
            let bytes = data.to_le_bytes();
            let effect = self.platform.port_write(port, &bytes[..size]);
            if let Some(stop) = stop_for(effect) {
                return Some(stop);
            }
            // A legacy virtio driver notifies through the I/O BAR.
            self.serve_pci();
        } else {
            let mut bytes = [0u8; 8];
            self.platform.port_read(port, &mut bytes[..size]);
            let value = u64::from_le_bytes(bytes);
            let rax = self.st.gpr(reg::RAX);
            let rax = match size {
                1 => (rax & !0xff) | (value & 0xff),
                2 => (rax & !0xffff) | (value & 0xffff),
                _ => value & 0xffff_ffff,
            };
            self.st.set_gpr(reg::RAX, rax);
            self.st.mark_dirty(dirty::GPRS);
        }
        None
    }

    /// INS/OUTS (with or without REP): up to [`MAX_STRING_ELEMENTS`] elements per exit.
    fn string_io(&mut self) -> Option<(u32, String)> {
        use keel_x86emu::string_io::{decode_string_io, run_string_io, StringIoOutcome};
        let ((insn_len, insn), port) = (self.st.exit_insn(), self.st.exit_port());
        let mode = self.code_mode();
        let len = usize::from(insn_len.min(15));
        let op = match decode_string_io(mode, &insn[..len]) {
            Ok(op) => op,
            Err(why) => {
                let rip = self.st.rip();
                return Some((
                    255,
                    alloc::format!("cannot emulate string port I/O at rip {rip:#x} (port {port:#x}): {why}"),
                ));
            }
        };
        // In 64-bit mode only FS and GS have a base (SDM Vol 3A 3.4.4).
        let base = if mode == keel_x86emu::Mode::Long64 && op.segment < 4 { 0 } else { self.st.seg(op.segment).base };
        let next_rip = match mode {
            keel_x86emu::Mode::Long64 => self.st.rip().wrapping_add(u64::from(op.len)),
            keel_x86emu::Mode::Protected32 => self.st.rip().wrapping_add(u64::from(op.len)) & 0xffff_ffff,
            keel_x86emu::Mode::Real16 => self.st.rip().wrapping_add(u64::from(op.len)) & 0xffff,
        };
        let (paging, cr3) = crate::string_io::paging(&self.st);
        let mut regs = keel_x86emu::Regs { gpr: self.st.gprs(), rip: self.st.rip(), rflags: self.st.rflags() };
        let mut mem = crate::string_io::GuestLinear { ram: &self.ram, mode: paging, cr3 };
        let mut ports = crate::string_io::PlatformPorts { platform: &mut self.platform, effect: WriteEffect::None };
        let site = keel_x86emu::string_io::StringIoSite { port, segment_base: base, next_rip };
        let outcome = run_string_io(&op, site, &mut regs, &mut mem, &mut ports, MAX_STRING_ELEMENTS);
        let effect = ports.effect;
        self.st.set_gprs(regs.gpr);
        self.st.set_rip(regs.rip);
        self.st.mark_dirty(dirty::GPRS | dirty::RIP);
        match outcome {
            StringIoOutcome::Done | StringIoOutcome::Partial => None,
            StringIoOutcome::Stopped => stop_for(effect),
            // A page fault for the guest, unless an interrupt is already queued: then the
            // interrupt goes first and the instruction, re-executed after it, faults again.
            StringIoOutcome::Fault(fault) => {
                if self.st.inject_pending() == 0 {
                    let user = (self.st.seg(seg::SS).attrib >> 5) & 3 == 3;
                    self.st.set_cr2(fault.linear);
                    self.st.mark_dirty(dirty::CRS);
                    self.st.set_inject_kind(keel_abi::vcpu::INJECT_EXCEPTION);
                    self.st.set_inject_vector(14);
                    self.st.set_inject_has_error_code(1);
                    // Not present; W for a store; U from ring 3 (SDM Vol 3A 5.7, Figure 5-12).
                    self.st.set_inject_error_code(u32::from(fault.write) << 1 | u32::from(user) << 2);
                    self.st.set_inject_pending(1);
                }
                None
            }
        }
    }

    /// The guest's code size at an MMIO or string I/O exit (the kernel's `code_bits`).
    fn code_mode(&self) -> keel_x86emu::Mode {
        match self.st.exit_code_bits() {
            64 => keel_x86emu::Mode::Long64,
            32 => keel_x86emu::Mode::Protected32,
            _ => keel_x86emu::Mode::Real16,
        }
    }

    fn mmio(&mut self) -> Result<(), String> {
        // The three fields used, not a copy of the whole exit record.
        let (gpa, (insn_len, insn)) = (self.st.exit_gpa(), self.st.exit_insn());
        let len = usize::from(insn_len.min(15));
        if len == 0 {
            return Err(alloc::format!(
                "cannot read the instruction at rip {:#x} that accessed MMIO {:#x}",
                self.st.rip(),
                gpa
            ));
        }
        let mode = self.code_mode();
        let mut regs = keel_x86emu::Regs { gpr: self.st.gprs(), rip: self.st.rip(), rflags: self.st.rflags() };
        let result = keel_x86emu::emulate(mode, &insn[..len], gpa, &mut regs, &mut self.platform);
        self.serve_pci();
        // A device register access may have changed an interrupt line (reading virtio's ISR
        // lowers INTx): `platform.touched` is set, so deliver_interrupts routes the lines before
        // the guest runs again (and before its EOI could see a stale level).
        match result {
            Ok(_) => {
                self.st.set_gprs(regs.gpr);
                self.st.set_rip(regs.rip);
                self.st.set_rflags(regs.rflags);
                self.st.mark_dirty(dirty::GPRS | dirty::RIP | dirty::RFLAGS);
                Ok(())
            }
            Err(why) => Err(alloc::format!(
                "cannot emulate the instruction at rip {:#x} (MMIO {:#x}): {why}",
                self.st.rip(),
                gpa
            )),
        }
    }

    /// HLT with nothing to deliver: sleep until the next timer event or vmd's news.
    fn halt(&mut self) {
        self.deliver_interrupts();
        if self.st.inject_pending() != 0 {
            return;
        }
        let next = events::NEXT_TIMER_NS.load(Ordering::Relaxed);
        let timeout = if next == u64::MAX { None } else { Some(next.saturating_sub(sys::clock_ns())) };
        if timeout != Some(0) {
            let _ = sys::notify_wait(self.wake, timeout);
        }
    }

    /// Advance the timers, route device interrupt lines to the interrupt controllers, queue the
    /// next vector, and tell the kernel and the event thread when the next timer is due.
    ///
    /// Most exits change nothing here (an unclaimed port, a device register that raises no
    /// line): unless a device was touched, a timer is due, or the kernel took the vector queued
    /// last time (another may wait), all of it is skipped.
    fn deliver_interrupts(&mut self) {
        // Right after an exit, the clock VcpuRun returned (no ClockNs call on the exit path).
        let now = self.exit_ns.take().unwrap_or_else(sys::clock_ns);
        let injected = self.offered && self.st.inject_pending() == 0;
        let touched = core::mem::take(&mut self.platform.touched);
        if !(touched || injected || now >= self.next_timer) {
            return;
        }
        // The PIT needs a look only when its next event is due or the guest accessed it.
        let pit_touched = core::mem::take(&mut self.platform.pit_touched);
        if pit_touched || now >= self.pit_next {
            let edges = self.platform.dev.pit.advance(now);
            for _ in 0..edges {
                self.platform.dev.irq.pulse_isa_irq(0);
            }
            self.pit_next = self.platform.dev.pit.next_event_ns(now).unwrap_or(u64::MAX);
        }
        self.platform.route_lines(now);
        // Runs the local APIC timer up to `now` even when an injection is still pending, so that
        // its next deadline below is in the future.
        self.platform.dev.irq.update(now);
        if self.st.inject_pending() == 0 {
            if let Some(vector) = self.platform.dev.irq.next_vector(now) {
                self.st.set_inject_kind(INJECT_INTERRUPT);
                self.st.set_inject_vector(vector);
                self.st.set_inject_has_error_code(0);
                self.st.set_inject_pending(1);
            }
        }
        self.offered = self.st.inject_pending() != 0;
        let lapic_next = self.platform.dev.irq.next_timer_ns(now).unwrap_or(u64::MAX);
        let sci_next = self.platform.dev.pm.next_event_ns().unwrap_or(u64::MAX);
        // Device timers are looked at no more often than every MIN_TIMER_GAP_NS: a PIT at
        // divisor 2 (600 kHz) would otherwise have its next event in the past by the time the
        // vCPU runs again, and the guest would never run (its edges merge, as at a PIC input).
        let next = self.pit_next.min(lapic_next).min(sci_next).max(now.saturating_add(MIN_TIMER_GAP_NS));
        self.next_timer = next;
        events::NEXT_TIMER_NS.store(next, Ordering::Relaxed);
        // The kernel also returns from VcpuRun at that time, even if the event thread does not
        // get to run in between (a busy host).
        self.st.set_deadline_ns(if next == u64::MAX { 0 } else { next });
    }

    fn console_input(&mut self) {
        let mut byte = [0u8; 1];
        while self.platform.dev.uart.can_receive() && self.ctl.to_guest.pop(&mut byte) == 1 {
            self.platform.dev.uart.receive(byte[0]);
            // The UART's receive interrupt may rise.
            self.platform.touched = true;
        }
    }

    fn flush_console(&mut self) {
        if self.platform.dev.uart.output_len() == 0 {
            return;
        }
        self.out.clear();
        self.platform.dev.uart.take_output(&mut self.out);
        if !self.out.is_empty() {
            self.ctl.to_vmd.push(&self.out);
            let _ = sys::notify_signal(H_VMD, VMD_BIT_VM);
        }
    }
}

/// The shortest time between two looks at the device timers (the LAPIC clamps its periodic
/// timer to the same 50 µs).
const MIN_TIMER_GAP_NS: u64 = keel_devices::lapic::MIN_PERIOD_NS;

/// Elements one string I/O exit moves at most: a `rep outsb` of gigabytes goes in slices, with
/// the guest (and vmd's requests) getting a turn between them.
const MAX_STRING_ELEMENTS: u32 = 4096;

/// What a port write's effect means for the VM: `Some((status, reason))` when it stops.
fn stop_for(effect: WriteEffect) -> Option<(u32, String)> {
    match effect {
        WriteEffect::Exit(code) => {
            Some((u32::from(code), alloc::format!("the guest wrote {code} to the debug-exit port")))
        }
        WriteEffect::Reset => Some((keel_vmproto::EXIT_REBOOT, String::from("the guest rebooted"))),
        WriteEffect::PowerOff => Some((0, String::from("powered off (ACPI S5)"))),
        // The platform handles EOIs and NMIs itself.
        WriteEffect::None | WriteEffect::LevelEoi(_) | WriteEffect::Nmi => None,
    }
}
