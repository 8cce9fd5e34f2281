//! The HBA: reset into AHCI mode, the implemented ports, finding the SATA disks on them (link,
//! signature, IDENTIFY DEVICE), the bounce buffer every transfer goes through, and running one
//! command on a disk's port. See: AHCI 1.3.1 10.1 (initialization), 10.4.3 (HBA reset).
//!
//! What it does not do: reads and writes (`io.rs`), the BIOS/OS handoff (10.6), PCI set-up
//! (finding the HBA, mapping ABAR, MSI: keel-drv-pci's and the platform's), ATAPI devices
//! (recognized and skipped), port multipliers, hot-plug.

use alloc::vec::Vec;

use keel_block::BlockError;
use keel_drv_hal::{Dma, Platform, Registers};

use crate::command_list::{self, MAX_ENTRY_BYTES};
use crate::error::{memory_gone, AhciError, PortSkip};
use crate::fis;
use crate::identify::{AtaIdentity, AtaUnusable, IDENTIFY_BYTES};
use crate::port::{self, AtaCommand, DEVICE_READY_TIMEOUT_NS};
use crate::regs::{self, port_register};

/// GHC.HR must clear within 1 s. See: AHCI 1.3.1 10.4.3
const RESET_TIMEOUT_NS: u64 = 1_000_000_000;
/// How long links may take to come up after the reset, all ports together.
const LINK_WAIT_NS: u64 = 1_000_000_000;
/// A port with no device at all (DET 0) this long after the reset is taken as empty. A drive
/// answers the COMRESET that the reset sends with COMINIT within milliseconds (DET becomes 1, then
/// 3), even before it spins up; OpenBSD's ahci(4) looks for the device 10 ms after releasing
/// COMRESET and gives it about 1 ms more. A port that shows a device but no link yet (DET 1) still
/// gets the whole `LINK_WAIT_NS`. Every millisecond here delays the boot prompt (q35's AHCI has
/// six ports, usually empty). See: AHCI 1.3.1 3.3.10 (PxSSTS.DET), 10.4.2
const EMPTY_PORT_NS: u64 = 10_000_000;
/// How long a command may take.
pub(crate) const COMMAND_TIMEOUT_NS: u64 = 30_000_000_000;

/// How the bounce buffer is cut: pieces of `piece_bytes` (each physically contiguous), `pieces`
/// of them, so one command moves at most `piece_bytes * pieces` bytes in as many PRDT entries
/// (more where a piece passes 4 MiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub piece_bytes: usize,
    pub pieces: usize,
}

impl Default for Options {
    /// 8 pieces of 64 KiB: 512 KiB per command from small contiguous allocations.
    fn default() -> Self {
        Options { piece_bytes: 64 * 1024, pieces: 8 }
    }
}

/// A SATA disk on a port.
pub(crate) struct Disk<B> {
    pub port: usize,
    /// The port's command list, received-FIS area and command table.
    pub memory: B,
    pub identity: AtaIdentity,
    pub gone: bool,
}

/// An AHCI HBA behind its ABAR registers.
pub struct Ahci<R: Registers, P: Platform> {
    pub(crate) regs: R,
    pub(crate) platform: P,
    version: u32,
    pub(crate) disks: Vec<Disk<P::Buffer>>,
    skipped: Vec<(usize, PortSkip)>,
    /// Port memory that could not be taken back from a port that would not stop: kept, so the
    /// HBA never writes into memory given to something else.
    parked: Vec<P::Buffer>,
    pub(crate) bounce: Vec<P::Buffer>,
    /// The largest transfer in bytes (the whole bounce buffer).
    pub(crate) max_transfer: usize,
    /// Only 32-bit DMA addresses (no CAP.S64A).
    below_4g: bool,
}

impl<R: Registers, P: Platform> Ahci<R, P> {
    /// Bring up the HBA at `regs` (ABAR, mapped) with the default bounce buffer.
    pub fn new(regs: R, platform: P) -> Result<Self, AhciError> {
        Self::with_options(regs, platform, Options::default())
    }

