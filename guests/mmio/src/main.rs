//! `mmio`: exercises the monitor's MMIO emulation on the test register (docs/guests.md): a 64-bit
//! scratch register at GPA 0xFEB00000 (reads return what was written) and a read-only magic,
//! 0x4B45454C4D4D494F ("KEELMMIO"), at offset 8.
//!
//! Every access is one instruction of a chosen form, forced with inline asm (a volatile Rust
//! access does not fix the encoding): stores of 8, 16, 32 and 64 bits from registers (including a
//! high-byte register and REX-only ones) and of immediates (including a sign-extended imm32 to a
//! 64-bit location), to each byte offset; loads into 64-bit registers, 32-bit loads (which
//! zero-extend), 8- and 16-bit loads (which keep the rest of the register), a load into AH,
//! `movzx`, `movsx`/`movsxd`, SIB addressing, and the `movabs` moffs forms (opcodes A0-A3). Each
//! store is checked with a 64-bit load (the first form checked) and each load against a value
//! stored with a 64-bit store; destination registers are preloaded with a fill pattern so that
//! wrong zero- or sign-extension, or clobbered upper bits, show.
//!
//! Assumes that the scratch register is byte-addressable storage: a narrower store changes only
//! the bytes it covers, and a narrower load returns the bytes it covers.
//!
//! Verdict: `PASS mmio`, or `FAIL mmio: <first failed check>`.
#![no_std]
#![no_main]

use keel_guest_rt::check::Checks;

keel_guest_rt::entry!(run);

/// The scratch register (offset 0 of the test page).
const BASE: u64 = 0xFEB0_0000;
/// The read-only magic at offset 8.
const MAGIC: u64 = 0x4B45_454C_4D4D_494F;
/// What destination registers hold before a load.
const FILL: u64 = 0x5555_5555_5555_5555;
/// What the scratch register holds before a load test; every byte has bit 7 set, so that
/// sign extension shows.
const LOADED: u64 = 0x8899_AABB_CCDD_EEFF;

/// One MMIO access (or a few) in inline asm.
macro_rules! mmio {
    ($($t:tt)*) => {
        // SAFETY: every address used is in the test register's 4 KiB page at 0xFEB00000, which is
        // identity-mapped and is not RAM: the access exits to the monitor, which emulates it, and
        // no memory that Rust knows of is touched. Every register the asm reads or writes is an
        // operand.
        unsafe { core::arch::asm!($($t)*, options(nostack, preserves_flags)) }
    };
}

/// `value` stored over `size` bytes at byte `offset` of `old` (the register as bytes).
fn merge(old: u64, offset: u32, size: u32, value: u64) -> u64 {
    let mask = if size == 8 { u64::MAX } else { ((1u64 << (size * 8)) - 1) << (offset * 8) };
    (old & !mask) | ((value << (offset * 8)) & mask)
}

/// Stores `value` with `mov qword ptr [rdi], rsi`.
fn set(value: u64) {
    mmio!("mov qword ptr [rdi], rsi", in("rdi") BASE, in("rsi") value);
}

/// Loads the scratch register with `mov rax, qword ptr [rdi]`.
fn get() -> u64 {
    let value: u64;
    mmio!("mov rax, qword ptr [rdi]", in("rdi") BASE, out("rax") value);
    value
}

struct Mmio {
    c: Checks,
}

impl Mmio {
    fn expect(&mut self, form: &str, expected: u64, got: u64) {
        self.c.check(got == expected, format_args!("{form}: expected {expected:#018x}, got {got:#018x}"));
    }

    /// Checks the scratch register after a store form.
    fn expect_stored(&mut self, form: &str, expected: u64) {
        let got = get();
        self.expect(form, expected, got);
    }
}

