//! Per-CPU data reached through GS: the kernel stack that SYSCALL switches to, a scratch slot
//! for the user RSP, and this CPU's TSS (whose RSP0 is the stack interrupts from ring 3 use, and
//! whose I/O bitmap holds the running process's ports: `load_io_ports`).
//!
//! Layout is fixed: switch.S reads offsets 8 and 16. In the kernel, IA32_GS_BASE points here;
//! in user mode it holds the user's value and IA32_KERNEL_GS_BASE points here (SWAPGS).
//! See: SDM Vol 2B SWAPGS, Vol 3A 8.7 (TSS RSP0).

use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, Ordering};
use x86_64::VirtAddr;

use crate::arch::x86_64::gdt::{self, TssWithIoBitmap};
use crate::hw::{IoBitmap, IO_BITMAP_BYTES};

use crate::arch::x86_64::instructions::wrmsr;

use keel_hv::x86::msr::{GS_BASE as MSR_GS_BASE, KERNEL_GS_BASE as MSR_KERNEL_GS_BASE};

#[repr(C)]
pub struct PerCpu {
    self_ptr: u64,
    kernel_rsp: u64,
    user_rsp_scratch: u64,
    pub cpu_index: u64,
    tss: *mut TssWithIoBitmap,
    /// The generation of the port bitmap the TSS holds (0: all ports closed).
    io_generation: u64,
}

/// The boot CPU's area (the only CPU that runs user threads for now).
static BOOT_CPU: AtomicPtr<PerCpu> = AtomicPtr::new(core::ptr::null_mut());

/// Set up this CPU's area and point GS at it.
pub fn init_this_cpu(cpu_index: usize, tss: *mut TssWithIoBitmap) {
    let area = Box::into_raw(Box::new(PerCpu {
        self_ptr: 0,
        kernel_rsp: 0,
        user_rsp_scratch: 0,
        cpu_index: cpu_index as u64,
        tss,
        io_generation: 0,
    }));
    // SAFETY: `area` was just allocated and leaked; it lives forever.
    unsafe { (*area).self_ptr = area as u64 };
    // SAFETY: GS_BASE/KERNEL_GS_BASE only affect GS-relative accesses, which only switch.S makes
    // (after SWAPGS on entry from ring 3); user GS starts at 0.
    unsafe { wrmsr(MSR_GS_BASE, area as u64) };
    // SAFETY: as above.
    unsafe { wrmsr(MSR_KERNEL_GS_BASE, 0) };
    if cpu_index == 0 {
        BOOT_CPU.store(area, Ordering::SeqCst);
    }
}

/// Make `top` the stack that SYSCALL and ring-3 interrupts enter on (the next thread's).
pub fn set_kernel_stack(top: u64) {
    let area = BOOT_CPU.load(Ordering::SeqCst);
    if area.is_null() {
        return;
    }
    // SAFETY: the area and its TSS live forever and are used only by the boot CPU, which is the
    // CPU running this (the scheduler runs there only), with interrupts disabled.
    unsafe { (*area).kernel_rsp = top };
    // SAFETY: as above (the area's TSS).
    let tss = unsafe { (*area).tss };
    // SAFETY: as above.
    unsafe { (*tss).tss.privilege_stack_table[0] = VirtAddr::new(top) };
}

/// Open the next process's ports (`None`: none) in the TSS. A process without ports gets no
/// I/O bitmap at all (the bitmap's base moved past the TSS limit: every port is closed), which
/// costs one 16-bit store; the bitmap itself is copied only when a different process with ports
/// runs next, and then TR is reloaded as well (a VM exit may have cut its limit). Copying or
/// refilling the 8 KiB bitmap on every switch to and from a driver cost about 2,000 instructions
/// per storage request. See: SDM Vol 1 19.5.2 (no map when its base is at or past the limit).
/// Called with interrupts off, on the boot CPU, which alone runs user threads.
pub fn load_io_ports(ports: Option<&Option<IoBitmap>>) {
    let area = BOOT_CPU.load(Ordering::SeqCst);
    if area.is_null() {
        return;
    }
    let wanted = ports.and_then(Option::as_ref);
    // SAFETY: the area lives forever and only this CPU, with interrupts off, uses it.
    let tss = unsafe { (*area).tss };
    let Some(bitmap) = wanted else {
        // SAFETY: the TSS lives forever; this CPU alone writes it, with interrupts off.
        unsafe { (*tss).tss.iomap_base = gdt::NO_IO_BITMAP };
        return;
    };
    // SAFETY: as above.
    if unsafe { (*area).io_generation } != bitmap.generation {
        // SAFETY: the TSS lives forever; this CPU alone writes its bitmap, with interrupts off, and
        // no reference to it is held anywhere else.
        let bits = unsafe { &mut (&mut (*tss).io_bitmap)[..IO_BITMAP_BYTES] };
        bits.copy_from_slice(&bitmap.bits);
        // SAFETY: as above.
        unsafe { (*area).io_generation = bitmap.generation };
    }
    // SAFETY: as above (the TSS).
    unsafe { (*tss).tss.iomap_base = gdt::IO_BITMAP_BASE };
    gdt::reload_task_register();
}
