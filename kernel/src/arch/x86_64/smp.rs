//! Starting the application processors: copy the trampoline below 1 MiB, then INIT-SIPI-SIPI
//! each CPU the MADT lists, one at a time, and wait for it to report in from Rust.
//!
//! The AP first runs on a temporary PML4 that identity-maps the low 2 MiB (for the trampoline)
//! and shares the kernel half; `ap_entry` then switches to the kernel's own tables.
//! See: SDM Vol 3A 9.4.4.1 (BSP's universal start-up algorithm).

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::{apic, pit};
use crate::mm;

extern "C" {
    static trampoline_start: u8;
    static trampoline_end: u8;
    static tr_gdt_pointer: u8;
    static tr_far32: u8;
    static tr_far64: u8;
    static tr_cr3: u8;
    static tr_efer: u8;
    static tr_stack: u8;
    static tr_arg: u8;
    static tr_entry: u8;
    static tr_gdt_offset: u64;
    static tr_code32_offset: u64;
    static tr_code64_offset: u64;
}

const AP_STACK_SIZE: usize = 64 * 1024;
use keel_hv::x86::efer::LME as EFER_LME;

/// Offset of a trampoline symbol from trampoline_start.
fn offset_of(symbol: *const u8) -> u64 {
    symbol as u64 - (&raw const trampoline_start) as u64
}

/// Write a little-endian value into the copied trampoline page.
fn patch(page_virt: u64, symbol: *const u8, bytes: &[u8]) {
    let dst = (page_virt + offset_of(symbol)) as *mut u8;
    // SAFETY: `dst` lies inside the trampoline page (the tr_* fields are between trampoline_start
    // and trampoline_end, which is shorter than a page), which this module owns while it starts APs.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
}

/// Start every CPU in `apic_ids` other than this one; returns how many came online.
pub fn start_application_processors(apic_ids: &[u32]) -> usize {
    let my_id = apic::id();
    let others: Vec<u32> = apic_ids.iter().copied().filter(|&id| id != my_id).collect();
    if others.is_empty() {
        return 0;
    }
    let Some(page) = mm::alloc_frame_below(0x10_0000) else {
        log::warn!("smp: no free page below 1 MiB for the start-up trampoline; running on one CPU");
        return 0;
    };
    let Some(temp_root) = mm::build_ap_boot_tables() else {
        log::warn!("smp: no memory for the start-up page tables; running on one CPU");
        return 0;
    };
    let page_virt = mm::phys_to_virt(page);
    let start = &raw const trampoline_start;
    let len = (&raw const trampoline_end) as usize - start as usize;
    // SAFETY: the trampoline bytes are in .rodata; the destination is a free page we own.
    unsafe { core::ptr::copy_nonoverlapping(start, page_virt as *mut u8, len) };

    // SAFETY: these are constants in the trampoline's .rodata, initialized by the assembler.
    let (gdt_off, code32_off, code64_off) = unsafe { (tr_gdt_offset, tr_code32_offset, tr_code64_offset) };
    let mut gdt_pointer = [0u8; 6];
    gdt_pointer[..2].copy_from_slice(&31u16.to_le_bytes());
    gdt_pointer[2..].copy_from_slice(&((page + gdt_off) as u32).to_le_bytes());
    patch(page_virt, &raw const tr_gdt_pointer, &gdt_pointer);
    patch(page_virt, &raw const tr_far32, &((page + code32_off) as u32).to_le_bytes());
    patch(page_virt, &raw const tr_far64, &((page + code64_off) as u32).to_le_bytes());
    patch(page_virt, &raw const tr_cr3, &temp_root.to_le_bytes());
    let efer = EFER_LME | if mm::nx_enabled() { super::instructions::EFER_NXE } else { 0 };
    patch(page_virt, &raw const tr_efer, &efer.to_le_bytes());
    patch(page_virt, &raw const tr_entry, &(ap_entry as *const () as u64).to_le_bytes());

    let mut started = 0;
    for apic_id in others {
        let Some(index) = apic::register_cpu(apic_id) else {
            log::warn!("smp: more than {} CPUs; ignoring APIC id {apic_id}", apic::MAX_CPUS);
            break;
        };
        let stack: &'static mut [u8] = alloc::boxed::Box::leak(vec![0u8; AP_STACK_SIZE].into_boxed_slice());
        let stack_top = (stack.as_ptr_range().end as u64) & !0xf;
        patch(page_virt, &raw const tr_stack, &stack_top.to_le_bytes());
        patch(page_virt, &raw const tr_arg, &(index as u64).to_le_bytes());
        core::sync::atomic::fence(Ordering::SeqCst);

        apic::send_init(apic_id);
        pit::sleep_us(10_000);
        for _ in 0..2 {
            if apic::is_online(index) {
                break;
            }
            apic::send_startup(apic_id, (page >> 12) as u8);
            pit::sleep_us(200);
        }
        // Wait up to one second for the CPU to report in.
        for _ in 0..1000 {
            if apic::is_online(index) {
                break;
            }
            pit::sleep_us(1_000);
        }
        if apic::is_online(index) {
            started += 1;
        } else {
            log::warn!("smp: cpu {index} (APIC id {apic_id}) did not start");
        }
    }
    mm::free_ap_boot_tables(temp_root);
    mm::free_frame(page);
    started
}

/// Where an AP arrives from the trampoline, on its own stack, with the temporary page tables.
extern "C" fn ap_entry(index: u64) -> ! {
    let index = index as usize;
    mm::switch_to_kernel_tables();
    super::gdt::init_this_cpu();
    super::idt::load();
    apic::enable_this_cpu();
    crate::virtcheck::check_and_record(index);
    apic::start_timer_this_cpu();
    log::info!("cpu {index}: online (APIC id {})", apic::id());
    apic::set_online(index);
    loop {
        crate::info::idle_halt();
    }
}
