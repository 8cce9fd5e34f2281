//! Fuzz the split virtqueue walk with virtio-rng on top: the input is the guest's RAM where the
//! descriptor table, available ring, used ring and buffers live, so every index, flag, length and
//! address is hostile. Between rounds the available index moves by an input-chosen amount (wrap
//! and "too far ahead" cases). Checks: no panic, no chain longer than the queue, output bounded,
//! and the used index in RAM is the device's.
#![no_main]

use keel_devices::guest_memory::{read_u16, GuestMemory, VecMemory};
use keel_virtio::rng::MAX_BYTES_PER_REQUEST;
use keel_virtio::{ChaCha20Rng, SplitQueue, VirtioDevice, VirtioRng};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 64 * 1024;
const RINGS: u64 = 0x1000;

fuzz_target!(|data: &[u8]| {
    let Some((&[shape, tweak, bump], ram_bytes)) = data.split_first_chunk::<3>() else { return };
    let size = 1u16 << (shape % 9);
    let mut mem = VecMemory::new(0, RAM);
    let take = ram_bytes.len().min(RAM - RINGS as usize);
    mem.write(RINGS, &ram_bytes[..take]);
    let desc = RINGS + u64::from(tweak & 1) * 8; // sometimes misaligned
    let avail = RINGS + 16 * u64::from(size) + u64::from(tweak >> 1 & 1);
    let used = (avail + 6 + 2 * u64::from(size) + 3) & !3;
    let used = if tweak & 4 != 0 { u64::from(tweak) << 10 } else { used };
    let mut q = SplitQueue::new(256);
    if !q.set_size(size) || !q.set_addresses(desc, avail, used) {
        return;
    }
    q.enable();

    // The walk alone: never more descriptors than the queue has.
    for head in [0, u16::from(tweak), size.wrapping_sub(1)] {
        let mut count = 0u32;
        let _ = q.for_each_desc(&mut mem, head, |_, _| {
            count += 1;
            Ok(())
        });
        assert!(count <= u32::from(size));
    }

    let mut rng = VirtioRng::new(ChaCha20Rng::from_seed([0x42; 32]));
    let mut rounds = 0u64;
    for _ in 0..4 {
        rounds += 1;
        let result = rng.process_queue(0, &mut q, &mut mem);
        let (_, next_used) = q.indices();
        if next_used != 0 {
            assert_eq!(read_u16(&mem, used + 2), Some(next_used));
        }
        if result.is_err() {
            break;
        }
        if let Some(idx) = read_u16(&mem, avail + 2) {
            mem.write(avail + 2, &idx.wrapping_add(u16::from(bump)).to_le_bytes());
        }
    }
    assert!(rng.requests() <= rounds * u64::from(size));
    assert!(rng.bytes_served() <= rng.requests() * u64::from(MAX_BYTES_PER_REQUEST));
    let _ = q.take_notification(&mem);
});
