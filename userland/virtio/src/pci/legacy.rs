//! The legacy (virtio 0.9.5) register block of a transitional virtio-pci device, in its I/O BAR0
//! (virtio 1.2, 4.1.4.8 "Legacy Interfaces: A Note on PCI Device Layout", without MSI-X):
//!
//! | offset | register | width | access |
//! |---|---|---|---|
//! | 0x00 | device features, bits 0-31 | 32 | read-only |
//! | 0x04 | driver features, bits 0-31 | 32 | read/write |
//! | 0x08 | queue address (page frame number) | 32 | read/write |
//! | 0x0C | queue size | 16 | read-only |
//! | 0x0E | queue select | 16 | read/write |
//! | 0x10 | queue notify | 16 | write |
//! | 0x12 | device status | 8 | read/write |
//! | 0x13 | ISR status | 8 | read clears it |
//! | 0x14 | device-specific configuration | | as the device says |
//!
//! Same state as the modern interface (`super`): the feature bits, status, queues and ISR are
//! shared, so a driver is legacy or modern only by the registers it uses. Driver features are
//! taken only before FEATURES_OK or DRIVER_OK, and only bits that were offered (a legacy driver
//! has no FEATURES_OK step to be refused by, 4.1.5.1 legacy note; VERSION_1 is bit 32, so never
//! visible here). A queue's size is its maximum (legacy drivers cannot choose one); writing a
//! page frame number places the queue in the legacy layout (2.7.2: the descriptor table at the
//! frame, the available ring right after it, the used ring at the next 4096-byte boundary after
//! the available ring and its `used_event`) and enables it; writing 0 takes the queue back to
//! its reset state (what Linux's legacy driver does when it deletes a queue). The legacy
//! interface is little-endian like the modern one, which is the guest's native order on x86.
//!
//! Accesses of any width at any offset: bytes past the registers and the configuration read 0
//! and are ignored when written; a read that covers the ISR byte clears it.
//!
//! Does not: offer the MSI-X vector registers (no MSI-X), or the legacy-only feature bits.

use keel_addr::Gpa;
use keel_virtio_spec::legacy;

use super::VirtioPci;
use crate::{status, VirtioDevice};

/// Bytes of registers before the device configuration.
const REGS_LEN: usize = legacy::DEVICE_CONFIG;

/// The writable legacy registers: offset and width.
const WRITABLE_FIELDS: [(usize, usize); 5] = [
    (legacy::DRIVER_FEATURES, 4),
    (legacy::QUEUE_ADDRESS, 4),
    (legacy::QUEUE_SELECT, 2),
    (legacy::QUEUE_NOTIFY, 2),
    (legacy::DEVICE_STATUS, 1),
];

/// The legacy I/O BAR's size for a device with `config_len` bytes of configuration: the
/// registers and the configuration, rounded up to a power of two (PCI 3.0 6.2.5.1); None if that
/// is more than an I/O BAR may have (256 bytes).
pub fn legacy_bar_size(config_len: u32) -> Option<u64> {
    let size = (REGS_LEN as u64 + u64::from(config_len)).next_power_of_two().max(32);
    (size <= 256).then_some(size)
}

impl<D: VirtioDevice> VirtioPci<D> {
    /// The legacy registers as bytes (the ISR byte included, without clearing it).
    fn legacy_bytes(&self) -> [u8; REGS_LEN] {
        let mut b = [0u8; REGS_LEN];
        let mut put = |at: usize, value: &[u8]| b[at..at + value.len()].copy_from_slice(value);
        put(legacy::DEVICE_FEATURES, &(self.offered_features() as u32).to_le_bytes());
        put(legacy::DRIVER_FEATURES, &(self.driver_features as u32).to_le_bytes());
        if let Some(q) = self.selected() {
            let pfn = if q.enabled() { q.addresses().0 .0 >> legacy::QUEUE_ADDRESS_SHIFT } else { 0 };
            // Only frames below 2^32 can be written, so the frame fits the register.
            put(legacy::QUEUE_ADDRESS, &(pfn as u32).to_le_bytes());
            put(legacy::QUEUE_SIZE, &q.size().to_le_bytes());
        }
        put(legacy::QUEUE_SELECT, &self.queue_select.to_le_bytes());
        put(legacy::DEVICE_STATUS, &[self.status]);
        put(legacy::ISR_STATUS, &[self.isr]);
        b
    }

