//! What a Keel host driver (`drivers/`: PCI, virtio-blk, AHCI, NVMe, later NICs) needs of the
//! machine, as traits. The storage and network services implement them over the kernel's
//! capabilities (an MMIO region or I/O port range, pinned DMA memory, an interrupt delivered as a
//! notification bit); host tests implement them with fake devices, so every driver's register
//! logic (command lists, completions, errors, timeouts) is tested without hardware.
//!
//! - [`Registers`]: a device's registers (a BAR's MMIO window or an I/O port range) at offsets;
//! - [`Dma`]: a pinned, physically contiguous buffer: the driver reads and writes it by offset,
//!   the device by its physical address;
//! - [`Platform`]: allocates DMA buffers, waits for the device's interrupt, tells the time;
//! - [`fake`] (tests, and the `fake` feature): shared fake memory and a platform whose clock only
//!   waits advance, for fake devices.
//!
//! What it does not do: map anything, or touch hardware. Implementations read and write device
//! memory with volatile accesses; these traits take `&mut self` for writes so that a fake device
//! can react to each one. All multi-byte values are little-endian (PCI, virtio, AHCI and NVMe
//! all are).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "fake"))]
extern crate alloc;
#[cfg(any(test, feature = "fake"))]
pub mod fake;

/// Why a hardware operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwError {
    /// No DMA memory (or not that much contiguous memory).
    NoMemory,
    /// An offset or length outside the region.
    OutOfRange,
    /// The kernel refused the request (no capability for it).
    Denied,
}

impl core::fmt::Display for HwError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HwError::NoMemory => f.write_str("out of DMA memory"),
            HwError::OutOfRange => f.write_str("access outside the device's region"),
            HwError::Denied => f.write_str("no capability for this device resource"),
        }
    }
}

/// A device's register window: a BAR's MMIO region, or a range of I/O ports. Offsets are from
/// the window's start; an access past its end reads all ones and writes nothing (as a bus
/// does), so a driver bug cannot reach another device.
pub trait Registers {
    /// The window's length in bytes.
    fn len(&self) -> usize;
    /// Whether the window is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read8(&mut self, offset: usize) -> u8;
    fn read16(&mut self, offset: usize) -> u16;
    fn read32(&mut self, offset: usize) -> u32;
    fn write8(&mut self, offset: usize, value: u8);
    fn write16(&mut self, offset: usize, value: u16);
    fn write32(&mut self, offset: usize, value: u32);
    /// A 64-bit register as two 32-bit accesses, low half first (NVMe 1.4 3.1 allows this for
    /// CAP, ASQ and ACQ; virtio's 64-bit fields are split by the spec itself).
    fn read64(&mut self, offset: usize) -> u64 {
        let low = self.read32(offset) as u64;
        let high = self.read32(offset + 4) as u64;
        low | (high << 32)
    }
    /// See [`Registers::read64`].
    fn write64(&mut self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }
}

/// A pinned, physically contiguous buffer shared with a device.
pub trait Dma {
    /// The physical address of byte 0, as the device must be told it.
    fn phys(&self) -> u64;
    /// The length in bytes.
    fn len(&self) -> usize;
    /// Whether the buffer is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy bytes out at `offset`. Out of range: `OutOfRange`, nothing read.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), HwError>;
    /// Copy bytes in at `offset`. Out of range: `OutOfRange`, nothing written.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), HwError>;
    /// A little-endian u16 at `offset` (0 when out of range: callers check the range once).
    fn read_u16(&self, offset: usize) -> u16 {
        let mut b = [0; 2];
        self.read(offset, &mut b).map_or(0, |()| u16::from_le_bytes(b))
    }
    /// A little-endian u32 at `offset` (0 when out of range).
    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0; 4];
        self.read(offset, &mut b).map_or(0, |()| u32::from_le_bytes(b))
    }
    /// A little-endian u64 at `offset` (0 when out of range).
    fn read_u64(&self, offset: usize) -> u64 {
        let mut b = [0; 8];
        self.read(offset, &mut b).map_or(0, |()| u64::from_le_bytes(b))
    }
    fn write_u16(&mut self, offset: usize, value: u16) -> Result<(), HwError> {
        self.write(offset, &value.to_le_bytes())
    }
    fn write_u32(&mut self, offset: usize, value: u32) -> Result<(), HwError> {
        self.write(offset, &value.to_le_bytes())
    }
    fn write_u64(&mut self, offset: usize, value: u64) -> Result<(), HwError> {
        self.write(offset, &value.to_le_bytes())
    }
}

