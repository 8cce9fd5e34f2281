//! Round-trip and rejection tests for every call.

use super::*;

fn b(addr: u64, len: u64) -> UserBuf {
    UserBuf { addr, len }
}

fn every_call() -> Vec<Syscall> {
    use Syscall::*;
    vec![
        Exit { code: 7 },
        Yield,
        ClockNs,
        MemMap { addr: 0x40_0000, len: 0x2000, prot: prot::READ | prot::WRITE },
        MemUnmap { addr: 0x40_0000, len: 0x1000 },
        ShmCreate { len: 1 << 20 },
        ShmMap { handle: 4, addr: 0, prot: prot::READ },
        ThreadCreate { entry: 0x40_1000, stack: 0x7fff_0000, arg: 42 },
        ThreadExit,
        NotifyCreate,
        NotifySignal { handle: 5, bits: 1 << 63 },
        NotifyWait { handle: 5, timeout_ns: u64::MAX },
        NotifySignalWait { signal: 5, bits: 1, wait: 6, timeout_ns: 1_000 },
        ProcessSpawn { modules: HANDLE_MODULES, name: b(0x1000, 8), notify: 5, bit: 63 },
        ProcessWait { process: 9 },
        ProcessKill { process: 9 },
        HandleGrant { process: 9, handle: 5, rights: Rights::SIGNAL.union(Rights::WAIT) },
        HandleClose { handle: 5 },
        ConsoleWrite { console: HANDLE_CONSOLE, buf: b(0x1000, 100) },
        ConsoleRead { console: HANDLE_CONSOLE, buf: b(0x1000, 100) },
        ConsoleBind { console: HANDLE_CONSOLE, notify: 5, bit: 0 },
        ConsoleClaim { console: HANDLE_CONSOLE },
        KlogRead { console: HANDLE_CONSOLE, from: 12345, buf: b(0x2000, 4096) },
        KlogBind { console: HANDLE_CONSOLE, notify: 5, bit: 1 },
        ModuleSize { modules: HANDLE_MODULES, name: b(0x3000, 7) },
        ModuleRead { modules: HANDLE_MODULES, name: b(0x3000, 7), offset: 99, buf: b(0x4000, 512) },
        KernelInfo { kind: InfoKind::Cpus, buf: b(0x5000, 4096) },
        Reboot { system: HANDLE_SYSTEM },
        DebugWrite { buf: b(0x6000, 10) },
        ProcessSpawnWith { modules: HANDLE_MODULES, name: b(0x1000, 7), notify: 6, bit: 3, grants: b(0x2000, 16) },
        VmCreate,
        VmMap { vm: 7, shm: 8, gpa: Gpa(0x10_0000), prot: vcpu::gprot::ALL },
        VcpuCreate { vm: 7, state_addr: 0x7000_0000 },
        VcpuRun { vcpu: 9 },
        VcpuPoke { vcpu: 9 },
        VmUnmap { vm: 7, gpa: Gpa(0x10_0000) },
        ClockRealtime,
        IoPortsCreate { hardware: HANDLE_HARDWARE, base: 0xcf8, count: 8 },
        IoPortsEnable { ports: 5 },
        DeviceMemoryCreate { hardware: HANDLE_HARDWARE, phys: 0xfebf_0000, len: 0x4000 },
        DmaCreate { hardware: HANDLE_HARDWARE, len: 0x10000 },
        IrqCreate { hardware: HANDLE_HARDWARE, source: IrqSource::Msi, notify: 5, bit: 2 },
        IrqAck { irq: 6 },
    ]
}

#[test]
fn device_calls_refuse_bad_ranges_and_sources() {
    let regs = |n, a, b, c| [n, a, b, c, 0, 0, 0];
    assert_eq!(Syscall::decode(regs(nr::IO_PORTS_CREATE, 4, 0xfff8, 9)), Err(Error::InvalidArgument));
    assert_eq!(Syscall::decode(regs(nr::IO_PORTS_CREATE, 4, 0x10000, 1)), Err(Error::InvalidArgument));
    assert_eq!(Syscall::decode(regs(nr::IO_PORTS_CREATE, 4, 0x60, 0)), Err(Error::InvalidArgument));
    assert!(Syscall::decode(regs(nr::IO_PORTS_CREATE, 4, 0xfff8, 8)).is_ok());
    let line = IrqSource::Gsi { gsi: 16, level: true, active_low: true };
    let call = Syscall::IrqCreate { hardware: HANDLE_HARDWARE, source: line, notify: 5, bit: 3 };
    assert_eq!(Syscall::decode(call.encode()), Ok(call));
    assert_eq!(Syscall::decode(regs(nr::IRQ_CREATE, 4, 1 << 40, 5)), Err(Error::InvalidArgument));
    assert_eq!(Syscall::decode(regs(nr::IRQ_CREATE, 4, (1 << 63) | 1, 5)), Err(Error::InvalidArgument));
}