    /// A read of the legacy BAR at `offset`.
    pub(super) fn legacy_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let Some(end) = offset.checked_add(data.len() as u64) else { return };
        if offset >= REGS_LEN as u64 {
            self.legacy_config_read(offset - REGS_LEN as u64, data);
            return;
        }
        let b = self.legacy_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = b.get(offset as usize + i).copied().unwrap_or(0);
        }
        // 4.1.4.5.1 (and its legacy note): reading the ISR status resets it.
        if (offset..end).contains(&(legacy::ISR_STATUS as u64)) {
            self.isr = 0;
        }
    }

    fn legacy_config_read(&self, at: u64, data: &mut [u8]) {
        let len = u64::from(self.device.config_len());
        if at.checked_add(data.len() as u64).is_some_and(|end| end <= len) {
            self.device.read_config(at, data);
        }
    }

    /// A write to the legacy BAR at `offset`: merged into the registers, then every writable
    /// register the write touched acts, in address order.
    pub(super) fn legacy_write(&mut self, offset: u64, data: &[u8]) {
        let Some(end) = offset.checked_add(data.len() as u64) else { return };
        if offset >= REGS_LEN as u64 {
            let at = offset - REGS_LEN as u64;
            let len = u64::from(self.device.config_len());
            if at.checked_add(data.len() as u64).is_some_and(|end| end <= len) {
                self.device.write_config(at, data);
            }
            return;
        }
        let mut b = self.legacy_bytes();
        for (i, &value) in data.iter().enumerate() {
            if let Some(byte) = b.get_mut(offset as usize + i) {
                *byte = value;
            }
        }
        for &(field, width) in &WRITABLE_FIELDS {
            if offset >= (field + width) as u64 || end <= field as u64 {
                continue;
            }
            let mut raw = [0u8; 4];
            raw[..width].copy_from_slice(&b[field..field + width]);
            self.legacy_field(field, u32::from_le_bytes(raw));
        }
    }

    fn legacy_field(&mut self, field: usize, value: u32) {
        match field {
            legacy::DRIVER_FEATURES if self.status & (status::FEATURES_OK | status::DRIVER_OK) == 0 => {
                self.driver_features = u64::from(value) & self.offered_features();
            }
            legacy::QUEUE_ADDRESS => self.legacy_queue_address(value),
            legacy::QUEUE_SELECT => self.queue_select = value as u16,
            legacy::QUEUE_NOTIFY => self.notify(u64::from(value as u16)),
            legacy::DEVICE_STATUS => self.write_status(value as u8),
            _ => {}
        }
    }

    /// QUEUE_ADDRESS: 0 resets the selected queue; a frame number places and enables it in the
    /// legacy layout (ignored while it is enabled).
    fn legacy_queue_address(&mut self, pfn: u32) {
        let Some(q) = self.selected_mut() else { return };
        if pfn == 0 {
            q.reset();
            return;
        }
        if q.enabled() {
            return;
        }
        // 2.7.2 legacy layout, with the queue size the device has (its maximum unless a modern
        // write changed it); a frame below 2^32 puts everything below 2^45: no overflow.
        let size = u64::from(q.size());
        let desc = u64::from(pfn) << legacy::QUEUE_ADDRESS_SHIFT;
        let avail = desc + 16 * size;
        let avail_end = avail + 2 * (3 + size);
        let used = avail_end.next_multiple_of(legacy::QUEUE_ALIGN);
        if q.set_addresses(Gpa(desc), Gpa(avail), Gpa(used)) {
            q.enable();
        }
    }
}
