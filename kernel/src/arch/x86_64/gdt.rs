//! Per-CPU GDT and TSS: kernel code and data segments, and the TSS whose interrupt stack table
//! gives double faults, NMIs and machine checks a known-good stack.
//!
//! Does not: define user segments (the userland issue adds them with SYSCALL/SYSRET).
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

/// Build and load this CPU's GDT and TSS. Called once per CPU; the tables live forever.
pub fn init_this_cpu() {
    let tss: &'static mut TaskStateSegment = Box::leak(Box::new(TaskStateSegment::new()));
    for slot in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
        tss.interrupt_stack_table[usize::from(slot - 1)] = leak_stack(IST_STACK_SIZE);
    }
    let tss: &'static TaskStateSegment = tss;
    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, which lives forever; the TSS descriptor
    // points at a TSS that lives forever and is used by this CPU only.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_selector);
    }
}
