//! Fuzz the system-call decoder: the kernel decodes every call from the registers a process
//! left (call number and six arguments), which are entirely the process's choice. The input is
//! up to 56 bytes, read as seven little-endian words (missing bytes are zero); if the first byte
//! has bit 7 clear, the call number is folded into the range of real calls, so that the fuzzer
//! spends its time on their arguments.
//! Checks that decoding never panics, and that a call that decodes encodes to registers that
//! decode to the same call (what userland's runtime sends is what the kernel sees).
#![no_main]

use keel_abi::{Regs, Syscall};
use libfuzzer_sys::fuzz_target;

/// A little above the highest call number, so that unknown numbers are tried too.
const CALLS: u64 = 40;

fuzz_target!(|data: &[u8]| {
    let mut regs: Regs = [0; 7];
    for (reg, chunk) in regs.iter_mut().zip(data.chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *reg = u64::from_le_bytes(bytes);
    }
    if data.first().is_some_and(|&b| b & 0x80 == 0) {
        regs[0] %= CALLS;
    }
    if let Ok(call) = Syscall::decode(regs) {
        let again = Syscall::decode(call.encode());
        assert_eq!(again, Ok(call), "registers {regs:#x?} decoded to {call:?}, which does not round-trip");
    }
});
