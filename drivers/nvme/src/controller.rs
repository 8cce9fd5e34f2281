//! The controller: bring-up (reset, admin queue, enable, identify, the I/O queue pair, the
//! namespaces), running one command at a time to completion or timeout, recovery after a
//! timeout, and shutdown. See: NVMe 1.4 7.6.1 (initialization), 7.6.2 (shutdown).
//!
//! What it does not do: reads and writes (`io.rs`), interrupts set-up (MSI/MSI-X are PCI's;
//! the driver only waits on the platform's interrupt and polls the completion queue), several
//! I/O queues or commands in flight, namespace management or hot-plug.

use alloc::vec::Vec;

use keel_drv_hal::{Platform, Registers};

use crate::command::{admin, cns, Command, Completion, FEATURE_NUMBER_OF_QUEUES};
use crate::error::NvmeError;
use crate::identify::{active_namespaces, ControllerIdentity, NamespaceIdentity, NamespaceUnusable, IDENTIFY_BYTES};
use crate::page_buffer::PageBuffer;
use crate::prp;
use crate::queue::QueuePair;
use crate::regs::{self, Capabilities, CSTS_FATAL, CSTS_READY};

/// Entries in the admin queues.
const ADMIN_DEPTH: u16 = 16;
/// Entries in the I/O queues (one command is in flight at a time; more entries only spread the
/// controller's writes over the completion queue).
const IO_DEPTH: u16 = 64;
/// The bounce buffer every transfer goes through, and so the largest transfer (MDTS may lower
/// it): 256 KiB, a good size for sequential reads at little memory.
const BOUNCE_BYTES: usize = 256 * 1024;
/// The largest memory page accepted (CAP.MPSMIN above 64 KiB is unheard of).
const MAX_PAGE_SHIFT: u32 = 16;
/// How long an admin command may take.
const ADMIN_TIMEOUT_NS: u64 = 10_000_000_000;
/// How long a read, write or flush may take.
pub(crate) const IO_TIMEOUT_NS: u64 = 30_000_000_000;
/// Namespaces tried when the controller has no active namespace list (NVMe 1.0).
const MAX_PROBED_NAMESPACES: u32 = 256;
/// The I/O queue pair's identifier.
const IO_QUEUE: u16 = 1;

/// A namespace offered as a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The namespace identifier (NSID).
    pub id: u32,
    pub block_size: u32,
    pub block_count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    Ready,
    /// A command timed out and the controller was disabled: the next request resets it.
    NeedsRestart,
    /// Fatal status, or a restart failed: every request fails at once.
    Gone,
}

/// Which queue pair a command goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    Admin,
    Io,
}

/// An NVMe controller behind its BAR0 registers.
pub struct Nvme<R: Registers, P: Platform> {
    pub(crate) regs: R,
    pub(crate) platform: P,
    pub(crate) caps: Capabilities,
    pub(crate) page_size: usize,
    admin: QueuePair<P::Buffer>,
    io: QueuePair<P::Buffer>,
    /// Every transfer's data, page aligned; its PRP list is `prp_list`, written once.
    pub(crate) bounce: PageBuffer<P::Buffer>,
    pub(crate) prp_list: PageBuffer<P::Buffer>,
    pub(crate) identity: ControllerIdentity,
    pub(crate) version: u32,
    pub(crate) namespaces: Vec<Namespace>,
    skipped: Vec<(u32, NamespaceUnusable)>,
    /// The largest transfer in bytes: the bounce buffer, or less by MDTS.
    pub(crate) max_transfer: usize,
    next_command_id: u16,
    pub(crate) health: Health,
}

