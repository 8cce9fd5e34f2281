//! `selftest`: exercises the kernel's system calls from ring 3 and reports each check on the
//! kernel log, ending with `selftest: all N checks passed` or the failures. Run by the system
//! tests through vmd's `spawn selftest`; it has no console handle (as any spawned program).
//!
//! Checks: anonymous memory and W^X, unmapping, bad pointers and sizes get errors (not faults),
//! handle type and rights checks, notifications with timeouts, threads, preemption of a thread
//! that never yields, shared memory seen at two addresses, and KernelInfo's fixed records.
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};

use keel_abi::{prot, Error, HANDLE_CONSOLE};
use keel_addr::Gpa;
use keel_rt::io::debug;
use keel_rt::sys;

struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            debug(format_args!("selftest: FAILED: {what}"));
        }
    }
}

static SPINS: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicU64 = AtomicU64::new(0);

/// A thread that never makes a system call until told to stop: only preemption lets the main
/// thread run again.
extern "C" fn spinner(_arg: u64) -> ! {
    while STOP.load(Ordering::Relaxed) == 0 {
        SPINS.fetch_add(1, Ordering::Relaxed);
    }
    keel_rt::sys::yield_now();
    sys::thread_exit()
}

#[no_mangle]
fn keel_main() -> i32 {
    let mut c = Checks { passed: 0, failed: 0 };
    let rw = prot::READ | prot::WRITE;

    // Memory: map, use, W^X, bad ranges, unmap.
    let page = sys::mem_map(0, 8192, rw);
    c.check("mem_map read-write", page.is_ok());
    let page = page.unwrap_or(0);
    if page != 0 {
        // SAFETY: the kernel just mapped 8 KiB read-write at `page`.
        unsafe { core::ptr::write_volatile((page + 4100) as *mut u64, 0x1234) };
        // SAFETY: as above.
        c.check(
            "mapped memory keeps what is written",
            unsafe { core::ptr::read_volatile((page + 4100) as *const u64) } == 0x1234,
        );
    }
    c.check(
        "W^X: writable+executable refused",
        sys::mem_map(0, 4096, prot::WRITE | prot::EXEC) == Err(Error::InvalidArgument),
    );
    c.check("kernel-half mapping refused", sys::mem_map(0xffff_8000_0000_0000, 4096, rw) == Err(Error::BadAddress));
    c.check("null page refused", sys::mem_map(0, 0, rw).is_err());
    c.check("mapping twice refused", sys::mem_map(page, 4096, rw) == Err(Error::Exists));
    c.check("unmap", sys::mem_unmap(page, 8192).is_ok());
    c.check("unmapped range can be mapped again", sys::mem_map(page, 4096, rw) == Ok(page));

    // Bad pointers and sizes in system calls are errors, not faults.
    let mut small = [0u8; 8];
    c.check("debug_write from an unmapped address", sys_debug_write_raw(0xdead_0000, 16) == Err(Error::BadAddress));
    c.check(
        "debug_write from the kernel half",
        sys_debug_write_raw(0xffff_ffff_8000_0000, 16) == Err(Error::BadAddress),
    );
    let ro = sys::mem_map(0, 4096, prot::READ).unwrap_or(0);
    c.check("kernel writes into read-only memory refused", module_read_raw(ro, 16) == Err(Error::BadAddress));
    c.check(
        "module_size of a missing module",
        sys::module_size(keel_abi::HANDLE_MODULES, "nothere") == Err(Error::InvalidHandle),
    );
    c.check("kernel_info works", sys::kernel_info(keel_abi::InfoKind::Version, &mut small).is_ok());
    // KernelInfo writes fixed records (keel-abi `info`), cut to the buffer, and says the full size.
    c.check(
        "kernel_info cut to the buffer",
        sys::kernel_info(keel_abi::InfoKind::Version, &mut small)
            == Ok((8, <keel_abi::info::VersionRecord as keel_abi::info::Record>::SIZE)),
    );
    let mut list = [0u8; 4096];
    let listed = sys::kernel_info(keel_abi::InfoKind::Processes, &mut list).is_ok_and(|(n, _)| {
        use keel_abi::info::{field_text, records, ProcessRecord};
        records::<ProcessRecord>(&list[..n]).any(|p| field_text(&p.name) == "selftest" && p.state == 0)
    });
    c.check("kernel_info process records list selftest", listed);

    // Handles: spawned programs hold none of vmd's; types and rights are checked.
    c.check("no console handle", sys::console_write(HANDLE_CONSOLE, b"x") == Err(Error::InvalidHandle));
    let n = sys::notify_create();
    c.check("notify_create", n.is_ok());
    let n = n.unwrap_or(0);
    c.check("notification is not a console", sys::console_write(n, b"x") == Err(Error::WrongType));
    c.check("handle 99 is invalid", sys::notify_signal(99, 1) == Err(Error::InvalidHandle));
    c.check("handle close", sys::handle_close(n).is_ok());
    c.check("closed handle is invalid", sys::notify_signal(n, 1) == Err(Error::InvalidHandle));

    // Notifications: signal, then wait returns the bits; a timeout returns 0 after the time.
    let n = sys::notify_create().unwrap_or(0);
    c.check("signal", sys::notify_signal(n, 0b101).is_ok());
    c.check("wait returns the bits", sys::notify_wait(n, Some(0)) == Ok(0b101));
    let t0 = sys::clock_ns();
    c.check("wait times out with 0", sys::notify_wait(n, Some(30_000_000)) == Ok(0));
    let waited = sys::clock_ns() - t0;
    c.check("the timeout took about 30 ms", (25_000_000..2_000_000_000).contains(&waited));

    // Threads and preemption: a thread that never yields, while this one sleeps and wakes.
    let stack = sys::mem_map(0, 64 * 1024, rw).unwrap_or(0);
    c.check("thread stack", stack != 0);
    c.check("thread_create", sys::thread_create(spinner, stack + 64 * 1024 - 8, 0).is_ok());
    let _ = sys::notify_wait(n, Some(50_000_000));
    let first = SPINS.load(Ordering::Relaxed);
    let _ = sys::notify_wait(n, Some(50_000_000));
    let second = SPINS.load(Ordering::Relaxed);
    c.check("the spinning thread ran", first > 0);
    c.check("this thread ran again while it spins (preemption)", second > first);
    STOP.store(1, Ordering::Relaxed);

    // Shared memory: the same frames at two addresses.
    let shm = sys_shm_create(8192);
    c.check("shm_create", shm.is_ok());
    let shm = shm.unwrap_or(0);
    let a = sys_shm_map(shm, rw).unwrap_or(0);
    let b = sys_shm_map(shm, prot::READ).unwrap_or(0);
    c.check("shm mapped twice", a != 0 && b != 0 && a != b);
    if a != 0 && b != 0 {
        // SAFETY: both ranges map the same 8 KiB of shared memory (the first writable).
        unsafe { core::ptr::write_volatile((a + 4096) as *mut u64, 0xfeed) };
        // SAFETY: as above.
        c.check(
            "shm write seen at the other address",
            unsafe { core::ptr::read_volatile((b + 4096) as *const u64) } == 0xfeed,
        );
    }
    c.check("shm W^X refused", sys_shm_map(shm, prot::WRITE | prot::EXEC) == Err(Error::InvalidArgument));

    // VMs: guest memory mapped (2 MiB nested pages where possible), overlaps refused, unmapped.
    match sys::vm_create() {
        Ok(vm) => {
            let ram = sys::shm_create(4 << 20).unwrap_or(0);
            c.check("vm_map 4 MiB at 0", sys::vm_map(vm, ram, Gpa(0), keel_abi::vcpu::gprot::ALL) == Ok(4 << 20));
            c.check(
                "vm_map overlap refused",
                sys::vm_map(vm, ram, Gpa(2 << 20), keel_abi::vcpu::gprot::ALL) == Err(Error::Exists),
            );
            c.check(
                "vm_map W without R refused",
                sys::vm_map(vm, ram, Gpa(8 << 20), keel_abi::vcpu::gprot::WRITE) == Err(Error::InvalidArgument),
            );
            c.check("vm_unmap", sys::vm_unmap(vm, Gpa(0)) == Ok(4 << 20));
            c.check("vm_unmap twice", sys::vm_unmap(vm, Gpa(0)) == Err(Error::NotFound));
            c.check(
                "vm_map again after unmap",
                sys::vm_map(vm, ram, Gpa(0), keel_abi::vcpu::gprot::ALL) == Ok(4 << 20),
            );
            c.check("a notification is not a VM", sys::vm_map(n, ram, Gpa(0), 1) == Err(Error::WrongType));
        }
        Err(e) => debug(format_args!("selftest: no VM checks ({e})")),
    }

    if c.failed == 0 {
        debug(format_args!("selftest: all {} checks passed", c.passed));
        0
    } else {
        debug(format_args!("selftest: {} of {} checks failed", c.failed, c.passed + c.failed));
        1
    }
}

fn raw2(call: keel_abi::Syscall) -> Result<u64, Error> {
    sys::raw_call(call).map(|(v, _)| v)
}

fn sys_debug_write_raw(addr: u64, len: u64) -> Result<u64, Error> {
    raw2(keel_abi::Syscall::DebugWrite { buf: keel_abi::UserBuf { addr, len } })
}

/// A call that writes into user memory at `addr` (KernelInfo needs no handle).
fn module_read_raw(addr: u64, len: u64) -> Result<u64, Error> {
    raw2(keel_abi::Syscall::KernelInfo { kind: keel_abi::InfoKind::Version, buf: keel_abi::UserBuf { addr, len } })
}

fn sys_shm_create(len: u64) -> Result<u32, Error> {
    sys::shm_create(len)
}

fn sys_shm_map(handle: u32, prot_bits: u64) -> Result<u64, Error> {
    sys::shm_map(handle, 0, prot_bits)
}
