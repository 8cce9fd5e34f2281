//! The guest's CD-ROM drive: a virtio-scsi host adapter (virtio 1.2, 5.6) with one target and
//! one logical unit, a read-only SCSI CD/DVD-ROM over a [`BlockBackend`] holding an ISO image.
//! This file is the virtqueue plumbing; what the commands mean is in `scsi/cdrom.rs` (pure, one
//! CDB in, a reply out) and `scsi/sense.rs`.
//!
//! Queues (5.6.2): control (0), event (1), one request queue (2). The configuration (5.6.4): one
//! request queue, `max_channel` 0, `max_target` 0, `max_lun` 0 (so Linux scans exactly target
//! 0, LUN 0), `max_sectors` the CD-ROM's transfer limit, `sense_size` and `cdb_size` 96 and 32 by
//! default and writable by the driver (used only as offsets into the request: never as a size
//! to allocate). No feature bits (no hotplug, no T10 PI).
//!
//! Requests (5.6.6.1): the chain is read as two byte streams (`crate::chain`). The response
//! header (12 bytes) must fit in the writable stream, or the chain is returned with nothing
//! written. Then, in order: a readable descriptor after a writable one, or a readable stream
//! shorter than the header and the CDB: VIRTIO_SCSI_S_FAILURE; a LUN other than target 0, LUN 0
//! (the flat or single-level form, `lun[0]` = 1): VIRTIO_SCSI_S_BAD_TARGET; otherwise the CD-ROM
//! executes the CDB. Data-in follows the sense bytes (at 12 + sense_size); a reply longer than
//! the data-in buffer is cut, a READ longer than it is VIRTIO_SCSI_S_OVERRUN with nothing
//! transferred; `residual` is the data-in bytes not written. CHECK CONDITION carries
//! fixed-format sense (autosense: at most `sense_size` bytes). A READ goes through one
//! [`CHUNK`]-byte buffer allocated at creation; a backend error is MEDIUM ERROR, a data-in
//! buffer outside RAM is VIRTIO_SCSI_S_FAILURE. A response header outside RAM is a queue memory
//! error (the transport's DEVICE_NEEDS_RESET), as in every device here.
//!
//! Control queue (5.6.6.2): task management functions complete at once, since every command
//! completed before its chain was returned: aborts, resets and queries answer
//! VIRTIO_SCSI_S_FUNCTION_COMPLETE (a reset also allows medium removal again), CLEAR ACA and
//! unknown functions VIRTIO_SCSI_S_FUNCTION_REJECTED, a wrong LUN BAD_TARGET. Asynchronous
//! notification queries and subscriptions answer OK with no event supported (`event_actual` 0).
//! A request too short for its type, or of an unknown type, is returned with nothing written.
//!
//! Event queue: its buffers are kept, never returned (no hotplug, no media change events).
//!
//! Does not: offer more than one target or LUN, write to the medium, queue commands, or send
//! events.

pub mod cdrom;
pub mod sense;

use alloc::vec;
use alloc::vec::Vec;

use keel_devices::guest_memory::GuestMemory;
use keel_virtio_spec::{scsi_config, scsi_queue, scsi_request, scsi_response};

use crate::backend::BlockBackend;
use crate::chain::Chain;
use crate::queue::{QueueError, SplitQueue};
use crate::{device_id, VirtioDevice};
use cdrom::{CdRom, Reply, REPLY_MAX};
use sense::{Sense, STATUS_CHECK_CONDITION, STATUS_GOOD};

/// Every queue's maximum size.
pub const QUEUE_SIZE: u16 = 128;
/// The bytes copied from the backend to guest memory at a time.
pub const CHUNK: usize = 64 * 1024;
/// The PCI class reported: mass storage, SCSI controller.
pub const PCI_CLASS: u32 = 0x01_00_00;
/// The longest CDB the CD-ROM looks at (the rest of a longer `cdb_size` is skipped).
const CDB_MAX: usize = 32;

/// What became of requests, for the monitor's statistics and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScsiStats {
    /// Command requests returned (whatever their response).
    pub commands: u64,
    /// Commands answered CHECK CONDITION.
    pub check_conditions: u64,
    /// Requests answered with a virtio-scsi response other than OK (BAD_TARGET, OVERRUN,
    /// FAILURE), or returned with nothing written.
    pub failures: u64,
    pub bytes_read: u64,
}

