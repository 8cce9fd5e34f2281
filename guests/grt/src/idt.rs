//! The interrupt descriptor table: 256 64-bit interrupt gates, each pointing at a small asm stub
//! that saves the general-purpose registers and calls [`dispatch`] with the vector, which calls
//! the Rust handler registered for it with [`set_handler`]. Without one, the default handler
//! prints the exception (or unexpected interrupt) and stops the VM with [`crate::EXIT_FAIL`].
//!
//! No IST and no separate stacks: the guests run at CPL 0 on the one stack they have.
//! See: SDM Vol 3A 6.14 (64-bit IDT gates, stack frame), 6.13 (error codes).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::{cpu, exit, println, EXIT_FAIL};

/// The code segment the monitor's GDT has for 64-bit code (docs/guests.md).
const KERNEL_CS: u16 = 0x08;
/// Gate type byte: present, DPL 0, 64-bit interrupt gate (type 0xE; IF is cleared on entry).
const INTERRUPT_GATE: u64 = 0x8E;
/// Distance between two consecutive stubs in `grt_isr_stubs` (each is at most 12 bytes).
const STUB_STRIDE: u64 = 16;

/// What the stub saved, lowest address first: the general-purpose registers, the vector and
/// error code (0 for vectors without one), and the frame the CPU pushed.
#[repr(C)]
#[derive(Debug)]
pub struct InterruptFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<InterruptFrame>() == 22 * 8);

/// A handler for one vector. It runs with interrupts disabled; changes to the frame's registers
/// take effect when the interrupted code resumes. PIC interrupts need an EOI ([`crate::pic::eoi`]).
pub type Handler = fn(&mut InterruptFrame);

// The stubs: one per vector, each aligned to STUB_STRIDE, so stub v is at grt_isr_stubs + 16 * v.
// A stub pushes a zero error code for the vectors where the CPU does not push one (all but 8,
// 10-14, 17, 21, 29 and 30), then the vector, then jumps to the common part. The largest stub is
// push imm8 (2 bytes) + push imm32 (5) + jmp rel32 (5) = 12 bytes, so `.balign 16` keeps the stride
// exact; `install` checks it against grt_isr_stubs_end anyway.
//
// The common part pushes the 15 general-purpose registers. The CPU aligned RSP to 16 before
// pushing its 5-word frame (SDM Vol 3A 6.14.2), so with the error code, the vector and 15 registers
// (22 words in all) RSP is 16-byte aligned again at the call, as the SysV ABI wants. The direction
// flag is cleared for Rust code; RFLAGS is restored by IRETQ.
core::arch::global_asm!(
    ".pushsection .text.grt_isr, \"ax\", @progbits",
    ".balign 16",
    ".global grt_isr_stubs",
    "grt_isr_stubs:",
    ".set grt_vector, 0",
    ".rept 256",
    ".balign 16",
    ".if !(grt_vector == 8 || (grt_vector >= 10 && grt_vector <= 14) || grt_vector == 17 || grt_vector == 21 || grt_vector == 29 || grt_vector == 30)",
    "push 0",
    ".endif",
    "push grt_vector",
    "jmp grt_isr_common",
    ".set grt_vector, grt_vector + 1",
    ".endr",
    ".balign 16",
    ".global grt_isr_stubs_end",
    "grt_isr_stubs_end:",
    "grt_isr_common:",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov rdi, rsp",
    "cld",
    "call {dispatch}",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "add rsp, 16", // the vector and the error code
    "iretq",
    ".popsection",
    dispatch = sym dispatch,
);

extern "C" {
    static grt_isr_stubs: u8;
    static grt_isr_stubs_end: u8;
}

/// The table: 256 gates of two words each.
#[repr(C, align(16))]
struct Table(UnsafeCell<[[u64; 2]; 256]>);

// SAFETY: the guests run on one CPU; the table is written only by `install`, which runs with
// interrupts disabled before the table is loaded, and read by the CPU.
unsafe impl Sync for Table {}

static TABLE: Table = Table(UnsafeCell::new([[0; 2]; 256]));

/// The registered handlers as `fn` addresses; 0 means the default handler.
static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

/// Fills the IDT with a gate for each of the 256 vectors and loads it. Call it with interrupts
/// disabled (they are at start) and before `sti`; handlers can be set before or after.
pub fn install() {
    assert!(!cpu::interrupts_enabled(), "idt::install with interrupts enabled");
    // Only the symbols' addresses are taken (no unsafe needed).
    let (stubs, stubs_end) = (core::ptr::addr_of!(grt_isr_stubs) as u64, core::ptr::addr_of!(grt_isr_stubs_end) as u64);
    assert_eq!(stubs_end - stubs, 256 * STUB_STRIDE, "interrupt stubs are not {STUB_STRIDE} bytes apart");
    let table = TABLE.0.get();
    for vector in 0..256u64 {
        let offset = stubs + vector * STUB_STRIDE;
        let low = (offset & 0xFFFF)
            | (u64::from(KERNEL_CS) << 16)
            | (INTERRUPT_GATE << 40)
            | (((offset >> 16) & 0xFFFF) << 48);
        let high = offset >> 32;
        // SAFETY: interrupts are disabled and this is the only writer (see `Table`); the index is
        // in bounds.
        unsafe { (*table)[vector as usize] = [low, high] };
    }
    // SAFETY: the table is static and every gate points at a stub that returns with IRETQ.
    unsafe { cpu::lidt(table as u64, (core::mem::size_of::<[[u64; 2]; 256]>() - 1) as u16) };
}

/// Registers `handler` for `vector`, replacing the default (or an earlier handler).
pub fn set_handler(vector: u8, handler: Handler) {
    HANDLERS[usize::from(vector)].store(handler as usize, Ordering::SeqCst);
}

/// Called by the common stub with the saved frame.
extern "C" fn dispatch(frame: *mut InterruptFrame) {
    // SAFETY: the stub passes the frame it just pushed on this stack; nothing else refers to it
    // until the handler returns.
    let frame = unsafe { &mut *frame };
    let raw = HANDLERS[(frame.vector & 0xFF) as usize].load(Ordering::SeqCst);
    if raw == 0 {
        default_handler(frame);
    } else {
        // SAFETY: the only non-zero values stored in HANDLERS come from `set_handler`, which
        // stores a valid `Handler`; fn pointers and usize have the same size.
        let handler = unsafe { core::mem::transmute::<usize, Handler>(raw) };
        handler(frame);
    }
}

/// The mnemonic of an exception vector (0-31).
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD exception",
        20 => "#VE virtualization exception",
        21 => "#CP control protection",
        29 => "#VC VMM communication",
        30 => "#SX security exception",
        9 | 15 | 22..=28 | 31 => "reserved exception",
        _ => "interrupt",
    }
}

/// Prints the exception or unexpected interrupt and stops the VM with a failure status.
pub fn default_handler(frame: &mut InterruptFrame) {
    if frame.vector < 32 {
        println!(
            "EXCEPTION: {} (vector {}) error code {:#x} at rip {:#x} (cs {:#x} rflags {:#x} rsp {:#x})",
            exception_name(frame.vector),
            frame.vector,
            frame.error_code,
            frame.rip,
            frame.cs,
            frame.rflags,
            frame.rsp
        );
        if frame.vector == 14 {
            println!("EXCEPTION: cr2 {:#x}", cpu::cr2());
        }
    } else {
        println!("EXCEPTION: unexpected interrupt, vector {:#x}, at rip {:#x}", frame.vector, frame.rip);
    }
    println!(
        "EXCEPTION: rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} rbp {:#x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp
    );
    exit(EXIT_FAIL)
}
