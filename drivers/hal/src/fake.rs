//! A fake machine for drivers' host tests: physical memory that DMA buffers and a fake device
//! share ([`FakeMemory`]), a [`Platform`] that hands out buffers from it and runs a clock that
//! each wait advances ([`FakePlatform`]), so a test of a device that never answers ends at once
//! instead of waiting out the real timeout.
//!
//! A fake device (a test's own `Registers`) holds a clone of the [`FakeMemory`] and reads command
//! lists and data at the physical addresses the driver gave it, as a bus master would. Memory
//! outside every live buffer is unreachable: reads and writes there report `false`, so a driver
//! that hands the device a wrong address is caught. What it does not do: interrupts (waits
//! return `false` and the driver polls), caching or reordering.
//!
//! Compiled for this crate's tests and for other crates' tests through the `fake` feature.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::{Dma, HwError, Platform};

/// Where the first buffer above 4 GiB lands: above it, so 64-bit addressing is exercised.
pub const HIGH_BASE: u64 = 0x1_0000_0000;
/// Where the first buffer from [`Platform::alloc_dma_32bit`] lands.
pub const LOW_BASE: u64 = 0x10_0000;

#[derive(Default)]
struct Regions {
    /// Live buffers by physical start address.
    by_start: BTreeMap<u64, Vec<u8>>,
    next_high: u64,
    next_low: u64,
    /// Bytes still allocatable (`None`: unlimited).
    budget: Option<usize>,
}

/// Physical memory shared by the driver's DMA buffers and a fake device.
#[derive(Clone, Default)]
pub struct FakeMemory(Rc<RefCell<Regions>>);

impl FakeMemory {
    pub fn new() -> Self {
        let regions = Regions { next_high: HIGH_BASE, next_low: LOW_BASE, ..Regions::default() };
        FakeMemory(Rc::new(RefCell::new(regions)))
    }

    /// Refuse allocations once `bytes` more have been handed out.
    pub fn limit(&self, bytes: usize) {
        self.0.borrow_mut().budget = Some(bytes);
    }

    fn alloc(&self, len: usize, low: bool) -> Result<FakeDma, HwError> {
        let mut regions = self.0.borrow_mut();
        if let Some(budget) = &mut regions.budget {
            *budget = budget.checked_sub(len).ok_or(HwError::NoMemory)?;
        }
        let rounded = (len.max(1) as u64).div_ceil(4096) * 4096;
        let phys = if low { regions.next_low } else { regions.next_high };
        // A guard page between buffers: a device overrunning one reaches no other.
        let next = phys + rounded + 4096;
        if low {
            if next > HIGH_BASE {
                return Err(HwError::NoMemory);
            }
            regions.next_low = next;
        } else {
            regions.next_high = next;
        }
        regions.by_start.insert(phys, vec![0; len]);
        Ok(FakeDma { memory: self.clone(), phys, len })
    }

    /// Run `f` on the bytes `phys..phys + len` if they lie within one live buffer.
    fn with_range<T>(&self, phys: u64, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> Option<T> {
        let mut regions = self.0.borrow_mut();
        let (&start, bytes) = regions.by_start.range_mut(..=phys).next_back()?;
        let offset = usize::try_from(phys - start).ok()?;
        let end = offset.checked_add(len)?;
        bytes.get_mut(offset..end).map(f)
    }

    /// A device's read of `buf.len()` bytes at `phys`; `false` (nothing read) outside a buffer.
    pub fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
        self.with_range(phys, buf.len(), |bytes| buf.copy_from_slice(bytes)).is_some()
    }

    /// A device's write of `data` at `phys`; `false` (nothing written) outside a buffer.
    pub fn write(&self, phys: u64, data: &[u8]) -> bool {
        self.with_range(phys, data.len(), |bytes| bytes.copy_from_slice(data)).is_some()
    }

    /// A little-endian u32 at `phys` (`None` outside a buffer).
    pub fn read_u32(&self, phys: u64) -> Option<u32> {
        let mut b = [0; 4];
        self.read(phys, &mut b).then(|| u32::from_le_bytes(b))
    }

    /// A little-endian u64 at `phys` (`None` outside a buffer).
    pub fn read_u64(&self, phys: u64) -> Option<u64> {
        let mut b = [0; 8];
        self.read(phys, &mut b).then(|| u64::from_le_bytes(b))
    }