/// A virtio-scsi adapter with a CD-ROM over `B`.
#[derive(Debug)]
pub struct VirtioScsi<B: BlockBackend> {
    backend: B,
    cdrom: CdRom,
    sense_size: u32,
    cdb_size: u32,
    chain: Chain,
    reply: [u8; REPLY_MAX],
    buf: Vec<u8>,
    stats: ScsiStats,
}

/// Whether an 8-byte virtio-scsi LUN addresses target 0, LUN 0 (5.6.6.1: `lun[0]` 1, the target
/// in `lun[1]`, the LUN in `lun[2..4]` in the flat (01b) or peripheral (00b) form, the rest 0).
fn is_our_lun(lun: &[u8]) -> bool {
    let number = u16::from_be_bytes([lun[2], lun[3]]);
    lun[0] == scsi_request::LUN_ADDRESSED
        && lun[1] == 0
        && number & 0x3FFF == 0
        && number >> 14 <= 1
        && lun[4..8] == [0; 4]
}

/// The response to a command request.
struct Response {
    sense_len: u32,
    residual: u64,
    status: u8,
    response: u8,
    /// Bytes of the writable stream written (the used length).
    written: u64,
}

impl Response {
    fn failed(response: u8) -> Self {
        Self {
            sense_len: 0,
            residual: 0,
            status: STATUS_GOOD,
            response,
            written: scsi_request::RESPONSE_HEADER_LEN as u64,
        }
    }
}

