//! Fuzz the partition-table readers with a hostile disk. Byte 0: bit 0 picks 4096-byte blocks
//! (else 512), bits 1..=6 a request count after which the disk fails every request (0: never),
//! bit 7 also runs the GPT writer and reads its table back. Bytes 1..9: the disk's block count
//! (little-endian, at least the blocks given, at most 2^40 more). The rest is whole blocks: the
//! first half from block 0, the second half ending at the disk's last block (so a fuzzed backup
//! GPT sits where the reader looks for it), zeros between. Checks that nothing panics and that
//! every partition returned has at least one block, lies on the disk and overlaps no other.
#![no_main]

use keel_block::{check_request, BlockDevice, BlockError, MemDisk};
use keel_partitions::{read_partitions, write_gpt, Guid, NewGpt};
use libfuzzer_sys::fuzz_target;

/// A disk of `blocks` blocks, zero except `head` from block 0 and `tail` ending at the last.
struct SparseDisk<'a> {
    block_size: usize,
    blocks: u64,
    head: &'a [u8],
    tail: &'a [u8],
    requests_left: Option<u32>,
}

impl SparseDisk<'_> {
    fn block(&self, lba: u64) -> Option<&[u8]> {
        let size = self.block_size;
        let head_blocks = (self.head.len() / size) as u64;
        let tail_blocks = (self.tail.len() / size) as u64;
        if lba < head_blocks {
            return Some(&self.head[lba as usize * size..][..size]);
        }
        let tail_start = self.blocks - tail_blocks;
        (lba >= tail_start).then(|| &self.tail[(lba - tail_start) as usize * size..][..size])
    }
}

impl BlockDevice for SparseDisk<'_> {
    fn block_size(&self) -> u32 {
        self.block_size as u32
    }
    fn block_count(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.block_size as u32, self.blocks, lba, buf.len())?;
        match &mut self.requests_left {
            Some(0) => return Err(BlockError::Gone),
            Some(left) => *left -= 1,
            None => {}
        }
        for (chunk, block) in buf.chunks_exact_mut(self.block_size).zip(lba..) {
            match self.block(block) {
                Some(data) => chunk.copy_from_slice(data),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }
    fn write_blocks(&mut self, _: u64, _: &[u8]) -> Result<(), BlockError> {
        Err(BlockError::ReadOnly)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Err(BlockError::ReadOnly)
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let flags = data[0];
    let block_size = if flags & 1 != 0 { 4096 } else { 512 };
    let fail_after = (flags >> 1) & 0x3F;
    let claimed = u64::from_le_bytes(data[1..9].try_into().unwrap());
    let body = &data[9..];
    let given = body.len() / block_size;
    let body = &body[..given * block_size];
    let head_blocks = given.div_ceil(2);
    let (head, tail) = body.split_at(head_blocks * block_size);
    let blocks = (given as u64).max(claimed % (given as u64 + (1 << 40)));
    let mut disk = SparseDisk {
        block_size,
        blocks,
        head,
        tail,
        requests_left: (fail_after != 0).then_some(fail_after as u32),
    };
    if let Ok(table) = read_partitions(&mut disk) {
        let mut spans: Vec<(u64, u64)> = table
            .partitions
            .iter()
            .map(|p| {
                assert!(p.block_count >= 1);
                let end = p.first_lba.checked_add(p.block_count).unwrap();
                assert!(end <= blocks);
                (p.first_lba, end)
            })
            .collect();
        assert!(table.partitions.windows(2).all(|w| w[0].index < w[1].index));
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "overlap in {table:?}");
    }

    if flags & 0x80 != 0 {
        // The writer on a small disk, its GUIDs and name from the input.
        let guid = |at: usize| Guid(core::array::from_fn(|i| body.get(at + i).copied().unwrap_or(i as u8)));
        let name: String = body.iter().take(36).map(|&b| if b == 0 { 'x' } else { char::from(b) }).collect();
        let size = 4096 + 34 + (claimed % 512);
        let mut disk = MemDisk::new(512, size);
        let new = NewGpt { disk_guid: guid(0), partition_guid: guid(16), type_guid: guid(32), name: &name };
        match write_gpt(&mut disk, &new) {
            Ok(written) => {
                let table = read_partitions(&mut disk).unwrap();
                if new.type_guid.is_zero() {
                    assert!(table.partitions.is_empty());
                } else {
                    assert_eq!(table.warnings, []);
                    assert_eq!(table.partitions.len(), 1);
                    let read = &table.partitions[0];
                    assert_eq!((read.first_lba, read.block_count, &read.name), (written.first_lba, written.block_count, &written.name));
                }
            }
            Err(e) => panic!("writer failed: {e}"),
        }
    }
});
