//! The driver against the fake controller (`fake_controller.rs`): bring-up and identify, data
//! round trips across transfer splits and PRP forms, flush and zeroing, device errors, silent,
//! fatal and vanished controllers, reset timeouts, hostile identify data and queue wrap-around.

mod fake_controller;

use keel_block::{BlockDevice, BlockError};
use keel_drv_hal::fake::{FakeMemory, FakePlatform};
use keel_drv_hal::HwError;

use crate::command::nvm;
use crate::{NamespaceUnusable, Nvme, NvmeError};
use fake_controller::{controller_data, namespace_data, FakeNvme, UNRECOVERED_READ_ERROR};

type Driver = Nvme<FakeNvme, FakePlatform>;

/// A fake controller with one namespace of 4096 blocks of 512 bytes, and its platform.
fn rig() -> (FakeNvme, FakePlatform, FakeMemory) {
    let memory = FakeMemory::new();
    let platform = FakePlatform::new(memory.clone());
    let fake = FakeNvme::new(memory.clone(), platform.clock());
    fake.add_namespace(1, 4096, 9);
    (fake, platform, memory)
}

fn start(fake: &FakeNvme, platform: FakePlatform) -> Driver {
    Nvme::new(fake.clone(), platform).expect("bring-up")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

/// The I/O commands the fake took with `opcode`, as (SLBA, blocks, PRP1, PRP2).
fn io_commands(fake: &FakeNvme, opcode: u8) -> Vec<(u64, u32, u64, u64)> {
    fake.with(|c| {
        c.log
            .iter()
            .filter(|(queue, command)| *queue != 0 && command.opcode() == opcode)
            .map(|(_, command)| {
                let d = command.dwords;
                let prp1 = d[6] as u64 | (d[7] as u64) << 32;
                let prp2 = d[8] as u64 | (d[9] as u64) << 32;
                (d[10] as u64 | (d[11] as u64) << 32, (d[12] & 0xffff) + 1, prp1, prp2)
            })
            .collect()
    })
}

#[test]
fn bring_up_identifies_the_controller_and_its_namespaces() {
    let (fake, platform, _) = rig();
    fake.add_namespace(3, 100, 12);
    let nvme = start(&fake, platform);
    assert_eq!(nvme.namespaces().len(), 2);
    assert_eq!((nvme.namespaces()[1].id, nvme.namespaces()[1].block_size), (3, 4096));
    let info = nvme.describe(0).unwrap();
    assert_eq!(
        (info.model.as_str(), info.serial.as_str(), info.firmware.as_str()),
        ("KEEL FAKE NVME", "FAKE0001", "1.0")
    );
    assert_eq!((info.controller, info.block_size, info.block_count, info.size_bytes()), ("NVMe", 512, 4096, 2 << 20));
    assert!(info.write_cache);
    assert_eq!(
        info.to_string(),
        "NVMe KEEL FAKE NVME (serial FAKE0001, firmware 1.0) namespace 1: 4096 blocks of 512 bytes"
    );
    assert_eq!(nvme.version(), 0x0001_0400);
    assert!(nvme.describe(2).is_none());
    assert_eq!(nvme.max_transfer(), 256 * 1024);
}

#[test]
fn large_transfers_split_and_use_a_prp_list() {
    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    let data = pattern(1 << 20, 7);
    let mut disk = nvme.disk(0).unwrap();
    disk.write_blocks(3, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    disk.read_blocks(3, &mut back).unwrap();
    assert!(back == data);
    let on_disk = fake.with(|c| c.namespaces[0].disk.bytes()[3 * 512..3 * 512 + data.len()].to_vec());
    assert!(on_disk == data);
    let writes = io_commands(&fake, nvm::WRITE);
    assert_eq!(writes.iter().map(|w| w.1).collect::<Vec<_>>(), [512, 512, 512, 512]);
    assert_eq!(writes.iter().map(|w| w.0).collect::<Vec<_>>(), [3, 515, 1027, 1539]);
    // More than two pages: PRP2 is the list, not the next page.
    assert!(writes.iter().all(|&(_, _, prp1, prp2)| prp2 != 0 && prp2 != prp1 + 4096));
}

#[test]
fn small_mdts_splits_into_two_page_transfers() {
    let (fake, platform, _) = rig();
    fake.with(|c| c.identify_controller = controller_data("M", "S", 1, false, 0, 1));
    let mut nvme = start(&fake, platform);
    assert_eq!(nvme.max_transfer(), 8192);
    let data = pattern(40 * 512, 1);
    nvme.write_blocks(0, 10, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    nvme.read_blocks(0, 10, &mut back).unwrap();
    assert!(back == data);
    let reads = io_commands(&fake, nvm::READ);
    assert_eq!(reads.iter().map(|r| r.1).collect::<Vec<_>>(), [16, 16, 8]);
    assert_eq!(reads[0].3, reads[0].2 + 4096, "two pages: PRP2 is the second page");
    let mut one = [0u8; 512];
    nvme.read_blocks(0, 10, &mut one).unwrap();
    assert_eq!(io_commands(&fake, nvm::READ).last().unwrap().3, 0, "one page: no PRP2");
    assert_eq!(&one[..], &data[..512]);
}

#[test]
fn flush_is_sent_only_with_a_volatile_write_cache() {
    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    nvme.disk(0).unwrap().flush().unwrap();
    assert_eq!(io_commands(&fake, nvm::FLUSH).len(), 1);

    let (fake, platform, _) = rig();
    fake.with(|c| c.identify_controller = controller_data("M", "S", 0, false, 0, 1));
    let mut nvme = start(&fake, platform);
    nvme.disk(0).unwrap().flush().unwrap();
    assert!(io_commands(&fake, nvm::FLUSH).is_empty());
}

#[test]
fn write_zeroes_uses_the_command_when_offered_and_writes_otherwise() {
    let (fake, platform, _) = rig();
    fake.with(|c| c.namespaces[0].disk = keel_block::MemDisk::from_bytes(512, vec![0xaa; 512 * 70_000]));
    fake.with(|c| c.namespaces[0].identify = namespace_data(70_000, 0, 0, &[9 << 16]));
    let mut nvme = start(&fake, platform);
    nvme.write_zeroes(0, 1, 69_998).unwrap();
    let zeroes = io_commands(&fake, nvm::WRITE_ZEROES);
    assert_eq!(zeroes.iter().map(|z| z.1).collect::<Vec<_>>(), [65536, 4462]);
    let bytes = fake.with(|c| c.namespaces[0].disk.bytes().to_vec());
    assert!(bytes[..512].iter().all(|&b| b == 0xaa) && bytes[512 * 69_999..].iter().all(|&b| b == 0xaa));
    assert!(bytes[512..512 * 69_999].iter().all(|&b| b == 0));
    assert_eq!(nvme.write_zeroes(0, 69_999, 2), Err(BlockError::OutOfRange));

    let (fake, platform, _) = rig();
    fake.with(|c| c.namespaces[0].disk = keel_block::MemDisk::from_bytes(512, vec![0xaa; 512 * 4096]));
    fake.with(|c| c.identify_controller = controller_data("M", "S", 0, true, 0, 1));
    let mut nvme = start(&fake, platform);
    nvme.disk(0).unwrap().write_zeroes(100, 1000).unwrap();
    assert!(io_commands(&fake, nvm::WRITE_ZEROES).is_empty());
    assert_eq!(io_commands(&fake, nvm::WRITE).len(), 2);
    let bytes = fake.with(|c| c.namespaces[0].disk.bytes().to_vec());
    assert!(bytes[512 * 100..512 * 1100].iter().all(|&b| b == 0) && bytes[512 * 1100] == 0xaa);
}

#[test]
fn a_device_error_is_reported_with_its_status_and_the_disk_goes_on() {
    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    fake.with(|c| c.failing_lba = Some((20, UNRECOVERED_READ_ERROR)));
    let mut buf = vec![0u8; 8192];
    assert_eq!(nvme.read_blocks(0, 16, &mut buf), Err(BlockError::Device(0x281)));
    nvme.read_blocks(0, 21, &mut buf).unwrap();
    assert_eq!(nvme.read_blocks(0, 4090, &mut buf), Err(BlockError::OutOfRange));
    assert_eq!(nvme.read_blocks(0, 0, &mut buf[..100]), Err(BlockError::Misaligned));
    assert_eq!(nvme.read_blocks(5, 0, &mut buf), Err(BlockError::Gone));
}

#[test]
fn a_silent_controller_times_out_and_is_reset_before_the_next_command() {
    let (fake, platform, _) = rig();
    let clock = platform.clock();
    let mut nvme = start(&fake, platform);
    fake.with(|c| c.silent = true);
    let before = clock.get();
    let mut buf = vec![0u8; 4096];
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Timeout));
    assert!(clock.get() - before >= 30_000_000_000);
    assert_eq!(fake.with(|c| c.resets), 1, "disabled after the timeout");
    fake.with(|c| c.silent = false);
    nvme.write_blocks(0, 0, &pattern(4096, 3)).unwrap();
    let queues_created = fake.with(|c| c.log.iter().filter(|(q, cmd)| *q == 0 && cmd.opcode() == 0x01).count());
    assert_eq!(queues_created, 2, "restarted before the next command");
    nvme.read_blocks(0, 0, &mut buf).unwrap();
    assert!(buf == pattern(4096, 3));
}

#[test]
fn a_controller_that_cannot_be_restarted_is_gone() {
    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    fake.with(|c| c.silent = true);
    let mut buf = vec![0u8; 512];
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Timeout));
    fake.with(|c| c.never_ready = true);
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Timeout));
    let taken = fake.with(|c| c.log.len());
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
    assert_eq!(nvme.flush(0), Err(BlockError::Gone));
    assert_eq!(fake.with(|c| c.log.len()), taken);
}