impl<B: BlockBackend> VirtioScsi<B> {
    /// An adapter whose LUN 0 is a CD-ROM holding `backend` (used read-only whatever the backend
    /// says); `serial` (its first 20 bytes) is the unit's serial number.
    pub fn new(backend: B, serial: &[u8]) -> Self {
        Self {
            cdrom: CdRom::new(backend.size_bytes(), serial),
            backend,
            sense_size: scsi_config::DEFAULT_SENSE_SIZE,
            cdb_size: scsi_config::DEFAULT_CDB_SIZE,
            chain: Chain::with_capacity(QUEUE_SIZE),
            reply: [0; REPLY_MAX],
            buf: vec![0; CHUNK],
            stats: ScsiStats::default(),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn cdrom(&self) -> &CdRom {
        &self.cdrom
    }

    pub fn stats(&self) -> ScsiStats {
        self.stats
    }

    fn config_bytes(&self) -> [u8; scsi_config::LEN] {
        let mut c = [0u8; scsi_config::LEN];
        let mut put = |at: usize, v: &[u8]| c[at..at + v.len()].copy_from_slice(v);
        put(scsi_config::NUM_QUEUES, &1u32.to_le_bytes());
        put(scsi_config::SEG_MAX, &(u32::from(QUEUE_SIZE) - 2).to_le_bytes());
        // In 512-byte sectors.
        let max_sectors = cdrom::MAX_TRANSFER_BLOCKS * cdrom::BLOCK / 512;
        put(scsi_config::MAX_SECTORS, &(max_sectors as u32).to_le_bytes());
        put(scsi_config::CMD_PER_LUN, &u32::from(QUEUE_SIZE).to_le_bytes());
        put(scsi_config::EVENT_INFO_SIZE, &16u32.to_le_bytes());
        put(scsi_config::SENSE_SIZE, &self.sense_size.to_le_bytes());
        put(scsi_config::CDB_SIZE, &self.cdb_size.to_le_bytes());
        // max_channel, max_target and max_lun are 0.
        c
    }

    /// One command request (5.6.6.1): the response to write, after the data-in and sense bytes
    /// it describes were written.
    fn command(&mut self, mem: &mut dyn GuestMemory) -> Response {
        let readable = self.chain.readable();
        let writable = self.chain.writable();
        let cdb_size = u64::from(self.cdb_size);
        let header_len = scsi_request::CMD_HEADER_LEN as u64;
        let mut header = [0u8; scsi_request::CMD_HEADER_LEN];
        let mut cdb = [0u8; CDB_MAX];
        let cdb_len = (self.cdb_size as usize).min(CDB_MAX);
        if self.chain.misordered()
            || readable.len() < header_len + cdb_size
            || !readable.read(mem, 0, &mut header)
            || !readable.read(mem, header_len, &mut cdb[..cdb_len])
        {
            return Response::failed(scsi_response::FAILURE);
        }
        if !is_our_lun(&header[..8]) {
            return Response::failed(scsi_response::BAD_TARGET);
        }
        let sense_at = scsi_request::RESPONSE_HEADER_LEN as u64;
        let data_at = sense_at + u64::from(self.sense_size);
        let data_room = writable.len().saturating_sub(data_at);
        let mut r = Response {
            sense_len: 0,
            residual: data_room,
            status: STATUS_GOOD,
            response: scsi_response::OK,
            written: sense_at,
        };
        let reply = self.cdrom.execute(&cdb[..cdb_len], &mut self.reply);
        let (n, sense) = match reply {
            Reply::Data(n) => {
                let n = (n as u64).min(data_room);
                // `n` is at most REPLY_MAX.
                if !writable.write(mem, data_at, &self.reply[..n as usize]) {
                    return Response::failed(scsi_response::FAILURE);
                }
                (n, None)
            }
            Reply::Medium { len, .. } if len > data_room => return Response::failed(scsi_response::OVERRUN),
            Reply::Medium { offset, len } => match self.read_medium(mem, offset, len, data_at) {
                Ok(()) => (len, None),
                Err(Some(sense)) => (0, Some(sense)),
                Err(None) => return Response::failed(scsi_response::FAILURE),
            },
            Reply::Check(sense) => (0, Some(sense)),
        };
        r.residual = data_room - n;
        if n > 0 {
            r.written = data_at + n;
        }
        let writable = self.chain.writable();
        if let Some(sense) = sense {
            let fixed = sense.fixed();
            let room = writable.len() - sense_at;
            let len = (fixed.len() as u64).min(u64::from(self.sense_size)).min(room) as usize;
            if !writable.write(mem, sense_at, &fixed[..len]) {
                return Response::failed(scsi_response::FAILURE);
            }
            r.status = STATUS_CHECK_CONDITION;
            r.sense_len = len as u32;
            r.written = sense_at + len as u64;
        }
        r
    }

    /// Copies `len` bytes of the medium at `offset` to the data-in bytes at `data_at`, a chunk
    /// at a time. Err(Some(sense)): the backend failed; Err(None): guest memory did.
    fn read_medium(
        &mut self,
        mem: &mut dyn GuestMemory,
        offset: u64,
        len: u64,
        data_at: u64,
    ) -> Result<(), Option<Sense>> {
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            let buf = &mut self.buf[..n];
            self.backend.read(offset + done, buf).map_err(|_| Some(Sense::READ_ERROR))?;
            if !self.chain.writable().write(mem, data_at + done, buf) {
                return Err(None);
            }
            done += n as u64;
        }
        self.stats.bytes_read += len;
        Ok(())
    }

    /// Serves the command chain at `head` and returns it.
    fn complete_command(
        &mut self,
        queue: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
        head: u16,
    ) -> Result<(), QueueError> {
        self.chain.gather(queue, mem, head)?;
        self.stats.commands += 1;
        if self.chain.writable().len() < scsi_request::RESPONSE_HEADER_LEN as u64 {
            self.stats.failures += 1;
            return queue.push_used(mem, head, 0);
        }
        let r = self.command(mem);
        if r.response != scsi_response::OK {
            self.stats.failures += 1;
        }
        if r.status == STATUS_CHECK_CONDITION {
            self.stats.check_conditions += 1;
        }
        let mut header = [0u8; scsi_request::RESPONSE_HEADER_LEN];
        header[scsi_request::RESPONSE_SENSE_LEN..][..4].copy_from_slice(&r.sense_len.to_le_bytes());
        let residual = u32::try_from(r.residual).unwrap_or(u32::MAX);
        header[scsi_request::RESPONSE_RESIDUAL..][..4].copy_from_slice(&residual.to_le_bytes());
        header[scsi_request::RESPONSE_STATUS] = r.status;
        header[scsi_request::RESPONSE_RESPONSE] = r.response;
        if !self.chain.writable().write(mem, 0, &header) {
            return Err(QueueError::Memory);
        }
        queue.push_used(mem, head, u32::try_from(r.written).unwrap_or(u32::MAX))
    }

    /// Serves the control chain at `head` (5.6.6.2) and returns it.
    fn complete_control(
        &mut self,
        queue: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
        head: u16,
    ) -> Result<(), QueueError> {
        self.chain.gather(queue, mem, head)?;
        let readable = self.chain.readable();
        let writable = self.chain.writable();
        let mut req = [0u8; scsi_request::TMF_LEN];
        let kind = if self.chain.misordered() || !readable.read(mem, 0, &mut req[..4]) {
            None
        } else {
            Some(u32::from_le_bytes([req[0], req[1], req[2], req[3]]))
        };
        let (reply, len): ([u8; scsi_request::AN_RESPONSE_LEN], usize) = match kind {
            Some(scsi_request::T_TMF) if readable.read(mem, 0, &mut req) && !writable.is_empty() => {
                let subtype = u32::from_le_bytes([req[4], req[5], req[6], req[7]]);
                let response = if !is_our_lun(&req[8..16]) {
                    scsi_response::BAD_TARGET
                } else {
                    Self::task_management(&mut self.cdrom, subtype)
                };
                ([response, 0, 0, 0, 0], 1)
            }
            Some(scsi_request::T_AN_QUERY | scsi_request::T_AN_SUBSCRIBE)
                if readable.read(mem, 0, &mut req[..scsi_request::AN_LEN])
                    && writable.len() >= scsi_request::AN_RESPONSE_LEN as u64 =>
            {
                let response = if is_our_lun(&req[4..12]) { scsi_response::OK } else { scsi_response::BAD_TARGET };
                // event_actual 0: no asynchronous event is supported.
                ([0, 0, 0, 0, response], scsi_request::AN_RESPONSE_LEN)
            }
            _ => ([0; scsi_request::AN_RESPONSE_LEN], 0),
        };
        if !writable.write(mem, 0, &reply[..len]) {
            return Err(QueueError::Memory);
        }
        queue.push_used(mem, head, len as u32)
    }

    /// A task management function on LUN 0 (5.6.6.2.1; SAM-5 7): nothing is ever in flight.
    fn task_management(cdrom: &mut CdRom, subtype: u32) -> u8 {
        match subtype {
            scsi_request::T_TMF_I_T_NEXUS_RESET | scsi_request::T_TMF_LOGICAL_UNIT_RESET => {
                cdrom.reset();
                scsi_response::FUNCTION_COMPLETE
            }
            scsi_request::T_TMF_ABORT_TASK
            | scsi_request::T_TMF_ABORT_TASK_SET
            | scsi_request::T_TMF_CLEAR_TASK_SET
            | scsi_request::T_TMF_QUERY_TASK
            | scsi_request::T_TMF_QUERY_TASK_SET => scsi_response::FUNCTION_COMPLETE,
            // CLEAR ACA without ACA support, and anything unknown.
            _ => scsi_response::FUNCTION_REJECTED,
        }
    }
}

impl<B: BlockBackend> VirtioDevice for VirtioScsi<B> {
    fn device_id(&self) -> u16 {
        device_id::SCSI
    }

