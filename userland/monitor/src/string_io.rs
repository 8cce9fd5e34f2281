//! The glue between keel-x86emu's INS/OUTS emulation and this VM: linear addresses translated
//! through the guest's page tables (keel-hv's walk) to guest RAM, and the platform's port bus.
//!
//! Memory outside RAM (an unmapped guest-physical address) reads as all ones and ignores writes,
//! as MMIO that nothing claims does. A linear address the guest's page tables do not map is a
//! page fault for the guest. Page-table access rights are not checked (an INS into a read-only
//! page stores anyway).

use keel_addr::Gpa;
use keel_vcpupage::VcpuPage;
use keel_x86emu::string_io::{LinearMemory, PageFault, Ports};

use keel_devices::WriteEffect;

use crate::platform::Platform;
use crate::ram::GuestRam;

const PAGE: u64 = 4096;

/// Guest memory by linear address, with the paging state of the exit.
pub struct GuestLinear<'a> {
    pub ram: &'a GuestRam,
    pub mode: keel_hv::walk::Paging,
    pub cr3: u64,
}

impl GuestLinear<'_> {
    fn translate(&self, linear: u64, write: bool) -> Result<Gpa, PageFault> {
        let read_u64 = |gpa: Gpa| {
            let mut b = [0u8; 8];
            self.ram.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
        };
        keel_hv::walk::translate(self.mode, self.cr3, linear, read_u64).ok_or(PageFault { linear, write })
    }

    /// Calls `each(gpa, range)` for the pieces of `linear..linear+len` that lie in one page.
    fn pages(
        &self,
        linear: u64,
        len: usize,
        write: bool,
        mut each: impl FnMut(Gpa, core::ops::Range<usize>),
    ) -> Result<(), PageFault> {
        // Translate every page first: a fault must leave memory untouched. An element is at
        // most 4 bytes, so it lies in at most two pages.
        let mut pieces = [(Gpa(0), 0usize, 0usize); 2];
        let mut count = 0;
        let mut done = 0;
        while done < len && count < pieces.len() {
            let at = linear.wrapping_add(done as u64);
            let chunk = ((PAGE - at % PAGE) as usize).min(len - done);
            pieces[count] = (self.translate(at, write)?, done, done + chunk);
            count += 1;
            done += chunk;
        }
        for &(gpa, start, end) in &pieces[..count] {
            each(gpa, start..end);
        }
        Ok(())
    }
}

impl LinearMemory for GuestLinear<'_> {
    fn read(&mut self, linear: u64, data: &mut [u8]) -> Result<(), PageFault> {
        let ram = self.ram;
        self.pages(linear, data.len(), false, |gpa, range| {
            if !ram.read(gpa, &mut data[range.clone()]) {
                data[range].fill(0xFF);
            }
        })
    }

    fn write(&mut self, linear: u64, data: &[u8]) -> Result<(), PageFault> {
        let ram = self.ram;
        self.pages(linear, data.len(), true, |gpa, range| {
            let _ = ram.write(gpa, &data[range]);
        })
    }
}

/// The port bus; remembers the first port write that asked the monitor to act.
pub struct PlatformPorts<'a> {
    pub platform: &'a mut Platform,
    pub effect: WriteEffect,
}

impl Ports for PlatformPorts<'_> {
    fn read(&mut self, port: u16, data: &mut [u8]) {
        self.platform.port_read(port, data);
    }

    fn write(&mut self, port: u16, data: &[u8]) -> bool {
        match self.platform.port_write(port, data) {
            WriteEffect::None => true,
            effect => {
                self.effect = effect;
                false
            }
        }
    }
}

/// The paging mode and CR3 of `st`.
pub fn paging(st: &VcpuPage) -> (keel_hv::walk::Paging, u64) {
    (keel_hv::walk::paging_mode(st.cr0(), st.cr4(), st.efer()), st.cr3())
}