    /// How many buffers are live (a test checks a driver frees what it allocated).
    pub fn live_buffers(&self) -> usize {
        self.0.borrow().by_start.len()
    }
}

/// A DMA buffer in [`FakeMemory`]; dropping it frees the range (a device then cannot reach it).
pub struct FakeDma {
    memory: FakeMemory,
    phys: u64,
    len: usize,
}

impl Drop for FakeDma {
    fn drop(&mut self) {
        self.memory.0.borrow_mut().by_start.remove(&self.phys);
    }
}

impl Dma for FakeDma {
    fn phys(&self) -> u64 {
        self.phys
    }
    fn len(&self) -> usize {
        self.len
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), HwError> {
        let in_range = offset.checked_add(buf.len()).is_some_and(|end| end <= self.len);
        if in_range && self.memory.read(self.phys + offset as u64, buf) {
            Ok(())
        } else {
            Err(HwError::OutOfRange)
        }
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), HwError> {
        let in_range = offset.checked_add(data.len()).is_some_and(|end| end <= self.len);
        if in_range && self.memory.write(self.phys + offset as u64, data) {
            Ok(())
        } else {
            Err(HwError::OutOfRange)
        }
    }
}

/// A [`Platform`] over [`FakeMemory`] with a clock that only waits move: each
/// `wait_interrupt` advances it by the timeout, at most `step_ns`.
pub struct FakePlatform {
    memory: FakeMemory,
    clock: Rc<Cell<u64>>,
    step_ns: u64,
    waits: u64,
}

impl FakePlatform {
    /// A platform over `memory` whose waits advance the clock by at most 1 ms each.
    pub fn new(memory: FakeMemory) -> Self {
        FakePlatform { memory, clock: Rc::new(Cell::new(0)), step_ns: 1_000_000, waits: 0 }
    }

    /// Make each wait advance the clock by up to `step_ns` (`u64::MAX`: the whole timeout, as a
    /// platform with interrupts does when none comes).
    pub fn set_step_ns(&mut self, step_ns: u64) {
        self.step_ns = step_ns;
    }

    /// The clock, shared: a fake device that answers after a delay reads it.
    pub fn clock(&self) -> Rc<Cell<u64>> {
        self.clock.clone()
    }

    /// How many times the driver waited.
    pub fn waits(&self) -> u64 {
        self.waits
    }
}

impl Platform for FakePlatform {
    type Buffer = FakeDma;
    fn alloc_dma(&mut self, len: usize) -> Result<FakeDma, HwError> {
        self.memory.alloc(len, false)
    }
    fn alloc_dma_32bit(&mut self, len: usize) -> Result<FakeDma, HwError> {
        self.memory.alloc(len, true)
    }
    fn wait_interrupt(&mut self, timeout_ns: u64) -> bool {
        self.waits += 1;
        self.clock.set(self.clock.get().saturating_add(timeout_ns.clamp(1, self.step_ns)));
        false
    }
    fn now_ns(&self) -> u64 {
        self.clock.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_shared_with_the_device_and_freed_on_drop() {
        let memory = FakeMemory::new();
        let mut platform = FakePlatform::new(memory.clone());
        let mut high = platform.alloc_dma(100).unwrap();
        let low = platform.alloc_dma_32bit(8192).unwrap();
        assert!(high.phys() >= HIGH_BASE && low.phys() + 8192 <= HIGH_BASE);
        assert_eq!(high.phys() % 4096, 0);
        high.write_u32(96, 0xdead_beef).unwrap();
        assert_eq!(memory.read_u32(high.phys() + 96), Some(0xdead_beef));
        assert_eq!(memory.read_u32(high.phys() + 98), None);
        assert!(memory.write(low.phys() + 4, &[7; 4]));
        assert_eq!(low.read_u32(4), 0x0707_0707);
        let phys = high.phys();
        drop(high);
        assert_eq!(memory.read_u32(phys), None);
        assert_eq!(memory.live_buffers(), 1);
        memory.limit(4096);
        assert_eq!(platform.alloc_dma(8192).err(), Some(HwError::NoMemory));
    }
}