impl<R: Registers, P: Platform> Nvme<R, P> {
    /// Reset and enable the controller in `regs` (BAR0, mapped), identify it, create the I/O
    /// queue pair and find its namespaces. See: NVMe 1.4 7.6.1
    pub fn new(mut regs: R, mut platform: P) -> Result<Self, NvmeError> {
        let cap = regs.read64(regs::CAP);
        if cap == u64::MAX {
            return Err(NvmeError::NotPresent);
        }
        let caps = Capabilities::decode(cap);
        if !caps.nvm_command_set {
            return Err(NvmeError::Unsupported("no NVM command set"));
        }
        if caps.min_page_shift > MAX_PAGE_SHIFT {
            return Err(NvmeError::Unsupported("smallest memory page over 64 KiB"));
        }
        if caps.max_queue_entries < 2 {
            return Err(NvmeError::Unsupported("queues of fewer than 2 entries"));
        }
        if caps.completion_doorbell(IO_QUEUE) + 4 > regs.len() {
            return Err(NvmeError::Unsupported("doorbells outside BAR0"));
        }
        let version = regs.read32(regs::VS);
        let page_size = 1usize << caps.min_page_shift;
        let depth = |wanted: u16| wanted.min(caps.max_queue_entries.min(u16::MAX as u32) as u16);
        let admin = QueuePair::new(&mut platform, &caps, page_size, 0, depth(ADMIN_DEPTH))?;
        let io = QueuePair::new(&mut platform, &caps, page_size, IO_QUEUE, depth(IO_DEPTH))?;
        let bounce_bytes = BOUNCE_BYTES.max(page_size).min(prp::max_pages(page_size) * page_size);
        let bounce = PageBuffer::new(&mut platform, bounce_bytes, page_size)?;
        let mut prp_list = PageBuffer::new(&mut platform, page_size, page_size)?;
        for (index, page) in prp::list_entries(bounce.phys(), bounce.len(), page_size).enumerate() {
            prp_list.write_u64(index * 8, page)?;
        }
        let mut nvme = Nvme {
            regs,
            platform,
            caps,
            page_size,
            admin,
            io,
            bounce,
            prp_list,
            identity: ControllerIdentity::decode(&[0; IDENTIFY_BYTES]),
            version,
            namespaces: Vec::new(),
            skipped: Vec::new(),
            max_transfer: 0,
            next_command_id: 0,
            health: Health::Ready,
        };
        nvme.enable()?;
        let data = nvme.identify(cns::CONTROLLER, 0)?;
        nvme.identity = ControllerIdentity::decode(&data);
        let limit = nvme.identity.max_transfer_bytes(caps.min_page_shift).unwrap_or(u64::MAX);
        nvme.max_transfer = nvme.bounce.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
        nvme.create_io_queues()?;
        nvme.find_namespaces()?;
        Ok(nvme)
    }

    /// The namespaces offered as disks, in NSID order.
    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    /// Active namespaces not offered, and why (for the log).
    pub fn skipped_namespaces(&self) -> &[(u32, NamespaceUnusable)] {
        &self.skipped
    }

    /// The largest transfer in one command, in bytes.
    pub fn max_transfer(&self) -> usize {
        self.max_transfer
    }

    /// Disable the controller and wait for CSTS.RDY to clear; if it was still becoming ready,
    /// wait for that first (CC.EN must not change while RDY lags it). See: NVMe 1.4 3.1.5, 7.3.1
    fn disable(&mut self) -> Result<(), NvmeError> {
        let timeout = self.caps.ready_timeout_ns;
        let enabled = self.regs.read32(regs::CC) & regs::CC_ENABLE != 0;
        let status = self.regs.read32(regs::CSTS);
        if status == u32::MAX {
            return Err(NvmeError::NotPresent);
        }
        if enabled && status & (CSTS_READY | CSTS_FATAL) == 0 {
            let regs = &mut self.regs;
            // A controller that never gets ready is reset all the same.
            crate::poll(&mut self.platform, timeout, |_| regs.read32(regs::CSTS) & (CSTS_READY | CSTS_FATAL) != 0);
        }
        self.regs.write32(regs::CC, 0);
        let regs = &mut self.regs;
        if !crate::poll(&mut self.platform, timeout, |_| regs.read32(regs::CSTS) & CSTS_READY == 0) {
            return Err(NvmeError::ResetTimeout);
        }
        Ok(())
    }

