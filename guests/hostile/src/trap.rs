//! Exceptions provoked on purpose: [`guarded!`] runs one asm block with a resume point armed, and
//! returns the exception it raised (if any) instead of letting the runtime's default handler stop
//! the VM.
//!
//! The asm stores the address just past the guarded instructions in [`RECOVER`]; the handler of
//! every exception vector (0-31) takes that address (swapping in 0), records the vector and error
//! code, and resumes there with the registers as they were when the exception hit. An exception
//! with no resume point armed is a real failure: the default handler prints it and stops the VM.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_guest_rt::idt::{self, InterruptFrame};

/// Where the guarded asm block resumes after an exception; 0 while none is armed. Written by
/// the asm of [`guarded!`], read (and cleared) by the handler.
pub static RECOVER: AtomicU64 = AtomicU64::new(0);
/// The last exception taken under a guard: vector + 1 (0: none).
static VECTOR: AtomicU64 = AtomicU64::new(0);
static ERROR_CODE: AtomicU64 = AtomicU64::new(0);

pub const UD: u8 = 6;
pub const GP: u8 = 13;

/// An exception a guarded block raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vector: u8,
    pub error_code: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = idt::exception_name(u64::from(self.vector));
        let short = name.split(' ').next().unwrap_or(name);
        match self.vector {
            8 | 10..=14 | 17 | 21 | 29 | 30 => write!(f, "{short}({:#x})", self.error_code),
            _ => write!(f, "{short}"),
        }
    }
}

/// How a guarded operation ended, for messages: `no exception` or the exception.
pub struct Outcome(pub Option<Fault>);

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            None => write!(f, "no exception"),
            Some(fault) => write!(f, "{fault}"),
        }
    }
}

/// A load's result for messages: the value in hex, or the exception.
pub struct Loaded(pub Result<u64, Fault>);

impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "{v:#x}"),
            Err(fault) => write!(f, "{fault}"),
        }
    }
}

fn handler(frame: &mut InterruptFrame) {
    let resume = RECOVER.swap(0, Ordering::SeqCst);
    if resume == 0 {
        idt::default_handler(frame);
        return;
    }
    VECTOR.store(frame.vector + 1, Ordering::SeqCst);
    ERROR_CODE.store(frame.error_code, Ordering::SeqCst);
    frame.rip = resume;
}

/// Loads the runtime's IDT with [`handler`] on every exception vector.
pub fn install() {
    idt::install();
    for vector in 0..32 {
        idt::set_handler(vector, handler);
    }
}

/// Called by [`guarded!`] before its asm.
pub fn arm() {
    VECTOR.store(0, Ordering::SeqCst);
}

/// Called by [`guarded!`] after its asm: disarms and returns the exception taken, if any.
pub fn take() -> Option<Fault> {
    RECOVER.store(0, Ordering::SeqCst);
    match VECTOR.swap(0, Ordering::SeqCst) {
        0 => None,
        v => Some(Fault { vector: (v - 1) as u8, error_code: ERROR_CODE.load(Ordering::SeqCst) }),
    }
}

/// `guarded!(["insn", ...], operands...)`: runs the instructions with a resume point armed and
/// evaluates to `Option<Fault>`. Operands are named or explicit registers (no positional ones);
/// outputs hold whatever the registers had when an exception hit.
macro_rules! guarded {
    ([$($insn:literal),* $(,)?] $(, $($ops:tt)*)?) => {{
        $crate::trap::arm();
        // SAFETY: the instructions are the caller's, who vouches for what they touch (see each
        // use). An exception they raise resumes at label 77 with every register restored by the
        // handler (trap.rs); RFLAGS is restored by IRETQ. The asm writes only RECOVER besides
        // its operands.
        unsafe {
            core::arch::asm!(
                "lea {guard_resume}, [rip + 77f]",
                "mov qword ptr [rip + {guard_slot}], {guard_resume}",
                $($insn,)*
                "77:",
                guard_resume = out(reg) _,
                guard_slot = sym $crate::trap::RECOVER,
                $($($ops)*)?
            )
        };
        $crate::trap::take()
    }};
}

pub(crate) use guarded;
