//! Per-CPU GDT and TSS: kernel code and data segments, and the TSS whose interrupt stack table
//! gives double faults, NMIs and machine checks a known-good stack, and whose I/O permission
//! bitmap opens a driver's ports to it while it runs (all closed otherwise; percpu.rs).
//!
//! The layout is fixed by SYSCALL/SYSRET (STAR): kernel code 0x08, kernel data 0x10, user data
//! 0x18, user code 0x20, TSS 0x28. See: SDM Vol 2B SYSRET (CS = STAR[63:48] + 16, SS = + 8).
//! See: SDM Vol 3A 3.4.5 (segment descriptors), 8.7 (64-bit TSS), 7.14.5 (IST), 19.5.2 (I/O
//! permission bit map).

use alloc::boxed::Box;
use alloc::vec;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{load_tss, sgdt};
use x86_64::structures::gdt::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slots (1-based in the IDT, 0-based in the TSS).
pub const IST_DOUBLE_FAULT: u16 = 1;
pub const IST_NMI: u16 = 2;
pub const IST_MACHINE_CHECK: u16 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

fn leak_stack(size: usize) -> VirtAddr {
    let stack: &'static mut [u8] = Box::leak(vec![0u8; size].into_boxed_slice());
    // Stacks grow down: the top is one past the end, 16-byte aligned.
    VirtAddr::from_ptr(stack.as_ptr_range().end).align_down(16u64)
}

pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;

/// A TSS followed by its I/O permission bitmap: one bit per port (1 = closed) and the 0xFF byte
/// the processor requires after the last one.
#[repr(C)]
pub struct TssWithIoBitmap {
    pub tss: TaskStateSegment,
    pub io_bitmap: [u8; crate::hw::IO_BITMAP_BYTES + 1],
}

/// The TSS's I/O map base when the bitmap is in force: right after the TSS.
pub const IO_BITMAP_BASE: u16 = core::mem::size_of::<TaskStateSegment>() as u16;
/// The I/O map base that means "no bitmap": past the TSS limit, so every port is closed to ring
/// 3. See: SDM Vol 1 19.5.2
pub const NO_IO_BITMAP: u16 = u16::MAX;

/// Build and load this CPU's GDT and TSS. Called once per CPU; the tables live forever.
/// Returns the TSS, whose ring-0 stack (RSP0) the scheduler sets on every thread switch.
pub fn init_this_cpu() -> *mut TssWithIoBitmap {
    let mut fresh = Box::new(TssWithIoBitmap { tss: TaskStateSegment::new(), io_bitmap: [0xff; 8193] });
    // The descriptor checks that the base points at the bitmap; it is moved away (no bitmap)
    // as soon as the TSS is loaded, until a process with ports runs.
    fresh.tss.iomap_base = IO_BITMAP_BASE;
    for slot in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
        fresh.tss.interrupt_stack_table[usize::from(slot - 1)] = leak_stack(IST_STACK_SIZE);
    }
    let both: *mut TssWithIoBitmap = Box::into_raw(fresh);
    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    assert!(code.0 == KERNEL_CODE && data.0 == KERNEL_DATA && user_data.0 == USER_DATA && user_code.0 == USER_CODE);
    // SAFETY: the TSS and bitmap are leaked (live forever); the descriptor only records their
    // address and size (the references end with the call), and later writes (RSP0, the bitmap)
    // go through the raw pointer on this CPU only.
    let tss: &'static TaskStateSegment = unsafe { &(*both).tss };
    // SAFETY: as above (the bitmap right after it).
    let bitmap: &'static [u8] = unsafe { &(*both).io_bitmap };
    let descriptor = Descriptor::tss_segment_with_iomap(tss, bitmap);
    let tss_selector = gdt.append(descriptor.expect("the bitmap follows the TSS and ends with 0xff"));
    assert!(tss_selector.0 == TSS_SELECTOR);
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, which lives forever (code: its code
    // segment).
    unsafe { CS::set_reg(code) };
    // SAFETY: as for CS (data: its data segment).
    unsafe { SS::set_reg(data) };
    // SAFETY: as for SS.
    unsafe { DS::set_reg(data) };
    // SAFETY: as for SS.
    unsafe { ES::set_reg(data) };
    // SAFETY: the TSS descriptor points at a TSS that lives forever and is used by this CPU only.
    unsafe { load_tss(tss_selector) };
    // SAFETY: the TSS was just leaked (lives forever) and only this CPU uses it.
    unsafe { (*both).tss.iomap_base = NO_IO_BITMAP };
    both
}

/// The TSS selector (the GDT's fifth entry).
const TSS_SELECTOR: u16 = 0x28;

/// Load TR again, so that the TSS's whole limit (with the I/O bitmap) applies: a VMX exit sets
/// TR's limit to 0x67, which hides the bitmap and closes every port to ring 3. See: SDM Vol 3C
/// 28.5.2 (host TR after VM exit), Vol 3A 8.2.3 (the busy bit LTR requires clear).
pub fn reload_task_register() {
    let gdtr = sgdt();
    let entry = (gdtr.base.as_u64() + u64::from(TSS_SELECTOR)) as *mut u64;
    // SAFETY: the GDT was built by init_this_cpu and lives forever; entry 0x28 is this CPU's TSS
    // descriptor, whose busy bit (41) LTR set and must find clear again.
    let low = unsafe { core::ptr::read_volatile(entry) };
    // SAFETY: as above; only the type's busy bit changes.
    unsafe { core::ptr::write_volatile(entry, low & !(1 << 41)) };
    // SAFETY: the selector names this CPU's TSS descriptor, now available, and the TSS lives forever.
    unsafe { load_tss(SegmentSelector(TSS_SELECTOR)) };
}
