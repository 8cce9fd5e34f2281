//! Fuzz disk images with hostile bytes: the input is an operation count N, N operations of 8
//! bytes, then the image file itself (a qcow2 image in every seed, though any bytes are opened
//! as whatever their magic says). The image is opened writable, its backing file (if it names
//! one) being either a small raw file (names ending in "raw") or the same bytes again, so that
//! chains loop or run deep. Then the operations run: reads, writes, discards, write-zeroes,
//! flushes and block-status queries at offsets spread over the disk. Errors are expected; a
//! panic, a hang or unbounded memory (the file may grow to 64 MiB) is the bug.
#![no_main]

use keel_diskimage::{BackingOpener, Error, Image, ImageFile, MemFile, OpenOptions};
use libfuzzer_sys::fuzz_target;

const FILE_LIMIT: u64 = 64 << 20;

struct Opener<'a> {
    image: &'a [u8],
}

impl BackingOpener for Opener<'_> {
    fn open_backing(&mut self, _image: &str, backing: &str) -> Result<(Box<dyn ImageFile>, String), Error> {
        let bytes = if backing.ends_with("raw") { vec![0x5a; 64 * 1024] } else { self.image.to_vec() };
        Ok((Box::new(MemFile::with_limit(bytes, FILE_LIMIT)), backing.to_string()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else { return };
    let ops_len = (usize::from(count) % 33) * 8;
    if rest.len() < ops_len || rest.len() - ops_len > 1 << 20 {
        return;
    }
    let (ops, image_bytes) = rest.split_at(ops_len);
    let file = MemFile::with_limit(image_bytes.to_vec(), FILE_LIMIT);
    let mut opener = Opener { image: image_bytes };
    let Ok(mut image) = Image::open(Box::new(file), "fuzz.qcow2", OpenOptions::default(), &mut opener) else {
        return;
    };
    let size = image.size();
    if size == 0 {
        return;
    }
    let mut buf = vec![0u8; 1 << 16];
    for op in ops.chunks_exact(8) {
        // Offsets in 512-byte units, wrapped to the disk; the top byte's high bit makes it odd.
        let unit = u64::from(u32::from_le_bytes([op[1], op[2], op[3], op[4] & 0x7f]));
        let mut offset = (unit * 512) % size;
        if op[4] & 0x80 != 0 {
            offset = (offset + u64::from(op[5])) % size;
        }
        let len = (u64::from(u16::from_le_bytes([op[5], op[6]])) + 1).min(size - offset);
        let n = len.min(buf.len() as u64) as usize;
        let _ = match op[0] % 6 {
            0 => image.read(offset, &mut buf[..n]),
            1 => {
                buf[..n].fill(op[7]);
                image.write(offset, &buf[..n])
            }
            2 => image.discard(offset, (len * u64::from(op[7] % 4 + 1) / 4).min(size - offset)),
            3 => image.write_zeroes(offset, len),
            4 => image.flush(),
            _ => image.block_status(offset, len).map(|_| ()),
        };
    }
});
