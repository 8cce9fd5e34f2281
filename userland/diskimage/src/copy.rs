//! Copying one image's contents into another (vmctl's `create -i`: raw to qcow2, qcow2 to raw,
//! qcow2 to qcow2, backing chains flattened). What reads as zeros is not written: ranges the
//! source knows are zero are skipped unread, and read blocks that turn out all zeros are skipped
//! too, so the copy stays sparse. [`Copier`] does it a chunk at a time so the caller can report
//! progress (this crate prints nothing); [`copy`] runs it to the end with a callback.
//!
//! Not here: making the destination (`create`); it must read as zeros where it is not written,
//! as a new image does.

use alloc::vec;
use alloc::vec::Vec;

use crate::{BlockStatus, Error, Image};

/// Bytes handled per [`Copier::step`].
pub const COPY_CHUNK: u64 = 1 << 20;
/// Granularity of the all-zeros test on data read.
const ZERO_BLOCK: usize = 4096;

/// A copy in progress.
pub struct Copier {
    done: u64,
    total: u64,
    buf: Vec<u8>,
}

impl Copier {
    /// A copy of all of `src` into `dst`, which must be at least as large.
    pub fn new(src: &Image, dst: &Image) -> Result<Copier, Error> {
        if dst.size() < src.size() {
            return Err(Error::InvalidCreate("the destination is smaller than the source"));
        }
        if dst.read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(Copier { done: 0, total: src.size(), buf: vec![0u8; COPY_CHUNK as usize] })
    }

    /// Bytes of the source handled so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn finished(&self) -> bool {
        self.done >= self.total
    }

    /// Copies the next chunk (up to [`COPY_CHUNK`] bytes); on the last, flushes `dst`.
    pub fn step(&mut self, src: &mut Image, dst: &mut Image) -> Result<(), Error> {
        if self.finished() {
            return Ok(());
        }
        let end = (self.done + COPY_CHUNK).min(self.total);
        let mut pos = self.done;
        while pos < end {
            let (len, status) = src.block_status(pos, end - pos)?;
            if status == BlockStatus::Data {
                let buf = &mut self.buf[..len as usize];
                src.read(pos, buf)?;
                write_non_zero(dst, pos, buf)?;
            }
            pos += len;
        }
        self.done = end;
        if self.finished() {
            dst.flush()?;
        }
        Ok(())
    }
}

/// Writes the blocks of `data` that are not all zeros, in as few writes as they allow.
fn write_non_zero(dst: &mut Image, offset: u64, data: &[u8]) -> Result<(), Error> {
    let mut run: Option<usize> = None;
    let mut at = 0;
    for block in data.chunks(ZERO_BLOCK) {
        let zero = block.iter().all(|&b| b == 0);
        match (zero, run) {
            (false, None) => run = Some(at),
            (true, Some(start)) => {
                dst.write(offset + start as u64, &data[start..at])?;
                run = None;
            }
            _ => {}
        }
        at += block.len();
    }
    if let Some(start) = run {
        dst.write(offset + start as u64, &data[start..])?;
    }
    Ok(())
}

/// Copies all of `src` into `dst`, calling `progress(done, total)` after each chunk.
pub fn copy(src: &mut Image, dst: &mut Image, progress: &mut dyn FnMut(u64, u64)) -> Result<(), Error> {
    let mut copier = Copier::new(src, dst)?;
    while !copier.finished() {
        copier.step(src, dst)?;
        progress(copier.done(), copier.total());
    }
    if copier.total() == 0 {
        dst.flush()?;
    }
    Ok(())
}
