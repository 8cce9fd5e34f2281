//! Fuzz the guest's virtio-scsi CD-ROM as a hostile driver drives it: a CDB straight into the
//! pure command logic (`scsi::cdrom`), then a transitional device set up through its modern or
//! legacy registers with the control and request queues, and rounds of notify, `process`, the
//! ISR read and "more buffers available", with `sense_size` and `cdb_size` rewritten at will.
//! Guest RAM (rings, request headers, LUNs, CDBs, buffers) is the input.
//!
//! Checks: no panic; a command's reply fits its buffer and a READ's range is inside the medium
//! and the transfer limit; the backend is only read, inside the image, at most one chunk per
//! call; after a pass the used indices in RAM are the device's; INTx follows the ISR.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{notify, read, set_up, Checked};
use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, GuestMemory, VecMemory};
use keel_devices::pci::PciFunction;
use keel_virtio::scsi::cdrom::{CdRom, Reply, BLOCK, MAX_TRANSFER_BLOCKS, REPLY_MAX};
use keel_virtio::{scsi, MemBackend, VirtioPci, VirtioScsi};
use keel_virtio_spec::{legacy, scsi_config};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 192 * 1024;
const RINGS: u64 = 0x4000;
/// mode, a 16-byte CDB, rounds (4 bytes).
const HEADER: usize = 21;

fuzz_target!(|data: &[u8]| {
    let Some((header, image)) = data.split_first_chunk::<HEADER>() else { return };
    let mode = header[0];
    let cdb = &header[1..17];
    let rounds = &header[17..];
    let legacy_mode = mode & 1 != 0;
    // 0 to 63 blocks and a bit.
    let size = usize::from(mode >> 2) * BLOCK as usize + usize::from(mode & 2 != 0) * 1000;

    // The command logic alone.
    for blocks in [size as u64, 0, u64::MAX / 2] {
        let mut cd = CdRom::new(blocks, b"serial");
        let mut reply = [0u8; REPLY_MAX];
        for len in [cdb.len(), usize::from(mode & 15)] {
            match cd.execute(&cdb[..len.min(cdb.len())], &mut reply) {
                Reply::Data(n) => assert!(n <= REPLY_MAX),
                Reply::Medium { offset, len } => {
                    assert!(len > 0 && len <= MAX_TRANSFER_BLOCKS * BLOCK);
                    assert!(offset.checked_add(len).is_some_and(|end| end <= cd.blocks() * BLOCK));
                }
                Reply::Check(sense) => assert!(sense.key <= 0xF),
            }
        }
    }

    let mut mem = VecMemory::new(Gpa(0), RAM);
    let take = image.len().min(RAM - RINGS as usize);
    mem.write(Gpa(RINGS), &image[..take]);
    let image: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let backend = Checked { inner: MemBackend::from_bytes(image, false), chunk: scsi::CHUNK, modified: false };
    let Some(mut dev) = VirtioPci::transitional(VirtioScsi::new(backend, b"cd")) else { return };
    let rings = set_up(&mut dev, legacy_mode, RINGS, &[0, 2]);
    for op in rounds {
        let queue = if op & 1 != 0 { 0 } else { 2 };
        notify(&mut dev, legacy_mode, queue);
        if op & 0x80 != 0 {
            // The driver rewrites sense_size or cdb_size (5.6.4), through either interface.
            let field = if op & 0x40 != 0 { scsi_config::SENSE_SIZE } else { scsi_config::CDB_SIZE };
            let value = u64::from(op & 0x3F) * 3;
            let (bar, at) = if legacy_mode {
                (0, (legacy::DEVICE_CONFIG + field) as u64)
            } else {
                (1, keel_virtio::pci::DEVICE_CFG + field as u64)
            };
            common::write(&mut dev, bar, at, 4, value);
        }
        dev.process(&mut mem);
        if dev.status() & keel_virtio::status::DEVICE_NEEDS_RESET == 0 {
            for q in [0u16, 2] {
                let (_, next_used) = dev.queue(q).map_or((0, 0), |q| q.indices());
                if let Some(idx) = read_u16(&mem, Gpa(rings[usize::from(q)].2 + 2)) {
                    assert_eq!(idx, next_used, "the used index in RAM is the device's");
                }
            }
        }
        assert_eq!(dev.irq_level(), dev.isr() != 0);
        if op & 2 != 0 {
            let (bar, at) = if legacy_mode { (0, 0x13) } else { (1, keel_virtio::pci::ISR) };
            read(&mut dev, bar, at, 1);
            assert!(!dev.irq_level());
        }
        let avail = rings[usize::from(queue)].1;
        if let Some(idx) = read_u16(&mem, Gpa(avail + 2)) {
            mem.write(Gpa(avail + 2), &idx.wrapping_add(u16::from(op >> 2 & 7)).to_le_bytes());
        }
    }
    let s = dev.device().stats();
    assert!(!dev.device().backend().modified, "the CD-ROM never writes");
    assert!(s.check_conditions <= s.commands && s.failures <= s.commands);
});
