//! The interrupt descriptor table: one table shared by all CPUs, pointing every vector Keel
//! handles at its assembly stub (exceptions.S). Vectors without a stub stay not-present, so a
//! stray interrupt on them becomes a #GP (reported) rather than a jump into nowhere.
//! See: SDM Vol 3A 7.14.1 (64-bit mode IDT), Figure 7-8 (interrupt gate).

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::gdt;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Gate>() == 16);

/// Present, DPL 0, 64-bit interrupt gate (interrupts disabled on entry).
const INTERRUPT_GATE: u8 = 0x8e;
const KERNEL_CODE_SELECTOR: u16 = 0x08;

#[repr(C, align(16))]
struct Idt([Gate; 256]);

/// The vectors that have stubs, in the order of `isr_stub_table`.
pub const STUB_VECTORS: [u8; 83] = {
    let mut v = [0u8; 83];
    let mut i = 0;
    while i < 82 {
        v[i] = i as u8;
        i += 1;
    }
    v[82] = 255;
    v
};

// The drivers' vectors (hw.rs) end where the stubs do.
const _: () = assert!(crate::hw::FIRST_DEVICE_VECTOR as usize + crate::hw::DEVICE_VECTORS == 82);

extern "C" {
    static isr_stub_table: [u64; 83];
}

static IDT: spin::Once<Idt> = spin::Once::new();

fn build() -> Idt {
    let mut idt = Idt([Gate::default(); 256]);
    for (i, &vector) in STUB_VECTORS.iter().enumerate() {
        // SAFETY: isr_stub_table is an immutable table of 83 addresses defined in exceptions.S.
        let handler = unsafe { isr_stub_table[i] };
        let ist = match vector {
            8 => gdt::IST_DOUBLE_FAULT,
            2 => gdt::IST_NMI,
            18 => gdt::IST_MACHINE_CHECK,
            _ => 0,
        };
        idt.0[usize::from(vector)] = Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE_SELECTOR,
            ist: ist as u8,
            type_attr: INTERRUPT_GATE,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        };
    }
    idt
}

/// Load the IDT on this CPU (building it on first use).
pub fn load() {
    let idt = IDT.call_once(build);
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(idt as *const Idt),
    };
    // SAFETY: the IDT is a static that lives forever and every present gate points at a stub
    // in exceptions.S that saves state and calls interrupt_dispatch.
    unsafe { lidt(&pointer) };
}
