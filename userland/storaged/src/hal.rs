//! The machine as the host drivers see it (keel-drv-hal's traits), over the kernel's device
//! resources: a BAR's registers mapped uncached ([`Mmio`]) or a port range ([`Ports`]), DMA
//! buffers ([`DmaBuffer`]), and an interrupt delivered as a notification bit ([`Machine`]).
//!
//! This is the storage service's only unsafe code: volatile accesses to memory the kernel mapped
//! for it, and the port instructions on ports the kernel opened to it. What it does not do:
//! decide anything about a device (the driver crates do) or check what the kernel checks.

use keel_abi::{prot, Error, Handle};
use keel_drv_hal::{Dma, HwError, Platform, Registers};
use keel_rt::sys;

/// The hardware handle (DEVICE): vmd grants it as storaged's first handle.
pub const HARDWARE: Handle = 1;

/// A device's registers in memory (a PCI BAR), mapped uncached by the kernel.
pub struct Mmio {
    base: u64,
    len: usize,
}

impl Mmio {
    /// Map `len` bytes of device memory at physical `phys` (page-aligned by the caller).
    pub fn map(phys: u64, len: usize) -> Result<Mmio, Error> {
        // Whole pages covering the range, from the page it starts in (a small BAR need not be
        // page-aligned).
        let pages = ((phys & 0xfff) + len as u64).div_ceil(4096) * 4096;
        let handle = sys::device_memory_create(HARDWARE, phys & !0xfff, pages)?;
        let base = sys::shm_map(handle, 0, prot::READ | prot::WRITE)?;
        let _ = sys::handle_close(handle);
        Ok(Mmio { base: base + (phys & 0xfff), len })
    }

    fn at<T>(&self, offset: usize) -> Option<*mut T> {
        let size = core::mem::size_of::<T>();
        (offset.checked_add(size)? <= self.len && offset.is_multiple_of(size))
            .then(|| (self.base + offset as u64) as *mut T)
    }
}

macro_rules! mmio_access {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&mut self, offset: usize) -> $t {
            match self.at::<$t>(offset) {
                // SAFETY: `at` checked the access lies inside the device memory the kernel mapped
                // for this process (uncached) and is naturally aligned.
                Some(p) => unsafe { core::ptr::read_volatile(p) },
                None => <$t>::MAX,
            }
        }
        fn $write(&mut self, offset: usize, value: $t) {
            if let Some(p) = self.at::<$t>(offset) {
                // SAFETY: as in the read.
                unsafe { core::ptr::write_volatile(p, value) }
            }
        }
    };
}

impl Registers for Mmio {
    fn len(&self) -> usize {
        self.len
    }
    mmio_access!(read8, write8, u8);
    mmio_access!(read16, write16, u16);
    mmio_access!(read32, write32, u32);
}

/// A range of I/O ports the kernel opened to this process.
pub struct Ports {
    base: u16,
    count: u16,
}

impl Ports {
    /// Open ports `base..base + count`.
    pub fn open(base: u16, count: u16) -> Result<Ports, Error> {
        let handle = sys::io_ports_create(HARDWARE, base, count)?;
        sys::io_ports_enable(handle)?;
        Ok(Ports { base, count })
    }

    fn port(&self, offset: usize, size: usize) -> Option<u16> {
        (offset.checked_add(size)? <= usize::from(self.count)).then(|| self.base + offset as u16)
    }
}

macro_rules! port_access {
    ($read:ident, $write:ident, $t:ty, $reg:tt) => {
        fn $read(&mut self, offset: usize) -> $t {
            let Some(port) = self.port(offset, core::mem::size_of::<$t>()) else { return <$t>::MAX };
            let value: $t;
            // SAFETY: the kernel opened these ports to this process (IoPortsEnable); an access to
            // a port of the device's own range has no effect on memory safety.
            unsafe { core::arch::asm!(concat!("in ", $reg, ", dx"), out($reg) value, in("dx") port, options(nomem, nostack, preserves_flags)) };
            value
        }
        fn $write(&mut self, offset: usize, value: $t) {
            let Some(port) = self.port(offset, core::mem::size_of::<$t>()) else { return };
            // SAFETY: as in the read.
            unsafe { core::arch::asm!(concat!("out dx, ", $reg), in("dx") port, in($reg) value, options(nomem, nostack, preserves_flags)) };
        }
    };
}

impl Registers for Ports {
    fn len(&self) -> usize {
        usize::from(self.count)
    }
    port_access!(read8, write8, u8, "al");
    port_access!(read16, write16, u16, "ax");
    port_access!(read32, write32, u32, "eax");
}

/// A pinned, contiguous buffer a device reaches by its physical address.
pub struct DmaBuffer {
    virt: u64,
    phys: u64,
    len: usize,
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        let _ = sys::mem_unmap(self.virt, self.len as u64);
    }
}

impl Dma for DmaBuffer {
    fn phys(&self) -> u64 {
        self.phys
    }
    fn len(&self) -> usize {
        self.len
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), HwError> {
        let end = offset.checked_add(buf.len()).ok_or(HwError::OutOfRange)?;
        if end > self.len {
            return Err(HwError::OutOfRange);
        }
        // The device's writes (completions) must be seen before the bytes are read.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        // SAFETY: the range lies inside the buffer this process mapped (checked above); the
        // device may write it concurrently, which a driver orders by its completion protocol.
        unsafe {
            core::ptr::copy_nonoverlapping((self.virt + offset as u64) as *const u8, buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), HwError> {
        let end = offset.checked_add(data.len()).ok_or(HwError::OutOfRange)?;
        if end > self.len {
            return Err(HwError::OutOfRange);
        }
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), (self.virt + offset as u64) as *mut u8, data.len()) };
        // The bytes must be in memory before a register write tells the device to look.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// DMA memory, the clock, and one device interrupt (or none: the driver then polls).
pub struct Machine {
    notify: Handle,
    irq: Option<Handle>,
}

impl Machine {
    pub fn new() -> Result<Machine, Error> {
        Ok(Machine { notify: sys::notify_create()?, irq: None })
    }

    /// Route a message-signalled interrupt to this machine's notification: the message
    /// (address, data) to program into the device's MSI capability or MSI-X table.
    pub fn msi(&mut self) -> Result<(u64, u32), Error> {
        let (irq, message) = sys::irq_create(HARDWARE, keel_abi::IrqSource::Msi, self.notify, 0)?;
        self.irq = Some(irq);
        Ok((message >> 32, message as u32))
    }
}

impl Platform for Machine {
    type Buffer = DmaBuffer;
    fn alloc_dma(&mut self, len: usize) -> Result<DmaBuffer, HwError> {
        let (handle, phys) = sys::dma_create(HARDWARE, len as u64).map_err(|e| match e {
            Error::NoMemory => HwError::NoMemory,
            _ => HwError::Denied,
        })?;
        let virt = sys::shm_map(handle, 0, prot::READ | prot::WRITE).map_err(|_| HwError::NoMemory)?;
        let _ = sys::handle_close(handle);
        Ok(DmaBuffer { virt, phys, len: len.div_ceil(4096) * 4096 })
    }
    fn wait_interrupt(&mut self, timeout_ns: u64) -> bool {
        if self.irq.is_none() {
            sys::yield_now();
            return false;
        }
        sys::notify_wait(self.notify, Some(timeout_ns)).is_ok_and(|bits| bits != 0)
    }
    fn now_ns(&self) -> u64 {
        sys::clock_ns()
    }
}