    /// Reset the controller, give it the admin queues and enable it. See: NVMe 1.4 7.6.1
    fn enable(&mut self) -> Result<(), NvmeError> {
        self.disable()?;
        self.admin.restart()?;
        self.io.restart()?;
        self.regs.write32(regs::AQA, regs::admin_queue_attributes(self.admin.depth()));
        self.regs.write64(regs::ASQ, self.admin.submission_phys());
        self.regs.write64(regs::ACQ, self.admin.completion_phys());
        self.regs.write32(regs::CC, regs::enabled_configuration(self.caps.min_page_shift));
        let regs = &mut self.regs;
        let ready = crate::poll(&mut self.platform, self.caps.ready_timeout_ns, |_| {
            regs.read32(regs::CSTS) & (CSTS_READY | CSTS_FATAL) != 0
        });
        let status = self.regs.read32(regs::CSTS);
        if status == u32::MAX || status & CSTS_FATAL != 0 {
            return Err(NvmeError::Fatal);
        }
        if !ready {
            return Err(NvmeError::ReadyTimeout);
        }
        self.health = Health::Ready;
        Ok(())
    }

    /// Ask for one I/O queue pair, then create its completion and submission queues
    /// (physically contiguous, interrupts on vector 0). See: NVMe 1.4 5.21.1.7, 5.3, 5.4
    fn create_io_queues(&mut self) -> Result<(), NvmeError> {
        let one_pair = Command::new(admin::SET_FEATURES, 0).with_cdw(0, &[FEATURE_NUMBER_OF_QUEUES, 0]);
        match self.execute(Queue::Admin, one_pair, ADMIN_TIMEOUT_NS) {
            // A controller that refuses still has at least one pair (NVMe 1.4 5.21.1.7).
            Ok(_) | Err(NvmeError::CommandFailed { .. }) => {}
            Err(other) => return Err(other),
        }
        let size_and_id = ((self.io.depth() as u32 - 1) << 16) | IO_QUEUE as u32;
        let completions = Command::new(admin::CREATE_IO_COMPLETION_QUEUE, 0)
            .with_data(self.io.completion_phys(), 0)
            .with_cdw(0, &[size_and_id, 0b11]);
        self.execute(Queue::Admin, completions, ADMIN_TIMEOUT_NS)?;
        let submissions = Command::new(admin::CREATE_IO_SUBMISSION_QUEUE, 0)
            .with_data(self.io.submission_phys(), 0)
            .with_cdw(0, &[size_and_id, (IO_QUEUE as u32) << 16 | 1]);
        self.execute(Queue::Admin, submissions, ADMIN_TIMEOUT_NS)?;
        Ok(())
    }

    /// Identify data structure `cns` for namespace `nsid`, through the bounce buffer.
    /// See: NVMe 1.4 5.15
    fn identify(&mut self, cns: u32, nsid: u32) -> Result<[u8; IDENTIFY_BYTES], NvmeError> {
        self.bounce.write(0, &[0; IDENTIFY_BYTES])?;
        let command = Command::new(admin::IDENTIFY, nsid).with_data(self.bounce.phys(), 0).with_cdw(0, &[cns]);
        self.execute(Queue::Admin, command, ADMIN_TIMEOUT_NS)?;
        let mut data = [0; IDENTIFY_BYTES];
        self.bounce.read(0, &mut data)?;
        Ok(data)
    }