#[test]
fn a_fatal_status_or_a_vanished_controller_is_gone() {
    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    fake.with(|c| c.fatal_after = Some(1));
    let mut buf = vec![0u8; 512];
    nvme.read_blocks(0, 0, &mut buf).unwrap();
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
    assert_eq!(nvme.write_blocks(0, 0, &buf), Err(BlockError::Gone));

    let (fake, platform, _) = rig();
    let clock = platform.clock();
    let mut nvme = start(&fake, platform);
    fake.with(|c| c.removed = true);
    let before = clock.get();
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
    assert!(clock.get() - before < 1_000_000_000, "all-ones status ends the wait at once");

    let (fake, platform, _) = rig();
    fake.with(|c| c.removed = true);
    assert_eq!(Nvme::new(fake.clone(), platform).err(), Some(NvmeError::NotPresent));
}

#[test]
fn reset_and_ready_timeouts_end_within_cap_to() {
    let (fake, platform, _) = rig();
    let clock = platform.clock();
    fake.with(|c| c.never_ready = true);
    assert_eq!(Nvme::new(fake.clone(), platform).err(), Some(NvmeError::ReadyTimeout));
    // CAP.TO 2: one second.
    assert!((1_000_000_000..1_100_000_000).contains(&clock.get()));

    // Left enabled by the firmware, and RDY never clears: the driver must not wait for ever.
    let (fake, platform, _) = rig();
    let clock = platform.clock();
    fake.with(|c| {
        c.left_enabled();
        c.never_resets = true;
    });
    let err = Nvme::new(fake.clone(), platform).err();
    assert!((1_000_000_000..1_100_000_000).contains(&clock.get()));
    assert_eq!(err, Some(NvmeError::ResetTimeout));
}

