//! Interrupt and exception dispatch: the Rust side of exceptions.S.
//!
//! A CPU exception in the kernel is fatal: it prints the vector, its name, the error code, RIP,
//! CR2, CR3 and every general-purpose register to the serial port, then halts the CPU (or, with
//! `qemu-exit` on the command line, exits QEMU with a failure status). The one exception is the
//! `rdmsr_safe` probe's #GP, which is fixed up. Device interrupts: the local APIC timer, COM1,
//! the drivers' vectors (hw.rs), and spurious vectors, which are ignored.

use super::{apic, instructions};

/// The saved state of an interrupted context, laid out by isr_common (exceptions.S).
#[derive(Debug)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);

/// The local APIC timer's vector (above the remapped legacy PIC range 0x20-0x2f).
pub const TIMER_VECTOR: u8 = 0x30;
/// COM1's receive interrupt (ISA IRQ 4 through the I/O APIC).
pub const SERIAL_VECTOR: u8 = 0x31;
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Exception names. See: SDM Vol 3A Table 7-1.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range exceeded",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack-segment fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 floating-point error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating-point",
        20 => "#VE virtualization exception",
        21 => "#CP control protection",
        29 => "#VC VMM communication",
        30 => "#SX security exception",
        _ => "reserved",
    }
}

#[no_mangle]
extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector;
    if vector == 13 && instructions::try_fixup_msr_probe(frame) {
        return;
    }
    let from_user = frame.cs & 3 == 3;
    match vector {
        0..=31 if from_user => crate::task::process::fault_in_user_mode(frame),
        0..=31 => fatal_exception(frame),
        v if v == u64::from(TIMER_VECTOR) => timer_interrupt(from_user),
        v if v == u64::from(SERIAL_VECTOR) => {
            crate::objects::poll_console_input();
            apic::eoi();
        }
        v if (u64::from(crate::hw::FIRST_DEVICE_VECTOR)
            ..u64::from(crate::hw::FIRST_DEVICE_VECTOR) + crate::hw::DEVICE_VECTORS as u64)
            .contains(&v) =>
        {
            crate::hw::on_device_interrupt(v as u8)
        }
        // Legacy PIC spurious IRQs (all PIC lines are masked) and the APIC spurious vector:
        // no EOI, nothing to do. See: SDM Vol 3A 12.9 (spurious interrupt).
        0x20..=0x2f | 0xff => {}
        _ => {}
    }
}

fn timer_interrupt(from_user: bool) {
    if apic::on_timer_interrupt() == 0 {
        // The boot CPU runs the scheduler (and catches serial input an IRQ missed).
        crate::objects::poll_console_input();
        crate::klog::flush_signal();
        crate::task::scheduler::on_tick(from_user);
    }
}

fn fatal_exception(frame: &TrapFrame) -> ! {
    use core::fmt::Write;
    let cpu = apic::this_cpu_index_or_zero();
    let cr2 = instructions::read_cr2();
    let cr3 = instructions::read_cr3();
    let mut out = crate::serial::panic_writer();
    let f = frame;
    let _ = write!(
        out,
        "\r\n!!! CPU exception {} ({}) on cpu {cpu}\r\n\
         error code: {:#x}  rip: {:#018x}  cs: {:#x}  rflags: {:#x}\r\n\
         cr2: {cr2:#018x}  cr3: {cr3:#018x}  rsp: {:#018x}  ss: {:#x}\r\n\
         rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}\r\n\
         rsi {:016x} rdi {:016x} rbp {:016x} r8  {:016x}\r\n\
         r9  {:016x} r10 {:016x} r11 {:016x} r12 {:016x}\r\n\
         r13 {:016x} r14 {:016x} r15 {:016x}\r\n",
        f.vector,
        exception_name(f.vector),
        f.error_code,
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
    );
    crate::stop_after_fatal_error(&mut out)
}