/// The machine around a driver.
pub trait Platform {
    /// The DMA buffers this platform hands out.
    type Buffer: Dma;
    /// A zeroed DMA buffer of at least `len` bytes, aligned to 4096.
    fn alloc_dma(&mut self, len: usize) -> Result<Self::Buffer, HwError>;
    /// As [`Platform::alloc_dma`], wholly below 4 GiB: for a device that takes only 32-bit
    /// addresses (an AHCI HBA without CAP.S64A). The default fails with `NoMemory` when the
    /// buffer `alloc_dma` gives lies above; a platform that can choose overrides it.
    fn alloc_dma_32bit(&mut self, len: usize) -> Result<Self::Buffer, HwError> {
        let buffer = self.alloc_dma(len)?;
        let end = buffer.phys().checked_add(buffer.len() as u64);
        match end {
            Some(end) if end <= 1 << 32 => Ok(buffer),
            _ => Err(HwError::NoMemory),
        }
    }
    /// Wait until the device's interrupt fires or `timeout_ns` passes; true if it fired. A
    /// platform without interrupts may return at once (the driver then polls).
    fn wait_interrupt(&mut self, timeout_ns: u64) -> bool;
    /// Nanoseconds since an arbitrary start, for timeouts.
    fn now_ns(&self) -> u64;
}

/// Wait until `done` returns true, checking it after each interrupt (or at once when the
/// platform has none), for at most `timeout_ns`. The one polling loop every driver uses for
/// completions and resets: a device that never answers gives `false`, never a hang.
pub fn wait_until<P: Platform>(platform: &mut P, timeout_ns: u64, done: impl FnMut(&mut P) -> bool) -> bool {
    poll_until(platform, timeout_ns, u64::MAX, done)
}

/// How often [`poll`] re-reads a device when no interrupt comes: resets, ready bits and links
/// raise none, and a platform's interrupt may not be set up; with one, a wait ends at once.
pub const POLL_INTERVAL_NS: u64 = 1_000_000;

/// Wait for `done` for at most `timeout_ns`, re-checking after each interrupt or every
/// [`POLL_INTERVAL_NS`]: the wait the disk drivers use for everything.
pub fn poll<P: Platform>(platform: &mut P, timeout_ns: u64, done: impl FnMut(&mut P) -> bool) -> bool {
    poll_until(platform, timeout_ns, POLL_INTERVAL_NS, done)
}

/// As [`wait_until`], but checking `done` at least every `interval_ns` even when no interrupt
/// comes: for a change the device does not interrupt for (a reset bit clearing, a ready bit, a
/// link coming up), and for completions before the driver has enabled the device's interrupts.
pub fn poll_until<P: Platform>(
    platform: &mut P,
    timeout_ns: u64,
    interval_ns: u64,
    mut done: impl FnMut(&mut P) -> bool,
) -> bool {
    let start = platform.now_ns();
    loop {
        if done(platform) {
            return true;
        }
        let waited = platform.now_ns().saturating_sub(start);
        if waited >= timeout_ns {
            return done(platform);
        }
        platform.wait_interrupt((timeout_ns - waited).min(interval_ns.max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Clock(u64);
    struct Buf;
    impl Dma for Buf {
        fn phys(&self) -> u64 {
            0
        }
        fn len(&self) -> usize {
            0
        }
        fn read(&self, _: usize, _: &mut [u8]) -> Result<(), HwError> {
            Err(HwError::OutOfRange)
        }
        fn write(&mut self, _: usize, _: &[u8]) -> Result<(), HwError> {
            Err(HwError::OutOfRange)
        }
    }
    impl Platform for Clock {
        type Buffer = Buf;
        fn alloc_dma(&mut self, _: usize) -> Result<Buf, HwError> {
            Err(HwError::NoMemory)
        }
        fn wait_interrupt(&mut self, timeout_ns: u64) -> bool {
            self.0 += timeout_ns.min(1000);
            false
        }
        fn now_ns(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn a_device_that_never_answers_times_out() {
        let mut clock = Clock(0);
        assert!(!wait_until(&mut clock, 10_000, |_| false));
        assert!(clock.0 >= 10_000);
        let mut clock = Clock(0);
        assert!(wait_until(&mut clock, 10_000, |p| p.0 >= 3000));
    }

    /// A platform whose interrupt wait sleeps the whole timeout when nothing fires.
    struct Sleeper(u64, u64);
    impl Platform for Sleeper {
        type Buffer = Buf;
        fn alloc_dma(&mut self, _: usize) -> Result<Buf, HwError> {
            Err(HwError::NoMemory)
        }
        fn wait_interrupt(&mut self, timeout_ns: u64) -> bool {
            self.0 += timeout_ns;
            self.1 += 1;
            false
        }
        fn now_ns(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn polling_notices_a_change_without_an_interrupt() {
        let mut sleeper = Sleeper(0, 0);
        assert!(poll_until(&mut sleeper, 1_000_000_000, 1_000_000, |p| p.0 >= 5_000_000));
        assert_eq!(sleeper.0, 5_000_000, "seen within one interval");
        let mut sleeper = Sleeper(0, 0);
        assert!(!poll_until(&mut sleeper, 10_000_000, 1_000_000, |_| false));
        assert_eq!((sleeper.0, sleeper.1), (10_000_000, 10));
    }
}