#[test]
fn hostile_namespace_data_is_skipped_not_trusted() {
    let (fake, platform, _) = rig();
    let formats = |nlbaf, flbas, list: &[u32]| namespace_data(1000, nlbaf, flbas, list);
    fake.with(|c| {
        c.identify_controller = controller_data("M", "S", 1, false, 0, 9);
        let mut add = |id, identify| {
            c.namespaces.push(fake_controller::FakeNamespace { id, identify, disk: keel_block::MemDisk::new(512, 1) })
        };
        add(2, namespace_data(0, 0, 0, &[9 << 16]));
        add(3, formats(0, 0, &[3 << 16]));
        add(4, formats(0, 0, &[200 << 16]));
        add(5, formats(1, 5, &[9 << 16, 9 << 16]));
        add(6, formats(0, 0, &[9 << 16 | 8]));
        add(7, formats(0, 0, &[16 << 16]));
        add(8, [0xff; 4096]);
    });
    let nvme = start(&fake, platform);
    assert_eq!(nvme.namespaces().len(), 1);
    assert_eq!(
        nvme.skipped_namespaces(),
        [
            (3, NamespaceUnusable::BlockSize(3)),
            (4, NamespaceUnusable::BlockSize(200)),
            (5, NamespaceUnusable::NoSuchFormat),
            (6, NamespaceUnusable::Metadata),
            (7, NamespaceUnusable::BlockSize(16)),
            (8, NamespaceUnusable::BlockSize(255)),
        ]
    );
}