    /// Reset the HBA, enable AHCI mode, and find the disks on its implemented ports.
    /// See: AHCI 1.3.1 10.1.2
    pub fn with_options(mut regs: R, mut platform: P, options: Options) -> Result<Self, AhciError> {
        if regs.len() < regs::PORTS {
            return Err(AhciError::WindowTooSmall);
        }
        if regs.read32(regs::CAP) == u32::MAX {
            return Err(AhciError::NotPresent);
        }
        // AE first (a HBA that also does legacy mode needs it before HR), then reset.
        regs.write32(regs::GHC, regs::GHC_AHCI);
        regs.write32(regs::GHC, regs::GHC_AHCI | regs::GHC_RESET);
        let reset = crate::poll(&mut platform, RESET_TIMEOUT_NS, |_| regs.read32(regs::GHC) & regs::GHC_RESET == 0);
        if !reset {
            return Err(AhciError::ResetTimeout);
        }
        regs.write32(regs::GHC, regs::GHC_AHCI);
        let capabilities = regs.read32(regs::CAP);
        let below_4g = capabilities & regs::CAP_S64A == 0;
        let version = regs.read32(regs::VS);
        let mut bounce = Vec::new();
        let piece_bytes = options.piece_bytes.clamp(4096, MAX_ENTRY_BYTES * 4) & !1;
        for _ in 0..options.pieces.clamp(1, 64) {
            let piece = if below_4g { platform.alloc_dma_32bit(piece_bytes) } else { platform.alloc_dma(piece_bytes) };
            bounce.push(piece?);
        }
        let max_transfer = bounce.iter().map(|piece| piece.len()).sum();
        let mut hba = Ahci {
            regs,
            platform,
            version,
            disks: Vec::new(),
            skipped: Vec::new(),
            parked: Vec::new(),
            bounce,
            max_transfer,
            below_4g,
        };
        hba.find_disks();
        hba.regs.write32(regs::GHC, regs::GHC_AHCI | regs::GHC_INTERRUPTS);
        Ok(hba)
    }

    /// The ports PI says exist that lie inside the register window.
    fn implemented_ports(&mut self) -> Vec<usize> {
        let implemented = self.regs.read32(regs::PI);
        let window = self.regs.len();
        (0..32).filter(|&port| implemented & 1 << port != 0 && port_register(port + 1, 0) <= window).collect()
    }

    fn alloc(&mut self, len: usize) -> Result<P::Buffer, keel_drv_hal::HwError> {
        if self.below_4g {
            self.platform.alloc_dma_32bit(len)
        } else {
            self.platform.alloc_dma(len)
        }
    }

    /// The PRDT entries a full bounce buffer needs.
    fn prdt_capacity(&self) -> usize {
        self.bounce.iter().map(|piece| piece.len().div_ceil(MAX_ENTRY_BYTES)).sum()
    }

    fn find_disks(&mut self) {
        let mut attached = Vec::new();
        for number in self.implemented_ports() {
            if !port::stop(&mut self.regs, &mut self.platform, number, true) {
                self.skipped.push((number, PortSkip::Stuck));
                continue;
            }
            match self.alloc(command_list::port_memory_bytes(self.prdt_capacity())) {
                Ok(memory) => {
                    port::attach(&mut self.regs, number, &memory);
                    attached.push((number, memory));
                }
                Err(error) => self.skipped.push((number, PortSkip::Memory(error))),
            }
        }
        // Wait for the links together: a port is settled once its link is up, or once it has
        // shown no device at all for a while. See: AHCI 1.3.1 10.1.2 (step 5), 3.3.10
        let start = self.platform.now_ns();
        let regs = &mut self.regs;
        crate::poll(&mut self.platform, LINK_WAIT_NS, |platform| {
            let early = platform.now_ns().saturating_sub(start) < EMPTY_PORT_NS;
            attached.iter().all(|(number, _)| match port::detection(regs, *number) {
                regs::DET_PRESENT => true,
                0 => !early,
                _ => false,
            })
        });
        for (number, memory) in attached {
            if port::detection(&mut self.regs, number) != regs::DET_PRESENT {
                self.retire(number, memory, None);
                continue;
            }
            if !port::wait_device_ready(&mut self.regs, &mut self.platform, number, DEVICE_READY_TIMEOUT_NS) {
                self.retire(number, memory, Some(PortSkip::NotReady));
                continue;
            }
            match port::read(&mut self.regs, number, regs::port::SIG) {
                regs::SIG_ATA => {}
                regs::SIG_ATAPI => {
                    self.retire(number, memory, Some(PortSkip::Atapi));
                    continue;
                }
                other => {
                    self.retire(number, memory, Some(PortSkip::Unknown(other)));
                    continue;
                }
            }
            port::start(&mut self.regs, number);
            self.disks.push(Disk { port: number, memory, identity: blank_identity(), gone: false });
            let index = self.disks.len() - 1;
            let identify = AtaCommand { command: fis::IDENTIFY_DEVICE, lba: 0, count: 0, data: &[], write: false };
            let data = self.run(index, identify, IDENTIFY_BYTES).and_then(|()| {
                let mut data = [0u8; IDENTIFY_BYTES];
                self.bounce_read(&mut data).map(|()| data)
            });
            let why = match data.map(|data| AtaIdentity::decode(&data)) {
                Ok(Ok(identity)) if identity.sector_size as usize <= self.max_transfer => {
                    self.disks[index].identity = identity;
                    continue;
                }
                Ok(Ok(identity)) => PortSkip::Unusable(AtaUnusable::SectorSize(identity.sector_size)),
                Ok(Err(why)) => PortSkip::Unusable(why),
                Err(error) => PortSkip::Identify(error),
            };
            if let Some(disk) = self.disks.pop() {
                self.retire(number, disk.memory, Some(why));
            }
        }
    }

