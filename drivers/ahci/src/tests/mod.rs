//! The driver against the fake HBA (`fake_hba.rs`): bring-up and identify across port kinds,
//! data round trips across command splits and PRDT entries, flush, device errors with port
//! recovery, silent and stuck ports, reset timeouts, vanished HBAs, hostile identify data,
//! 32-bit HBAs, and many commands through slot 0.

mod fake_hba;

use keel_block::{BlockDevice, BlockError, DiskEvent};
use keel_drv_hal::fake::{FakeMemory, FakePlatform, HIGH_BASE};

use crate::fis;
use crate::{Ahci, AhciError, AtaUnusable, Options, PortSkip};
use fake_hba::{disk_identify, FakeAhci, FakeDevice};

type Driver = Ahci<FakeAhci, FakePlatform>;

/// A fake HBA with one disk of 8192 sectors of 512 bytes on port 0, and its platform.
fn rig() -> (FakeAhci, FakePlatform) {
    let memory = FakeMemory::new();
    let platform = FakePlatform::new(memory.clone());
    let fake = FakeAhci::new(memory, platform.clock());
    fake.attach_disk(0, 8192, 512);
    (fake, platform)
}

fn start(fake: &FakeAhci, platform: FakePlatform) -> Driver {
    Ahci::new(fake.clone(), platform).expect("bring-up")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

/// The commands port `port` took with `command`: (LBA, sectors, PRDT entries).
fn commands(fake: &FakeAhci, port: usize, command: u8) -> Vec<(u64, u32, usize)> {
    fake.with(|hba| {
        hba.ports[port]
            .log
            .iter()
            .filter(|entry| entry.0 == command)
            .map(|&(_, lba, count, prd)| (lba, count, prd))
            .collect()
    })
}

#[test]
fn bring_up_finds_disks_and_skips_what_it_does_not_drive() {
    let (fake, platform) = rig();
    fake.attach(1, FakeDevice::Atapi);
    fake.attach_disk(2, 100, 4096);
    fake.attach(4, FakeDevice::Other(0x9669_0101));
    fake.with(|hba| hba.pi |= 1 << 3 | 1 << 31);
    let ahci = start(&fake, platform);
    assert_eq!(ahci.disk_count(), 2);
    let info = ahci.describe(1).unwrap();
    assert_eq!((info.controller, info.unit, info.block_size, info.block_count), ("AHCI", 2, 4096, 100));
    let info = ahci.describe(0).unwrap();
    assert_eq!((info.model.as_str(), info.serial.as_str(), info.firmware.as_str()), ("KEEL FAKE SATA", "SN0", "1.0"));
    assert_eq!(info.size_bytes(), 8192 * 512);
    assert!(info.write_cache);
    assert_eq!(info.to_string(), "AHCI KEEL FAKE SATA (serial SN0, firmware 1.0) port 0: 8192 blocks of 512 bytes");
    // Port 3 is empty, port 31 lies outside the register window.
    assert_eq!(ahci.skipped_ports(), [(1, PortSkip::Atapi), (4, PortSkip::Unknown(0x9669_0101))]);
    assert_eq!(ahci.version(), 0x0001_0301);
    assert!(ahci.describe(2).is_none());
    // The ATAPI port was stopped again, FIS receive included.
    assert_eq!(fake.with(|hba| hba.ports[1].log.len()), 0);
}

#[test]
fn large_requests_split_into_commands_of_several_prdt_entries() {
    let (fake, platform) = rig();
    let mut ahci = start(&fake, platform);
    assert_eq!(ahci.max_transfer(), 512 * 1024);
    let data = pattern(1300 * 512, 4);
    let mut disk = ahci.disk(0).unwrap();
    disk.write_blocks(5, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    disk.read_blocks(5, &mut back).unwrap();
    assert!(back == data);
    assert!(fake.disk_bytes(0)[5 * 512..5 * 512 + data.len()] == data[..]);
    assert_eq!(commands(&fake, 0, fis::WRITE_DMA_EXT), [(5, 1024, 8), (1029, 276, 3)]);
    assert_eq!(commands(&fake, 0, fis::READ_DMA_EXT), [(5, 1024, 8), (1029, 276, 3)]);
}

#[test]
fn prdt_entries_stop_at_four_mib() {
    let (fake, platform) = rig();
    fake.attach_disk(1, 20_000, 4096);
    let mut ahci = Ahci::with_options(fake.clone(), platform, Options { piece_bytes: 8 << 20, pieces: 1 }).unwrap();
    let data = pattern(9 << 20, 8);
    ahci.write_blocks(1, 3, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    ahci.read_blocks(1, 3, &mut back).unwrap();
    assert!(back == data);
    assert_eq!(commands(&fake, 1, fis::READ_DMA_EXT), [(3, 2048, 2), (2051, 256, 1)]);
}

#[test]
fn flush_sends_flush_cache_ext_or_flush_cache() {
    let (fake, platform) = rig();
    let mut identify = disk_identify("OLD", "S", 64, 512);
    identify[83 * 2 + 1] &= !(1 << 5);
    let device = FakeDevice::Disk { identify, disk: keel_block::MemDisk::new(512, 64) };
    fake.attach(1, device);
    let mut ahci = start(&fake, platform);
    let disk_log = |start: bool| {
        fake.with(|hba| match &mut hba.ports[0].device {
            Some(FakeDevice::Disk { disk, .. }) if start => {
                disk.start_log();
                Vec::new()
            }
            Some(FakeDevice::Disk { disk, .. }) => disk.log().to_vec(),
            _ => Vec::new(),
        })
    };
    disk_log(true);
    ahci.disk(0).unwrap().write_blocks(1, &[1; 512]).unwrap();
    ahci.disk(0).unwrap().flush().unwrap();
    ahci.disk(1).unwrap().flush().unwrap();
    assert_eq!(commands(&fake, 0, fis::FLUSH_CACHE_EXT).len(), 1);
    assert_eq!(commands(&fake, 1, fis::FLUSH_CACHE).len(), 1);
    assert_eq!(disk_log(false), [DiskEvent::Write { lba: 1, data: vec![1; 512] }, DiskEvent::Flush]);
}

#[test]
fn a_device_error_is_reported_and_the_port_recovers() {
    let (fake, platform) = rig();
    let mut ahci = start(&fake, platform);
    fake.with(|hba| hba.ports[0].failing_lba = Some(40));
    let mut buf = vec![0u8; 16 * 512];
    // TFES (PxIS bit 30) in bits 23:16, UNC in the error register, ERR in the status.
    assert_eq!(ahci.read_blocks(0, 32, &mut buf), Err(BlockError::Device(0x40_4051)));
    assert_eq!(fake.with(|hba| hba.ports[0].starts), 2, "stopped and started again");
    ahci.read_blocks(0, 41, &mut buf).unwrap();
    assert_eq!(ahci.read_blocks(0, 8190, &mut buf), Err(BlockError::OutOfRange));
    assert_eq!(ahci.write_blocks(0, 0, &buf[..3]), Err(BlockError::Misaligned));
    assert_eq!(ahci.read_blocks(7, 0, &mut buf), Err(BlockError::Gone));
}

#[test]
fn a_device_left_busy_by_an_error_gets_a_comreset() {
    let (fake, platform) = rig();
    let mut ahci = start(&fake, platform);
    fake.with(|hba| {
        hba.ports[0].failing_lba = Some(0);
        hba.ports[0].busy_after_error = true;
    });
    let mut buf = [0u8; 512];
    assert!(matches!(ahci.read_blocks(0, 0, &mut buf), Err(BlockError::Device(_))));
    assert_eq!(fake.with(|hba| hba.ports[0].comresets), 1);
    ahci.read_blocks(0, 1, &mut buf).unwrap();
}

#[test]
fn a_silent_port_times_out_then_works_again() {
    let (fake, platform) = rig();
    let clock = platform.clock();
    let mut ahci = start(&fake, platform);
    fake.with(|hba| hba.ports[0].silent = true);
    let before = clock.get();
    let mut buf = [0u8; 512];
    assert_eq!(ahci.read_blocks(0, 0, &mut buf), Err(BlockError::Timeout));
    assert!(clock.get() - before >= 30_000_000_000);
    fake.with(|hba| hba.ports[0].silent = false);
    ahci.write_blocks(0, 0, &[9u8; 512]).unwrap();
    ahci.read_blocks(0, 0, &mut buf).unwrap();
    assert_eq!(buf, [9u8; 512]);
}

#[test]
fn a_port_that_will_not_stop_is_gone() {
    let (fake, platform) = rig();
    let mut ahci = start(&fake, platform);
    fake.with(|hba| {
        hba.ports[0].silent = true;
        hba.ports[0].stuck = true;
    });
    let mut buf = [0u8; 512];
    assert_eq!(ahci.read_blocks(0, 0, &mut buf), Err(BlockError::Timeout));
    let taken = fake.with(|hba| hba.ports[0].log.len());
    assert_eq!(ahci.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
    assert_eq!(ahci.flush(0), Err(BlockError::Gone));
    assert_eq!(fake.with(|hba| hba.ports[0].log.len()), taken);
}

#[test]
fn reset_timeouts_and_vanished_hbas_end_quickly() {
    let (fake, platform) = rig();
    let clock = platform.clock();
    fake.with(|hba| hba.reset_stuck = true);
    assert_eq!(Ahci::new(fake.clone(), platform).err(), Some(AhciError::ResetTimeout));
    assert!((1_000_000_000..1_100_000_000).contains(&clock.get()));

    let (fake, platform) = rig();
    fake.with(|hba| hba.removed = true);
    assert_eq!(Ahci::new(fake.clone(), platform).err(), Some(AhciError::NotPresent));

    let (fake, platform) = rig();
    let clock = platform.clock();
    let mut ahci = start(&fake, platform);
    fake.with(|hba| hba.removed = true);
    let before = clock.get();
    let mut buf = [0u8; 512];
    assert_eq!(ahci.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
    assert_eq!(ahci.read_blocks(0, 0, &mut buf), Err(BlockError::Gone));
    assert!(clock.get() - before < 1_000_000_000);
}

#[test]
fn a_device_that_stays_busy_is_skipped() {
    let (fake, platform) = rig();
    fake.attach_disk(1, 64, 512);
    fake.with(|hba| hba.ports[1].busy = true);
    let ahci = start(&fake, platform);
    assert_eq!(ahci.disk_count(), 1);
    assert_eq!(ahci.skipped_ports(), [(1, PortSkip::NotReady)]);
}

#[test]
fn hostile_identify_data_is_refused() {
    let (fake, platform) = rig();
    let put = |port, edit: &dyn Fn(&mut [u8; 512])| {
        let mut identify = disk_identify("H", "S", 64, 512);
        edit(&mut identify);
        fake.attach(port, FakeDevice::Disk { identify, disk: keel_block::MemDisk::new(512, 64) });
    };
    put(1, &|d| d[200..208].fill(0));
    put(2, &|d| {
        d[212..214].copy_from_slice(&(0x4000u16 | 1 << 12).to_le_bytes());
        d[234..236].copy_from_slice(&260u16.to_le_bytes());
    });
    put(3, &|d| d[166..168].fill(0));
    put(4, &|d| d[510] = 0xa5);
    put(5, &|d| d.fill(0xff));
    fake.with(|hba| hba.bar_len = 0x100 + 8 * 0x80);
    let ahci = start(&fake, platform);
    assert_eq!(ahci.disk_count(), 1);
    assert_eq!(
        ahci.skipped_ports(),
        [
            (1, PortSkip::Unusable(AtaUnusable::Empty)),
            (2, PortSkip::Unusable(AtaUnusable::SectorSize(520))),
            (3, PortSkip::Unusable(AtaUnusable::NoLba48)),
            (4, PortSkip::Unusable(AtaUnusable::Checksum)),
            (5, PortSkip::Unusable(AtaUnusable::NotAta)),
        ]
    );

    // A sector larger than the bounce buffer cannot be moved at all.
    let (fake, platform) = rig();
    fake.attach_disk(1, 64, 16384);
    let ahci = Ahci::with_options(fake.clone(), platform, Options { piece_bytes: 4096, pieces: 2 }).unwrap();
    assert_eq!(ahci.skipped_ports(), [(1, PortSkip::Unusable(AtaUnusable::SectorSize(16384)))]);
}

#[test]
fn a_32_bit_hba_gets_memory_below_4_gib() {
    let (fake, platform) = rig();
    fake.with(|hba| hba.cap &= !crate::regs::CAP_S64A);
    let mut ahci = start(&fake, platform);
    let data = pattern(600 * 1024, 2);
    ahci.write_blocks(0, 0, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    ahci.read_blocks(0, 0, &mut back).unwrap();
    assert!(back == data);
    // The fake refuses any address above 4 GiB on this HBA; check the command list too.
    assert!(fake.with(|hba| hba.ports[0].clb) < HIGH_BASE);
}

#[test]
fn many_commands_reuse_slot_zero() {
    let (fake, platform) = rig();
    let mut ahci = start(&fake, platform);
    let mut buf = [0u8; 512];
    for lba in 0..200u64 {
        ahci.write_blocks(0, lba, &[lba as u8; 512]).unwrap();
        ahci.read_blocks(0, lba, &mut buf).unwrap();
        assert_eq!(buf, [lba as u8; 512]);
    }
    assert_eq!(fake.with(|hba| hba.ports[0].log.len()), 401);
}

#[test]
fn running_out_of_dma_memory_is_an_error() {
    let memory = FakeMemory::new();
    let platform = FakePlatform::new(memory.clone());
    let fake = FakeAhci::new(memory.clone(), platform.clock());
    fake.attach_disk(0, 64, 512);
    memory.limit(100 * 1024);
    assert!(matches!(Ahci::new(fake.clone(), platform).err(), Some(AhciError::Memory(_))));
}

#[test]
fn bring_up_polls_when_no_interrupt_comes() {
    let (fake, mut platform) = rig();
    fake.with(|hba| hba.pi |= 1 << 3);
    platform.set_step_ns(u64::MAX);
    let clock = platform.clock();
    let mut ahci = start(&fake, platform);
    ahci.read_blocks(0, 0, &mut [0u8; 512]).unwrap();
    // An empty port settles after 20 ms; the reset and link waits allow a second each.
    assert!(clock.get() < 30_000_000, "waited {} ns", clock.get());
}