#[test]
fn hostile_controller_data_gives_limits_not_panics() {
    let (fake, platform, _) = rig();
    fake.with(|c| {
        c.identify_controller = [0xff; 4096];
        c.no_active_list = true;
        c.namespaces[0].identify = namespace_data(u64::MAX, 0, 0, &[9 << 16]);
    });
    let mut nvme = start(&fake, platform);
    let info = nvme.describe(0).unwrap();
    assert_eq!(info.model, "?".repeat(40));
    assert_eq!(info.size_bytes(), u64::MAX);
    assert_eq!(nvme.max_transfer(), 256 * 1024);
    // Namespaces 1..=256 probed (NN is 2^32 - 1); only namespace 1 answers.
    let identifies = fake.with(|c| c.log.iter().filter(|(q, cmd)| *q == 0 && cmd.opcode() == 0x06).count());
    assert_eq!(identifies, 2 + 256);
    let mut buf = [0u8; 512];
    assert_eq!(nvme.read_blocks(0, u64::MAX, &mut buf), Err(BlockError::OutOfRange));
}

#[test]
fn queues_wrap_around_many_times() {
    let (fake, platform, _) = rig();
    // MQES 1: queues of two entries, so every other command wraps.
    fake.with(|c| c.cap = (c.cap & !0xffff) | 1);
    let mut nvme = start(&fake, platform);
    for round in 0..50u64 {
        let data = pattern(1024, round as u8);
        nvme.write_blocks(0, round * 2, &data).unwrap();
        let mut back = vec![0u8; 1024];
        nvme.read_blocks(0, round * 2, &mut back).unwrap();
        assert!(back == data, "round {round}");
    }
    assert_eq!(fake.with(|c| c.posted[&1]), 100);

    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    let mut buf = [0u8; 512];
    for lba in 0..300 {
        nvme.read_blocks(0, lba, &mut buf).unwrap();
    }
    assert_eq!(fake.with(|c| c.posted[&1]), 300, "past four passes of the 64-entry queue");
}

#[test]
fn large_memory_pages_and_doorbell_strides_are_honoured() {
    let (fake, platform, _) = rig();
    // MPSMIN 1 (8 KiB pages), DSTRD 2 (16-byte doorbells).
    fake.with(|c| {
        c.cap |= 1 << 48 | 2 << 32;
        c.bar_len = 0x1000 + 4 * 16;
    });
    let mut nvme = start(&fake, platform);
    let data = pattern(300 * 1024, 9);
    nvme.write_blocks(0, 1, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    nvme.read_blocks(0, 1, &mut back).unwrap();
    assert!(back == data);

    let (fake, platform, _) = rig();
    fake.with(|c| c.cap |= 15 << 32);
    assert!(matches!(Nvme::new(fake.clone(), platform).err(), Some(NvmeError::Unsupported(_))));
    let (fake, platform, _) = rig();
    fake.with(|c| c.cap |= 15 << 48);
    assert!(matches!(Nvme::new(fake.clone(), platform).err(), Some(NvmeError::Unsupported(_))));
}

#[test]
fn running_out_of_dma_memory_is_an_error() {
    let (fake, platform, memory) = rig();
    memory.limit(64 * 1024);
    assert_eq!(Nvme::new(fake.clone(), platform).err(), Some(NvmeError::Memory(HwError::NoMemory)));
}

#[test]
fn shutdown_waits_for_the_controller() {
    let (fake, platform, _) = rig();
    let mut nvme = start(&fake, platform);
    nvme.shutdown().unwrap();
    assert_eq!(fake.with(|c| c.status()) >> 2 & 0b11, 0b10);
    let mut buf = [0u8; 512];
    assert_eq!(nvme.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
}

#[test]
fn bring_up_polls_when_no_interrupt_comes() {
    let (fake, mut platform, _) = rig();
    platform.set_step_ns(u64::MAX);
    let clock = platform.clock();
    let mut nvme = start(&fake, platform);
    let mut buf = [0u8; 512];
    nvme.read_blocks(0, 0, &mut buf).unwrap();
    // Ready 3 ms after enable; CAP.TO is a second.
    assert!(clock.get() < 10_000_000, "waited {} ns", clock.get());
}