    fn num_queues(&self) -> u16 {
        3
    }

    fn max_queue_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn pci_class(&self) -> u32 {
        PCI_CLASS
    }

    fn config_len(&self) -> u32 {
        scsi_config::LEN as u32
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::read_config_bytes(&self.config_bytes(), offset, data);
    }

    /// Only `sense_size` and `cdb_size` are writable (5.6.4); bytes elsewhere are ignored.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let mut c = self.config_bytes();
        for (i, &value) in data.iter().enumerate() {
            if let Some(byte) = offset.checked_add(i as u64).and_then(|at| c.get_mut(at as usize)) {
                *byte = value;
            }
        }
        let field = |at: usize| u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]);
        self.sense_size = field(scsi_config::SENSE_SIZE);
        self.cdb_size = field(scsi_config::CDB_SIZE);
    }

    fn reset(&mut self) {
        self.sense_size = scsi_config::DEFAULT_SENSE_SIZE;
        self.cdb_size = scsi_config::DEFAULT_CDB_SIZE;
        self.cdrom.reset();
    }

    fn process_queue(
        &mut self,
        index: u16,
        queue: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
    ) -> Result<(), QueueError> {
        if index == scsi_queue::EVENT {
            return Ok(());
        }
        for _ in 0..queue.size() {
            let Some(head) = queue.pop(mem)? else { break };
            match index {
                scsi_queue::CONTROL => self.complete_control(queue, mem, head)?,
                _ => self.complete_command(queue, mem, head)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