fn run(_ram_size: u64) -> ! {
    let mut t = Mmio { c: Checks::new("mmio") };
    t.c.note(format_args!("test register at {BASE:#x}"));

    // 64-bit stores and the 64-bit load every later check relies on.
    set(0x0123_4567_89AB_CDEF);
    t.expect_stored(
        "mov [rdi], rsi (64-bit store from a register), mov rax, [rdi] (64-bit load)",
        0x0123_4567_89AB_CDEF,
    );
    set(0xFEDC_BA98_7654_3210);
    t.expect_stored("64-bit store and load of a second value", 0xFEDC_BA98_7654_3210);
    mmio!("mov qword ptr [r12], r13", in("r12") BASE, in("r13") 0x1122_3344_5566_7788u64);
    t.expect_stored("mov [r12], r13 (64-bit store, REX.B base needing a SIB, REX.R source)", 0x1122_3344_5566_7788);
    mmio!("mov qword ptr [rsi + rcx*8 - 8], rdx", in("rsi") BASE, in("rcx") 1u64, in("rdx") 0x0F1E_2D3C_4B5A_6978u64);
    t.expect_stored("mov [rsi+rcx*8-8], rdx (64-bit store, SIB addressing)", 0x0F1E_2D3C_4B5A_6978);
    mmio!("mov qword ptr [rdi], -2", in("rdi") BASE);
    t.expect_stored("mov qword ptr [rdi], -2 (64-bit store of a sign-extended imm32)", 0xFFFF_FFFF_FFFF_FFFE);
    mmio!("mov qword ptr [rdi], 0x7fff0000", in("rdi") BASE);
    t.expect_stored("mov qword ptr [rdi], 0x7fff0000 (64-bit store of a positive imm32)", 0x7FFF_0000);

    // 32-bit stores.
    set(0x1111_1111_2222_2222);
    mmio!("mov dword ptr [rdi], 0xdeadbeef", in("rdi") BASE);
    t.expect_stored("mov dword ptr [rdi], 0xdeadbeef (32-bit store of an immediate)", 0x1111_1111_DEAD_BEEF);
    set(0x1111_1111_2222_2222);
    mmio!("mov dword ptr [rdi + 4], 0xcafef00d", in("rdi") BASE);
    t.expect_stored(
        "mov dword ptr [rdi+4], 0xcafef00d (32-bit store of an immediate, offset 4)",
        0xCAFE_F00D_2222_2222,
    );
    set(0);
    mmio!("mov dword ptr [rdi + 4], esi", in("rdi") BASE, in("rsi") 0xFFFF_FFFF_89AB_CDEFu64);
    t.expect_stored("mov [rdi+4], esi (32-bit store from a register)", 0x89AB_CDEF_0000_0000);

    // 16-bit stores to offsets 0, 2, 4, 6.
    set(FILL);
    mmio!(
        "mov word ptr [rdi], 0x1001",
        "mov word ptr [rdi + 2], 0x2002",
        "mov word ptr [rdi + 4], 0x3003",
        "mov word ptr [rdi + 6], 0x4004",
        in("rdi") BASE
    );
    t.expect_stored("mov word ptr [rdi+k], imm16 (16-bit stores of immediates, k = 0, 2, 4, 6)", 0x4004_3003_2002_1001);
    set(0);
    let mut expected = 0;
    for k in [0u32, 2, 4, 6] {
        let value = 0xA0B0u64 + u64::from(k);
        mmio!("mov word ptr [rdi + rcx], si", in("rdi") BASE, in("rcx") u64::from(k), in("rsi") value);
        expected = merge(expected, k, 2, value);
    }
    t.expect_stored("mov [rdi+rcx], si (16-bit stores from a register, offsets 0, 2, 4, 6)", expected);

    // 8-bit stores to offsets 0..7.
    set(FILL);
    mmio!(
        "mov byte ptr [rdi], 0x11",
        "mov byte ptr [rdi + 1], 0x22",
        "mov byte ptr [rdi + 2], 0x33",
        "mov byte ptr [rdi + 3], 0x44",
        "mov byte ptr [rdi + 4], 0x55",
        "mov byte ptr [rdi + 5], 0x66",
        "mov byte ptr [rdi + 6], 0x77",
        "mov byte ptr [rdi + 7], 0x88",
        in("rdi") BASE
    );
    t.expect_stored("mov byte ptr [rdi+k], imm8 (8-bit stores of immediates, k = 0..7)", 0x8877_6655_4433_2211);
    set(0);
    let mut expected = 0;
    for k in 0..8u32 {
        let value = 0xA0 + u64::from(k);
        mmio!("mov byte ptr [rdi + rcx], sil", in("rdi") BASE, in("rcx") u64::from(k), in("rsi") value);
        expected = merge(expected, k, 1, value);
    }
    t.expect_stored("mov [rdi+rcx], sil (8-bit stores from a REX-only byte register, offsets 0..7)", expected);
    set(0);
    mmio!("mov byte ptr [rdi + 3], ch", in("rdi") BASE, in("rcx") 0x5A00u64);
    t.expect_stored("mov [rdi+3], ch (8-bit store from a high-byte register)", 0x5A00_0000);

    // moffs stores (movabs, opcodes A2/A3 with a 64-bit address).
    mmio!("movabs qword ptr [{a}], rax", a = const BASE, in("rax") 0x7766_5544_3322_1100u64);
    t.expect_stored("movabs [0xfeb00000], rax (moffs 64-bit store)", 0x7766_5544_3322_1100);
    set(0);
    mmio!("movabs dword ptr [{a}], eax", a = const BASE + 4, in("rax") 0xDEAD_BEEFu64);
    t.expect_stored("movabs [0xfeb00004], eax (moffs 32-bit store)", 0xDEAD_BEEF_0000_0000);
    set(0);
    mmio!("movabs byte ptr [{a}], al", a = const BASE + 1, in("rax") 0x5Au64);
    t.expect_stored("movabs [0xfeb00001], al (moffs 8-bit store)", 0x5A00);

    // Loads, from a value with bit 7 set in every byte, into registers preloaded with FILL.
    set(LOADED);
    let mut v: u64;
    mmio!("mov rax, qword ptr [rdi]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov rax, [rdi] (64-bit load)", LOADED, v);
    mmio!("mov r9, qword ptr [r12]", in("r12") BASE, inout("r9") FILL => v);
    t.expect("mov r9, [r12] (64-bit load, REX.R destination, REX.B base needing a SIB)", LOADED, v);
    mmio!("mov rax, qword ptr [rsi + rcx*8 - 8]", in("rsi") BASE, in("rcx") 1u64, inout("rax") FILL => v);
    t.expect("mov rax, [rsi+rcx*8-8] (64-bit load, SIB addressing)", LOADED, v);
    mmio!("mov eax, dword ptr [rdi]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov eax, [rdi] (32-bit load zero-extends to 64 bits)", 0xCCDD_EEFF, v);
    mmio!("mov eax, dword ptr [rdi + 4]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov eax, [rdi+4] (32-bit load, offset 4)", 0x8899_AABB, v);
    mmio!("mov ax, word ptr [rdi + 2]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov ax, [rdi+2] (16-bit load keeps bits 63:16)", 0x5555_5555_5555_CCDD, v);
    mmio!("mov al, byte ptr [rdi + 5]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov al, [rdi+5] (8-bit load keeps bits 63:8)", 0x5555_5555_5555_55AA, v);
    mmio!("mov ah, byte ptr [rdi + 7]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov ah, [rdi+7] (8-bit load into a high-byte register)", 0x5555_5555_5555_8855, v);
    mmio!("movzx eax, byte ptr [rdi + 1]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movzx eax, byte ptr [rdi+1]", 0xEE, v);
    mmio!("movzx eax, word ptr [rdi + 6]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movzx eax, word ptr [rdi+6]", 0x8899, v);
    mmio!("movzx rax, byte ptr [rdi]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movzx rax, byte ptr [rdi] (REX.W)", 0xFF, v);
    mmio!("movzx r10, word ptr [rdi + 2]", in("rdi") BASE, inout("r10") FILL => v);
    t.expect("movzx r10, word ptr [rdi+2] (REX.W REX.R)", 0xCCDD, v);
    mmio!("movsx rax, byte ptr [rdi + 7]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movsx rax, byte ptr [rdi+7] (sign-extends a negative byte)", 0xFFFF_FFFF_FFFF_FF88, v);
    mmio!("movsx rax, word ptr [rdi + 6]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movsx rax, word ptr [rdi+6]", 0xFFFF_FFFF_FFFF_8899, v);
    mmio!("movsx eax, byte ptr [rdi]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movsx eax, byte ptr [rdi] (sign-extends to 32 bits, zero-extends to 64)", 0xFFFF_FFFF, v);
    mmio!("movsx eax, word ptr [rdi + 4]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movsx eax, word ptr [rdi+4]", 0xFFFF_AABB, v);
    mmio!("movsxd rax, dword ptr [rdi + 4]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movsxd rax, dword ptr [rdi+4]", 0xFFFF_FFFF_8899_AABB, v);

    // moffs loads (movabs, opcodes A0/A1).
    mmio!("movabs rax, qword ptr [{a}]", a = const BASE, inout("rax") FILL => v);
    t.expect("movabs rax, [0xfeb00000] (moffs 64-bit load)", LOADED, v);
    mmio!("movabs eax, dword ptr [{a}]", a = const BASE + 4, inout("rax") FILL => v);
    t.expect("movabs eax, [0xfeb00004] (moffs 32-bit load zero-extends)", 0x8899_AABB, v);
    mmio!("movabs ax, word ptr [{a}]", a = const BASE + 6, inout("rax") FILL => v);
    t.expect("movabs ax, [0xfeb00006] (moffs 16-bit load)", 0x5555_5555_5555_8899, v);
    mmio!("movabs al, byte ptr [{a}]", a = const BASE + 2, inout("rax") FILL => v);
    t.expect("movabs al, [0xfeb00002] (moffs 8-bit load)", 0x5555_5555_5555_55DD, v);

    // The read-only magic at offset 8.
    mmio!("mov rax, qword ptr [rdi + 8]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov rax, [rdi+8] (the magic \"KEELMMIO\")", MAGIC, v);
    mmio!("mov eax, dword ptr [rdi + 12]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("mov eax, [rdi+12] (upper half of the magic)", MAGIC >> 32, v);
    mmio!("movzx eax, byte ptr [rdi + 8]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movzx eax, byte ptr [rdi+8] (low byte of the magic)", MAGIC & 0xFF, v);
    mmio!("movsx rax, byte ptr [rdi + 8]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("movsx rax, byte ptr [rdi+8] (sign-extends a positive byte)", MAGIC & 0xFF, v);
    mmio!("movabs rax, qword ptr [{a}]", a = const BASE + 8, inout("rax") FILL => v);
    t.expect("movabs rax, [0xfeb00008] (moffs load of the magic)", MAGIC, v);
    set(LOADED);
    mmio!("mov qword ptr [rdi + 8], rsi", in("rdi") BASE, in("rsi") 0u64);
    mmio!("mov byte ptr [rdi + 9], 0", in("rdi") BASE);
    mmio!("mov rax, qword ptr [rdi + 8]", in("rdi") BASE, inout("rax") FILL => v);
    t.expect("stores to the read-only magic are ignored", MAGIC, v);
    t.expect_stored("stores to the magic leave the scratch register alone", LOADED);

    set(0);
    t.c.finish()
}