    /// Stop a port the driver does not use and take its memory back (or park it when the port
    /// will not stop); note why, if there is something to say.
    fn retire(&mut self, number: usize, memory: P::Buffer, why: Option<PortSkip>) {
        if !port::stop(&mut self.regs, &mut self.platform, number, true) {
            self.parked.push(memory);
        }
        if let Some(why) = why {
            self.skipped.push((number, why));
        }
    }

    /// Run `command` on `disk`'s port moving `len` bytes through the bounce buffer (its PRDT is
    /// built here). A failure recovers the port; a port that cannot recover is gone.
    pub(crate) fn run(&mut self, index: usize, command: AtaCommand<'_>, len: usize) -> Result<(), BlockError> {
        let Ahci { regs, platform, disks, bounce, max_transfer, .. } = self;
        let disk = disks.get_mut(index).ok_or(BlockError::Gone)?;
        if disk.gone {
            return Err(BlockError::Gone);
        }
        let pieces: Vec<(u64, usize)> = bounce.iter().map(|piece| (piece.phys(), piece.len())).collect();
        let prdt = command_list::prdt_for(&pieces, len.min(*max_transfer));
        let command = AtaCommand { data: &prdt, ..command };
        let outcome = port::issue(regs, platform, disk.port, &mut disk.memory, &command, COMMAND_TIMEOUT_NS)
            .map_err(memory_gone)?;
        let (result, alive) = port::settle(regs, platform, disk.port, outcome);
        disk.gone = !alive;
        result
    }

    /// Copy the start of the bounce buffer out.
    pub(crate) fn bounce_read(&self, buf: &mut [u8]) -> Result<(), BlockError> {
        let mut done = 0;
        for piece in &self.bounce {
            if done == buf.len() {
                break;
            }
            let now = (buf.len() - done).min(piece.len());
            piece.read(0, &mut buf[done..done + now]).map_err(memory_gone)?;
            done += now;
        }
        if done == buf.len() {
            Ok(())
        } else {
            Err(BlockError::Gone)
        }
    }

    /// Copy `data` into the start of the bounce buffer.
    pub(crate) fn bounce_write(&mut self, data: &[u8]) -> Result<(), BlockError> {
        let mut done = 0;
        for piece in &mut self.bounce {
            if done == data.len() {
                break;
            }
            let now = (data.len() - done).min(piece.len());
            piece.write(0, &data[done..done + now]).map_err(memory_gone)?;
            done += now;
        }
        if done == data.len() {
            Ok(())
        } else {
            Err(BlockError::Gone)
        }
    }

    /// Ports with a device that is not offered as a disk, and why (for the log).
    pub fn skipped_ports(&self) -> &[(usize, PortSkip)] {
        &self.skipped
    }

    /// The number of disks found.
    pub fn disk_count(&self) -> usize {
        self.disks.len()
    }

    /// The HBA's version register (VS: major in bits 31:16, minor 15:0).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The largest transfer in one command, in bytes.
    pub fn max_transfer(&self) -> usize {
        self.max_transfer
    }
}

/// The identity of a disk not identified yet.
fn blank_identity() -> AtaIdentity {
    AtaIdentity {
        serial: alloc::string::String::new(),
        firmware: alloc::string::String::new(),
        model: alloc::string::String::new(),
        sector_count: 0,
        sector_size: 512,
        flush_ext: false,
        write_cache: false,
    }
}
