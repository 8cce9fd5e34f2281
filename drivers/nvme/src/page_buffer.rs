//! A DMA buffer that starts on a controller memory page boundary. The platform aligns buffers
//! to 4 KiB; a controller whose smallest page (CAP.MPSMIN) is larger needs queues and PRP pages
//! aligned to its page (NVMe 1.4 3.1.9, 4.3), so this over-allocates and starts at the first
//! boundary inside. What it does not do: free anything early (the buffer lives as long as this).

use keel_drv_hal::{Dma, HwError, Platform};

/// `len` bytes of DMA memory starting at a multiple of the page size.
pub struct PageBuffer<B> {
    buffer: B,
    start: usize,
    len: usize,
}

impl<B: Dma> PageBuffer<B> {
    /// A zeroed buffer of `len` bytes aligned to `page_size` (a power of two).
    pub fn new<P: Platform<Buffer = B>>(platform: &mut P, len: usize, page_size: usize) -> Result<Self, HwError> {
        let slack = page_size.saturating_sub(4096);
        let buffer = platform.alloc_dma(len.checked_add(slack).ok_or(HwError::NoMemory)?)?;
        let misalignment = (buffer.phys() % page_size as u64) as usize;
        let start = if misalignment == 0 { 0 } else { page_size - misalignment };
        if start.checked_add(len).is_none_or(|end| end > buffer.len()) {
            return Err(HwError::NoMemory);
        }
        Ok(PageBuffer { buffer, start, len })
    }

    /// The physical address of byte 0 (a multiple of the page size).
    pub fn phys(&self) -> u64 {
        self.buffer.phys() + self.start as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn check(&self, offset: usize, len: usize) -> Result<usize, HwError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.start + offset),
            _ => Err(HwError::OutOfRange),
        }
    }

    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), HwError> {
        self.buffer.read(self.check(offset, buf.len())?, buf)
    }

    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), HwError> {
        let at = self.check(offset, data.len())?;
        self.buffer.write(at, data)
    }

    /// A little-endian u32 at `offset` (0 out of range).
    pub fn read_u32(&self, offset: usize) -> u32 {
        self.check(offset, 4).map_or(0, |at| self.buffer.read_u32(at))
    }

    pub fn write_u64(&mut self, offset: usize, value: u64) -> Result<(), HwError> {
        self.write(offset, &value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_drv_hal::fake::{FakeMemory, FakePlatform};

    #[test]
    fn buffers_start_on_a_page_and_stay_in_bounds() {
        let mut platform = FakePlatform::new(FakeMemory::new());
        // Move the allocator off a 64 KiB boundary first.
        let _spacer = platform.alloc_dma(4096).unwrap();
        let mut buffer = PageBuffer::new(&mut platform, 8192, 65536).unwrap();
        assert_eq!(buffer.phys() % 65536, 0);
        buffer.write(8188, &[1, 2, 3, 4]).unwrap();
        assert_eq!(buffer.read_u32(8188), 0x0403_0201);
        assert_eq!(buffer.write(8189, &[0; 4]), Err(HwError::OutOfRange));
        assert_eq!(buffer.read_u32(usize::MAX), 0);
    }
}