    /// The active namespaces (CNS 02h; a controller without that list, NVMe 1.0, has its
    /// namespaces 1..=NN probed), each identified; those the driver cannot use are noted.
    fn find_namespaces(&mut self) -> Result<(), NvmeError> {
        let ids = match self.identify(cns::ACTIVE_NAMESPACES, 0) {
            Ok(list) => active_namespaces(&list),
            Err(NvmeError::CommandFailed { .. }) => {
                (1..=self.identity.namespace_count.min(MAX_PROBED_NAMESPACES)).collect()
            }
            Err(other) => return Err(other),
        };
        for id in ids {
            let data = match self.identify(cns::NAMESPACE, id) {
                Ok(data) => data,
                Err(NvmeError::CommandFailed { .. }) => continue,
                Err(other) => return Err(other),
            };
            match NamespaceIdentity::decode(&data) {
                Ok(found) if found.block_size as usize > self.max_transfer => {
                    self.skipped.push((id, NamespaceUnusable::BlockSize(found.block_size.trailing_zeros() as u8)));
                }
                Ok(found) => {
                    self.namespaces.push(Namespace { id, block_size: found.block_size, block_count: found.block_count })
                }
                Err(NamespaceUnusable::Empty) => {}
                Err(why) => self.skipped.push((id, why)),
            }
        }
        Ok(())
    }

    /// Run `command` on `queue` and wait for its completion. A fatal status makes the
    /// controller gone; a timeout disables it, so the abandoned command cannot write into the
    /// bounce buffer later, and the next command restarts it first.
    pub(crate) fn execute(
        &mut self,
        queue: Queue,
        mut command: Command,
        timeout_ns: u64,
    ) -> Result<Completion, NvmeError> {
        match self.health {
            Health::Ready => {}
            Health::NeedsRestart => self.restart()?,
            Health::Gone => return Err(NvmeError::Fatal),
        }
        let id = self.next_command_id;
        self.next_command_id = id.wrapping_add(1);
        command.set_id(id);
        let opcode = command.opcode();
        let Nvme { regs, platform, admin, io, .. } = self;
        let pair = if queue == Queue::Io { io } else { admin };
        pair.submit(regs, &command)?;
        let mut outcome = None;
        crate::poll(platform, timeout_ns, |_| {
            while let Some(done) = pair.take_completion(regs) {
                // Anything else is the late completion of a command given up on: dropped.
                if done.command_id == id && done.submission_queue == pair.id {
                    outcome = Some(Ok(done));
                    return true;
                }
            }
            let status = regs.read32(regs::CSTS);
            if status == u32::MAX || status & CSTS_FATAL != 0 {
                outcome = Some(Err(NvmeError::Fatal));
                return true;
            }
            false
        });
        match outcome {
            Some(Ok(done)) => match done.error() {
                None => Ok(done),
                Some(status) => Err(NvmeError::CommandFailed { opcode, status }),
            },
            Some(Err(error)) => {
                self.health = Health::Gone;
                Err(error)
            }
            None => {
                self.regs.write32(regs::CC, 0);
                self.health = Health::NeedsRestart;
                Err(NvmeError::CommandTimeout { opcode })
            }
        }
    }

    /// Bring the controller back after a timeout: reset, enable, the I/O queues again. If that
    /// fails too, the controller is gone. See: NVMe 1.4 7.3.1
    fn restart(&mut self) -> Result<(), NvmeError> {
        let result = self.enable().and_then(|()| self.create_io_queues());
        if result.is_err() {
            self.health = Health::Gone;
        }
        result
    }

    /// Shut the controller down in order (CC.SHN normal, wait for CSTS.SHST complete), so a
    /// volatile write cache is written out before power goes. See: NVMe 1.4 7.6.2
    pub fn shutdown(&mut self) -> Result<(), NvmeError> {
        let configuration = self.regs.read32(regs::CC);
        self.regs.write32(regs::CC, (configuration & !(0b11 << 14)) | 0b01 << 14);
        let regs = &mut self.regs;
        let done = crate::poll(&mut self.platform, self.caps.ready_timeout_ns, |_| {
            (regs.read32(regs::CSTS) >> 2) & 0b11 == 0b10
        });
        self.health = Health::Gone;
        if done {
            Ok(())
        } else {
            Err(NvmeError::ResetTimeout)
        }
    }
}
