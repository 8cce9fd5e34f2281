//! Processes, threads and the scheduler: ring-3 programs loaded from boot modules, each in its
//! own address space, preempted by the local APIC timer.
//!
//! Scope of this version: user threads run on the boot CPU only (the other CPUs idle, ready for
//! vCPUs in the next issue); the kernel is not preemptible (interrupts are off in the kernel except
//! in the idle loop), so kernel data needs no locks beyond the spinlocks Rust asks for.

pub mod address_space;
pub mod caps;
pub mod notify;
pub mod percpu;
pub mod process;
pub mod scheduler;
pub mod syscall;

core::arch::global_asm!(include_str!("switch.S"), options(att_syntax));
