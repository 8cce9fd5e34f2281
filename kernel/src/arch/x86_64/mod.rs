//! x86-64 glue: instruction wrappers, descriptor tables, interrupts, the local APIC, the PIT,
//! and starting application processors. Everything here is thin; decisions live in pure crates.

pub mod apic;
pub mod gdt;
pub mod idt;
pub mod instructions;
pub mod interrupts;
pub mod ioapic;
pub mod pic;
pub mod pit;
pub mod smp;

core::arch::global_asm!(include_str!("exceptions.S"), options(att_syntax));
core::arch::global_asm!(include_str!("trampoline.S"), options(att_syntax));