#[test]
fn every_call_round_trips() {
    let calls = every_call();
    assert_eq!(calls.len(), 43, "a new call needs a round-trip case here");
    let mut numbers = std::collections::BTreeSet::new();
    for call in calls {
        let regs = call.encode();
        assert!(numbers.insert(regs[0]), "number {} used twice", regs[0]);
        assert_eq!(Syscall::decode(regs), Ok(call), "{call:?}");
    }
}

#[test]
fn unknown_numbers_and_bad_arguments_are_rejected() {
    assert_eq!(Syscall::decode([999, 0, 0, 0, 0, 0, 0]), Err(Error::UnknownSyscall));
    assert_eq!(Syscall::decode([u64::MAX, 0, 0, 0, 0, 0, 0]), Err(Error::UnknownSyscall));
    // Handle 0 and handles above u32 are invalid.
    assert_eq!(Syscall::decode([nr::NOTIFY_WAIT, 0, 0, 0, 0, 0, 0]), Err(Error::InvalidHandle));
    assert_eq!(Syscall::decode([nr::NOTIFY_WAIT, 1 << 32, 0, 0, 0, 0, 0]), Err(Error::InvalidHandle));
    // Buffers reaching into the kernel half or wrapping around.
    assert_eq!(Syscall::decode([nr::CONSOLE_WRITE, 1, USER_END - 4, 8, 0, 0, 0]), Err(Error::BadAddress));
    assert_eq!(Syscall::decode([nr::CONSOLE_WRITE, 1, u64::MAX, 2, 0, 0, 0]), Err(Error::BadAddress));
    assert_eq!(Syscall::decode([nr::DEBUG_WRITE, 0xffff_8000_0000_0000, 1, 0, 0, 0, 0]), Err(Error::BadAddress));
    // Sizes.
    assert_eq!(Syscall::decode([nr::CONSOLE_READ, 1, 0x1000, MAX_IO + 1, 0, 0, 0]), Err(Error::TooLarge));
    assert_eq!(Syscall::decode([nr::MODULE_SIZE, 2, 0x1000, 0, 0, 0, 0]), Err(Error::InvalidArgument));
    assert_eq!(Syscall::decode([nr::MODULE_SIZE, 2, 0x1000, MAX_NAME + 1, 0, 0, 0]), Err(Error::InvalidArgument));
    // Notification bits are 0..64.
    assert_eq!(Syscall::decode([nr::CONSOLE_BIND, 1, 2, 64, 0, 0, 0]), Err(Error::InvalidArgument));
    assert_eq!(Syscall::decode([nr::KERNEL_INFO, 9, 0x1000, 10, 0, 0, 0]), Err(Error::InvalidArgument));
    assert_eq!(Syscall::decode([nr::HANDLE_GRANT, 1, 2, 1 << 40, 0, 0, 0]), Err(Error::InvalidArgument));
    // Grants: whole u32s, at most MAX_GRANTS.
    assert_eq!(Syscall::decode([nr::PROCESS_SPAWN_WITH, 2, 0x1000, 3, 5 << 8, 0x2000, 6]), Err(Error::InvalidArgument));
    assert_eq!(
        Syscall::decode([nr::PROCESS_SPAWN_WITH, 2, 0x1000, 3, 5 << 8, 0x2000, 8 * 17]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(Syscall::decode([nr::PROCESS_SPAWN_WITH, 2, 0x1000, 3, 0, 0x2000, 8]), Err(Error::InvalidHandle));
}

#[test]
fn decode_never_panics_on_random_registers() {
    // A small deterministic xorshift sweep over all numbers and odd values.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in 0..40u64 {
        for _ in 0..2000 {
            let regs = [n, next(), next() % 0x1_0000, next(), next() % 128, next(), next()];
            let _ = Syscall::decode(regs);
        }
    }
}

#[test]
fn errors_and_returns_round_trip() {
    for e in Error::ALL {
        assert_eq!(Error::from_code(e as u64), Some(e));
        assert_eq!(Return::err(e).into_result(), Err(e));
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(Error::from_code(0), None);
    assert_eq!(Return::ok2(5, 6).into_result(), Ok((5, 6)));
    assert_eq!(Return { rax: 777, rdx: 0, rsi: 0 }.into_result(), Err(Error::UnknownSyscall));
    assert_eq!(Return::from_result(Ok((1, 2))), Return::ok2(1, 2));
}

#[test]
fn exit_status_and_rights() {
    for s in [ExitStatus::Exited(0), ExitStatus::Exited(u32::MAX), ExitStatus::Killed { vector: 14 }] {
        assert_eq!(ExitStatus::decode(s.encode()), s);
    }
    let r = Rights::READ.union(Rights::WRITE);
    assert!(r.contains(Rights::READ));
    assert!(!r.contains(Rights::MAP));
    assert_eq!(r.intersect(Rights::WRITE), Rights::WRITE);
    assert!(Rights::ALL.contains(Rights::REBOOT));
}

fn round_trip<R: info::Record + PartialEq + core::fmt::Debug + Copy>(r: R) {
    let mut bytes = vec![0xaau8; R::SIZE + 3];
    r.write(&mut bytes);
    assert_eq!(R::read(&bytes), Some(r), "read back");
    assert_eq!(R::read(&bytes[..R::SIZE - 1]), None, "a cut record is not read");
    // Several in a row, the last cut: only the whole ones come back.
    let mut many = vec![0u8; 2 * R::SIZE + 1];
    r.write(&mut many[..R::SIZE]);
    r.write(&mut many[R::SIZE..]);
    assert_eq!(info::records::<R>(&many).count(), 2);
}

#[test]
fn info_records_round_trip() {
    use info::*;
    round_trip(VersionRecord { major: 1, minor: 22, patch: 333, git_rev: fixed_text("abc1234") });
    round_trip(CpuRecord {
        index: 3,
        apic_id: 6,
        flags: cpu_flags::ONLINE | cpu_flags::BOOT,
        virt: [2, 16],
        ticks: u64::MAX - 1,
    });
    round_trip(MemoryRecord { usable_bytes: 1 << 40, free_bytes: 5, heap_size: 8 << 20, heap_used: 4097 });
    round_trip(ProcessRecord { pid: 12, pages: 345, state: 1, name: fixed_text("monitor") });
    round_trip(StatsRecord { boot_tsc: 0x1234_5678_9abc, idle_tsc: 0x55_aa00 });
    round_trip(ClockRecord { ns_per_tick_fp32: 0x1_0000_0000 });
}

#[test]
fn info_kinds_and_text_fields() {
    for k in InfoKind::ALL {
        assert_eq!(InfoKind::from_code(k as u64), Some(k));
    }
    assert_eq!(InfoKind::from_code(6), None);
    assert_eq!(info::field_text(&info::fixed_text::<8>("vmd")), "vmd");
    // Cut to the field, and read back without padding; bad UTF-8 reads as "?".
    assert_eq!(info::field_text(&info::fixed_text::<4>("monitor")), "moni");
    assert_eq!(info::field_text(&[0xff, 0xfe, 0]), "?");
}

#[test]
fn clock_record_converts_ticks_as_the_kernel_does() {
    use info::ClockRecord;
    // 1 GHz: one tick is one nanosecond; 2 GHz: two ticks are one.
    assert_eq!(ClockRecord { ns_per_tick_fp32: 1 << 32 }.ns_at(12_345), 12_345);
    assert_eq!(ClockRecord { ns_per_tick_fp32: 1 << 31 }.ns_at(12_345), 6_172);
    // No overflow at the counter's end (the product is 128-bit).
    assert_eq!(ClockRecord { ns_per_tick_fp32: 1 << 32 }.ns_at(u64::MAX), u64::MAX);
}
