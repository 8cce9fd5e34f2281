//! Per-CPU GDT and TSS: kernel code and data segments, and the TSS whose interrupt stack table
//! gives double faults, NMIs and machine checks a known-good stack.
//!
//! The layout is fixed by SYSCALL/SYSRET (STAR): kernel code 0x08, kernel data 0x10, user data
//! 0x18, user code 0x20, TSS 0x28. See: SDM Vol 2B SYSRET (CS = STAR[63:48] + 16, SS = + 8).
//! See: SDM Vol 3A 3.4.5 (segment descriptors), 8.7 (64-bit TSS), 7.14.5 (IST).

use alloc::boxed::Box;
use alloc::vec;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
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

/// Build and load this CPU's GDT and TSS. Called once per CPU; the tables live forever.
/// Returns the TSS, whose ring-0 stack (RSP0) the scheduler sets on every thread switch.
pub fn init_this_cpu() -> *mut TaskStateSegment {
    let tss: *mut TaskStateSegment = Box::into_raw(Box::new(TaskStateSegment::new()));
    for slot in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
        // SAFETY: `tss` was just allocated and is not shared yet.
        unsafe { (*tss).interrupt_stack_table[usize::from(slot - 1)] = leak_stack(IST_STACK_SIZE) };
    }
    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    assert!(code.0 == KERNEL_CODE && data.0 == KERNEL_DATA && user_data.0 == USER_DATA && user_code.0 == USER_CODE);
    // SAFETY: the TSS is leaked (lives forever); the descriptor only records its address, and
    // later writes (RSP0) go through the raw pointer on this CPU only.
    let tss_selector = gdt.append(Descriptor::tss_segment(unsafe { &*tss }));
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
    tss
}
