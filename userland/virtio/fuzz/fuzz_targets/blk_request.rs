//! Fuzz the guest's virtio-blk request path as a hostile driver drives it: a transitional device
//! set up through its modern or its legacy registers, then rounds of "more buffers available",
//! notify, `process` and the ISR read. Guest RAM (descriptor table, rings, request headers,
//! discard segments, data) is the input, so every type, sector, length, flag, descriptor address
//! and chain shape is hostile, and buffers may overlap the rings.
//!
//! Checks: no panic; the backend is only asked for ranges inside the image, at most one
//! request's bytes per call, and never to modify a read-only image; after a pass the used index in RAM is the
//! device's; INTx follows the ISR.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{notify, read, set_up, Checked};
use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, GuestMemory, VecMemory};
use keel_devices::pci::PciFunction;
use keel_virtio::{blk, MemBackend, VirtioBlk, VirtioPci};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 128 * 1024;
/// Queue 0's rings (the input's RAM image starts here).
const RINGS: u64 = 0x4000;
/// The fixed header: mode (legacy, read-only, image size), rounds (4 bytes).
const HEADER: usize = 5;

fuzz_target!(|data: &[u8]| {
    let Some((header, image)) = data.split_first_chunk::<HEADER>() else { return };
    let [mode, rounds @ ..] = *header;
    let legacy = mode & 1 != 0;
    let read_only = mode & 2 != 0;
    // 0 to 63 KiB, and 100 bytes more: partial sectors and empty disks too.
    let size = usize::from(mode >> 2) * 1024 + usize::from(mode & 0x80 != 0) * 100;
    let mut mem = VecMemory::new(Gpa(0), RAM);
    let take = image.len().min(RAM - RINGS as usize);
    mem.write(Gpa(RINGS), &image[..take]);

    let backend = Checked { inner: MemBackend::from_bytes(vec![0x5A; size], read_only), chunk: blk::MAX_REQUEST_BYTES as usize, modified: false };
    let Some(mut dev) = VirtioPci::transitional(VirtioBlk::new(backend, b"fuzz")) else { return };
    let rings = set_up(&mut dev, legacy, RINGS, &[0]);
    let (_, avail, used) = rings[0];
    for op in rounds {
        notify(&mut dev, legacy, u16::from(op & 1));
        dev.process(&mut mem);
        let (_, next_used) = dev.queue(0).map_or((0, 0), |q| q.indices());
        if dev.status() & keel_virtio::status::DEVICE_NEEDS_RESET == 0 {
            if let Some(idx) = read_u16(&mem, Gpa(used + 2)) {
                assert_eq!(idx, next_used, "the used index in RAM is the device's");
            }
        }
        assert_eq!(dev.irq_level(), dev.isr() != 0);
        if op & 2 != 0 {
            let isr_bar = if legacy { 0 } else { 1 };
            let isr_at = if legacy { 0x13 } else { keel_virtio::pci::ISR };
            read(&mut dev, isr_bar, isr_at, 1);
            assert!(!dev.irq_level());
        }
        if let Some(idx) = read_u16(&mem, Gpa(avail + 2)) {
            mem.write(Gpa(avail + 2), &idx.wrapping_add(u16::from(op >> 2)).to_le_bytes());
        }
    }
    let blk = dev.device();
    assert!(!(read_only && blk.backend().modified));
    let s = blk.stats();
    assert!(s.errors <= s.requests);
});
