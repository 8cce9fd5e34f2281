//! The guest's network card: a virtio-net device (virtio 1.2, 5.1) with one receive queue (0)
//! and one transmit queue (1), [`QUEUE_SIZE`] entries each, and no control queue. It does not own
//! a network: every frame the guest transmits goes to a [`FrameSink`] the monitor supplies, and
//! the monitor hands the guest a frame with [`VirtioPci::deliver`] (this file adds it to the
//! transport of a `VirtioNet`).
//!
//! Offered (5.1.3), with VERSION_1 from the transport:
//! - VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS: the configuration (5.1.4) is `mac` (given at
//!   creation) and `status`, always VIRTIO_NET_S_LINK_UP: 8 bytes, read-only (a legacy driver's
//!   write to `mac` is ignored; with MAC offered, Linux writes none);
//! - VIRTIO_F_EVENT_IDX (2.7.7, 2.7.10): the guest interrupts the device only when the device has
//!   taken every buffer, and asks for an interrupt only at the used index it names;
//! - VIRTIO_NET_F_MRG_RXBUF: a received frame may span several receive buffers, so Linux posts
//!   small (about MTU-sized) buffers instead of 1526-byte ones and still receives frames of any
//!   size up to [`MAX_FRAME_LEN`];
//! - VIRTIO_NET_F_CSUM and VIRTIO_NET_F_GUEST_CSUM: checksum offload, below.
//!
//! The header (`net/header.rs`) is 12 bytes, or 10 for a legacy driver without MRG_RXBUF
//! (5.1.6.1).
//!
//! Transmit (5.1.6.2), on a notification of queue 1: each chain is one frame, read as one byte
//! stream however the driver split it (`crate::chain`: header and frame together or apart). A
//! frame is handed to the sink, copied out of guest memory into one [`MAX_FRAME_LEN`]-byte buffer
//! allocated at creation, with its [`Checksum`] state. Dropped and counted instead, the chain
//! returned all the same: a chain with a device-writable descriptor (a transmit buffer is
//! device-readable only), a frame shorter than [`MIN_FRAME_LEN`] or longer than
//! [`MAX_FRAME_LEN`], a header asking for segmentation offload (none offered), a partial
//! checksum whose field is not inside the frame, a buffer outside RAM. A chain is returned with 0
//! bytes written.
//!
//! Receive (5.1.6.3, 5.1.6.4): the frame goes into the buffers the driver posted on queue 0,
//! header first. Without MRG_RXBUF, into the next buffer alone (`num_buffers` 1): if it is too
//! small the frame is dropped ([`RxDrop::TooBig`]) and the buffer stays posted for the next one.
//! With MRG_RXBUF, into as many buffers as it takes, each filled before the next
//! (`num_buffers` says how many); they are returned together. The device looks at the buffers
//! before taking any, so a frame that finds too few ([`RxDrop::NoBuffers`]: the monitor may keep
//! it and try again when the driver notifies queue 0, [`VirtioNet::take_receive_notified`])
//! takes nothing. A buffer the driver got wrong (a device-readable descriptor, or with MRG_RXBUF
//! less than a header) and every buffer before it in this frame, or a buffer outside RAM and
//! those before it, are returned with 0 bytes and the frame dropped ([`RxDrop::BadBuffer`]), so
//! the queue goes on.
//!
//! Checksum offload (5.1.6.2, 5.1.6.4): a transmitted frame with NEEDS_CSUM (VIRTIO_NET_F_CSUM
//! negotiated) reaches the sink as [`Checksum::Partial`], its bytes untouched. Received by a
//! guest that negotiated VIRTIO_NET_F_GUEST_CSUM, it keeps NEEDS_CSUM and its offsets (and
//! [`Checksum::Verified`] becomes DATA_VALID): nothing is checksummed anywhere, which is what
//! makes guest-to-guest traffic cheap. A guest that did not gets the checksum completed in
//! software (`net/checksum.rs`, RFC 1071) and `flags` 0.
//!
//! The guest is hostile: every chain is walked through [`SplitQueue`]'s checks (a loop, a bad
//! index or an indirect descriptor is a protocol error: DEVICE_NEEDS_RESET, as for every device
//! here, and so is receive buffers holding more descriptors between them than the queue has);
//! nothing is sized by the guest (the two frame buffers and the descriptor lists are allocated
//! at creation); one notification takes at most a queue's worth of chains, one frame at most a
//! queue's worth of buffers and descriptors.
//!
//! Does not: segmentation offload (GSO, TSO, UFO, USO) either way, multiqueue, the control queue
//! (promiscuous and multicast filtering, VLAN filtering, MAC changes, announce), VIRTIO_NET_F_MTU,
//! speed and duplex, hash reporting or RSS, a link that goes down, or queue frames itself: a
//! frame the guest cannot take now is the monitor's to keep or drop.

mod checksum;
mod header;

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use keel_devices::guest_memory::GuestMemory;
use keel_virtio_spec::{features, net_config, net_hdr, net_queue};

pub use checksum::{complete_checksum, ones_complement_sum, partial_checksum};
pub use header::{header_len, Checksum};

use crate::chain::Chain;
use crate::pci::VirtioPci;
use crate::queue::{Descriptor, QueueError, SplitQueue};
use crate::{device_id, VirtioDevice};

/// Each queue's maximum size.
pub const QUEUE_SIZE: u16 = 256;
/// The shortest frame: an Ethernet header.
pub const MIN_FRAME_LEN: usize = 14;
/// The longest frame, either way: 64 KiB and an Ethernet header, above the 65,535 + 14 bytes of
/// the largest MTU Linux lets a virtio-net guest set without VIRTIO_NET_F_MTU.
pub const MAX_FRAME_LEN: usize = 65_550;
/// The PCI class reported: network controller, Ethernet.
pub const PCI_CLASS: u32 = 0x02_00_00;

/// The receive and transmit queues.
pub const RECEIVE: u16 = net_queue::RECEIVE;
pub const TRANSMIT: u16 = net_queue::TRANSMIT;

/// Where the guest's frames go.
pub trait FrameSink {
    /// A frame the guest transmitted: its checksum state (never [`Checksum::Verified`]) and its
    /// bytes, Ethernet header first, [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`] of them (a
    /// [`Checksum::Partial`] field inside). Already copied out of guest memory.
    fn send(&mut self, checksum: Checksum, frame: &[u8]);
}

/// What became of frames, for the monitor's statistics and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames handed to the sink, and their bytes (without the virtio-net header).
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Transmit chains dropped: malformed chain, frame too short or too long, segmentation
    /// asked for, a partial checksum outside the frame, a buffer outside RAM.
    pub tx_drops: u64,
    /// Frames written into the guest's receive buffers, and their bytes.
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames the guest did not get: too big for its buffers, malformed, a bad buffer, or the
    /// device not ready (driver not loaded, needs reset).
    pub rx_drops: u64,
    /// Frames that found too few receive buffers (the caller kept or dropped them).
    pub rx_no_buffers: u64,
}

/// A frame the guest received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The receive buffers it took (`num_buffers`).
    pub buffers: u16,
    /// The driver wants an interrupt for it: the queue bit of the ISR is set, so INTx is
    /// asserted (the monitor re-reads the PCI host's interrupt levels).
    pub interrupt: bool,
}

/// Why a frame did not reach the guest. Whatever the reason, the INTx level may have changed (a
/// bad buffer returned, or DEVICE_NEEDS_RESET's configuration interrupt): the monitor re-reads
/// it after every delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxDrop {
    /// The driver has not set DRIVER_OK or not enabled the receive queue, or the device is
    /// FAILED or needs a reset (also when this frame's buffers broke the queue protocol).
    NotReady,
    /// Too few receive buffers posted: nothing was taken; worth trying again after the driver
    /// notifies the receive queue.
    NoBuffers,
    /// The frame does not fit the next receive buffer (without MRG_RXBUF), or all the buffers
    /// the ring can hold (with it). Nothing was taken.
    TooBig,
    /// Shorter than [`MIN_FRAME_LEN`], longer than [`MAX_FRAME_LEN`], or a partial checksum
    /// whose field is not inside the frame.
    Malformed,
    /// A receive buffer the driver got wrong (device-readable, smaller than a header with
    /// MRG_RXBUF, outside RAM): returned empty with the ones before it.
    BadBuffer,
}

/// One receive buffer planned for a frame: its chain head and where its descriptors are in the
/// device's list.
#[derive(Debug, Clone)]
struct RxBuffer {
    head: u16,
    descs: Range<usize>,
}

/// Where a frame goes, decided before anything is taken.
enum RxPlan {
    /// The first `n` buffers hold it.
    Fits(u16),
    /// The `n`th buffer (1-based) is unusable: return it and those before it, empty.
    Unusable(u16),
    /// No room now, or never.
    NoBuffers,
    TooBig,
}

/// A virtio-net device sending into `S`.
#[derive(Debug)]
pub struct VirtioNet<S: FrameSink> {
    sink: S,
    mac: [u8; 6],
    /// The features in force (from the transport at DRIVER_OK; 0 after a reset).
    negotiated: u64,
    tx_chain: Chain,
    tx_frame: Vec<u8>,
    /// A received frame as the guest will see it: the header, then the frame.
    rx_frame: Vec<u8>,
    /// The descriptors of the receive buffers planned for a frame, and the buffers.
    rx_descs: Vec<Descriptor>,
    rx_buffers: Vec<RxBuffer>,
    /// Used elements for the receive ring, returned together.
    rx_used: Vec<(u16, u32)>,
    receive_notified: bool,
    stats: NetStats,
}

impl<S: FrameSink> VirtioNet<S> {
    /// A network card with address `mac`, transmitting into `sink`.
    pub fn new(mac: [u8; 6], sink: S) -> Self {
        let queue = usize::from(QUEUE_SIZE);
        Self {
            sink,
            mac,
            negotiated: 0,
            tx_chain: Chain::with_capacity(QUEUE_SIZE),
            tx_frame: vec![0; MAX_FRAME_LEN],
            rx_frame: vec![0; net_hdr::LEN + MAX_FRAME_LEN],
            rx_descs: Vec::with_capacity(queue),
            rx_buffers: Vec::with_capacity(queue),
            rx_used: Vec::with_capacity(queue),
            receive_notified: false,
            stats: NetStats::default(),
        }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The features in force (0 until the driver set DRIVER_OK).
    pub fn negotiated(&self) -> u64 {
        self.negotiated
    }

    /// Whether the driver notified the receive queue since the last call: it posted receive
    /// buffers (with EVENT_IDX, only after the device had taken all of them), so a frame that
    /// found none may be tried again.
    pub fn take_receive_notified(&mut self) -> bool {
        core::mem::take(&mut self.receive_notified)
    }

    fn config_bytes(&self) -> [u8; net_config::LEN] {
        let mut c = [0u8; net_config::LEN];
        c[net_config::MAC..][..6].copy_from_slice(&self.mac);
        c[net_config::STATUS..][..2].copy_from_slice(&net_config::S_LINK_UP.to_le_bytes());
        c
    }

    fn header_len(&self) -> usize {
        header_len(self.negotiated)
    }

    /// Sends the chain at `head` (taken from the transmit queue) to the sink, or drops it.
    fn transmit(&mut self, queue: &SplitQueue, mem: &mut dyn GuestMemory, head: u16) -> Result<(), QueueError> {
        self.tx_chain.gather(queue, mem, head)?;
        match self.read_transmit(mem) {
            Some((checksum, len)) => {
                self.sink.send(checksum, &self.tx_frame[..len]);
                self.stats.tx_frames += 1;
                self.stats.tx_bytes += len as u64;
            }
            None => self.stats.tx_drops += 1,
        }
        Ok(())
    }

    /// Checks the gathered transmit chain and copies its frame into `tx_frame`: the frame's
    /// checksum state and length, or None to drop it.
    fn read_transmit(&mut self, mem: &dyn GuestMemory) -> Option<(Checksum, usize)> {
        // 5.1.6.2: the header and frame are device-readable; nothing is written back.
        if self.tx_chain.has_writable() {
            return None;
        }
        let header_len = self.header_len();
        let stream = self.tx_chain.readable();
        let len = usize::try_from(stream.len().checked_sub(header_len as u64)?).ok()?;
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
            return None;
        }
        let mut raw = [0u8; net_hdr::LEN];
        if !stream.read(mem, 0, &mut raw[..header_len]) {
            return None;
        }
        let offload = self.negotiated & features::NET_CSUM != 0;
        let checksum = header::parse_transmit(&raw[..header_len], offload).ok()?;
        if !checksum.fits(len) || !stream.read(mem, header_len as u64, &mut self.tx_frame[..len]) {
            return None;
        }
        Some((checksum, len))
    }

    /// Writes `frame` into the receive buffers of `rx` (see the module documentation): the
    /// buffers it took, or why it was dropped. The outer error is a broken queue. The caller
    /// publishes the used index and decides the interrupt.
    pub(crate) fn receive(
        &mut self,
        rx: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
        checksum: Checksum,
        frame: &[u8],
    ) -> Result<Result<u16, RxDrop>, QueueError> {
        let result = self.place(rx, mem, checksum, frame);
        match result {
            Ok(Ok(_)) => {
                self.stats.rx_frames += 1;
                self.stats.rx_bytes += frame.len() as u64;
            }
            Ok(Err(RxDrop::NoBuffers)) => self.stats.rx_no_buffers += 1,
            Ok(Err(_)) | Err(_) => self.stats.rx_drops += 1,
        }
        result
    }

    fn place(
        &mut self,
        rx: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
        checksum: Checksum,
        frame: &[u8],
    ) -> Result<Result<u16, RxDrop>, QueueError> {
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame.len()) || !checksum.fits(frame.len()) {
            return Ok(Err(RxDrop::Malformed));
        }
        let header_len = self.header_len();
        let total = header_len + frame.len();
        let buffers = match self.plan(rx, mem, total)? {
            RxPlan::Fits(n) => n,
            RxPlan::Unusable(n) => return self.return_empty(rx, mem, n).map(|()| Err(RxDrop::BadBuffer)),
            RxPlan::NoBuffers => return Ok(Err(RxDrop::NoBuffers)),
            RxPlan::TooBig => return Ok(Err(RxDrop::TooBig)),
        };
        // 5.1.6.4: a driver without GUEST_CSUM gets flags 0 and a complete checksum.
        let guest_csum = self.negotiated & features::NET_GUEST_CSUM != 0;
        let payload = &mut self.rx_frame[header_len..total];
        payload.copy_from_slice(frame);
        let checksum = match checksum {
            Checksum::Partial { start, offset } if !guest_csum => {
                // `fits` was checked: the field is inside.
                complete_checksum(payload, start, offset);
                Checksum::Unverified
            }
            Checksum::Verified if !guest_csum => Checksum::Unverified,
            other => other,
        };
        // 5.1.6.3.2, 5.1.6.4: num_buffers is how many buffers the frame took (1 without
        // MRG_RXBUF); a 10-byte header has no room for it.
        let header = header::receive_header(checksum, buffers);
        self.rx_frame[..header_len].copy_from_slice(&header[..header_len]);
        self.fill(rx, mem, buffers, total)
    }

    /// Decides which of the available receive buffers hold `total` bytes, taking none. Gathers
    /// their descriptors into `rx_descs` (never more than the queue size: more would mean a
    /// descriptor in two chains, or a loop across them).
    fn plan(&mut self, rx: &SplitQueue, mem: &mut dyn GuestMemory, total: usize) -> Result<RxPlan, QueueError> {
        self.rx_descs.clear();
        self.rx_buffers.clear();
        let available = rx.available(mem)?;
        let mergeable = self.negotiated & features::NET_MRG_RXBUF != 0;
        // 5.1.6.3.2: a single buffer unless MRG_RXBUF.
        let most = if mergeable { available } else { available.min(1) };
        let limit = usize::from(rx.size());
        let mut capacity = 0u64;
        for nth in 0..most {
            let head = rx.peek(mem, nth)?;
            let first = self.rx_descs.len();
            let mut readable = false;
            let descs = &mut self.rx_descs;
            rx.for_each_desc(mem, head, |_, desc| {
                if descs.len() == limit {
                    return Err(QueueError::ChainTooLong);
                }
                readable |= !desc.writable;
                descs.push(desc);
                Ok(())
            })?;
            // At most the queue size of descriptors, each below 2^32: no overflow.
            let len: u64 = self.rx_descs[first..].iter().map(|d| u64::from(d.len)).sum();
            self.rx_buffers.push(RxBuffer { head, descs: first..self.rx_descs.len() });
            // 5.1.6.3: receive buffers are device-writable, and with MRG_RXBUF each holds at
            // least a header (5.1.6.3.1).
            if readable || (mergeable && len < net_hdr::LEN as u64) {
                return Ok(RxPlan::Unusable(nth + 1));
            }
            capacity += len;
            if capacity >= total as u64 {
                return Ok(RxPlan::Fits(nth + 1));
            }
        }
        Ok(if available == 0 || (mergeable && available < rx.size()) { RxPlan::NoBuffers } else { RxPlan::TooBig })
    }

    /// Writes `rx_frame[..total]` across the first `buffers` planned buffers, each filled before
    /// the next (5.1.6.4.1), takes them and returns them together.
    fn fill(
        &mut self,
        rx: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
        buffers: u16,
        total: usize,
    ) -> Result<Result<u16, RxDrop>, QueueError> {
        self.rx_used.clear();
        let mut at = 0usize;
        for (index, buffer) in self.rx_buffers[..usize::from(buffers)].iter().enumerate() {
            let mut written = 0usize;
            for desc in &self.rx_descs[buffer.descs.clone()] {
                let n = (desc.len as usize).min(total - at);
                if n == 0 {
                    continue;
                }
                if !mem.write(desc.addr, &self.rx_frame[at..at + n]) {
                    // Outside RAM: this buffer and the ones before it go back empty.
                    return self.return_empty(rx, mem, index as u16 + 1).map(|()| Err(RxDrop::BadBuffer));
                }
                at += n;
                written += n;
            }
            // At most `total`, below 2^17.
            self.rx_used.push((buffer.head, written as u32));
        }
        rx.consume(buffers);
        rx.push_used_all(mem, &self.rx_used)?;
        Ok(Ok(buffers))
    }

    /// Takes the first `count` planned buffers and returns them with nothing written.
    fn return_empty(&mut self, rx: &mut SplitQueue, mem: &mut dyn GuestMemory, count: u16) -> Result<(), QueueError> {
        self.rx_used.clear();
        self.rx_used.extend(self.rx_buffers[..usize::from(count)].iter().map(|b| (b.head, 0)));
        rx.consume(count);
        rx.push_used_all(mem, &self.rx_used)
    }
}

impl<S: FrameSink> VirtioDevice for VirtioNet<S> {
    fn device_id(&self) -> u16 {
        device_id::NET
    }

    fn features(&self) -> u64 {
        features::NET_MAC
            | features::NET_STATUS
            | features::NET_MRG_RXBUF
            | features::NET_CSUM
            | features::NET_GUEST_CSUM
            | features::RING_EVENT_IDX
    }

    fn num_queues(&self) -> u16 {
        2
    }

    fn max_queue_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn pci_class(&self) -> u32 {
        PCI_CLASS
    }

    fn config_len(&self) -> u32 {
        net_config::LEN as u32
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::read_config_bytes(&self.config_bytes(), offset, data);
    }

    fn reset(&mut self) {
        self.negotiated = 0;
        self.receive_notified = false;
    }

    fn activate(&mut self, negotiated: u64) {
        self.negotiated = negotiated;
    }

    fn process_queue(
        &mut self,
        index: u16,
        queue: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
    ) -> Result<(), QueueError> {
        match index {
            // Buffers posted: the device takes them when a frame arrives.
            RECEIVE => self.receive_notified = true,
            TRANSMIT => {
                for _ in 0..queue.size() {
                    let Some(head) = queue.pop(mem)? else { break };
                    self.transmit(queue, mem, head)?;
                    queue.push_used(mem, head, 0)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl<S: FrameSink> VirtioPci<VirtioNet<S>> {
    /// Gives the guest `frame` (Ethernet header first) with its checksum state: written into
    /// the receive buffers and returned to the driver, the interrupt raised if it wants one. An
    /// error says why it was not (see [`RxDrop`]); only [`RxDrop::NoBuffers`] is worth a retry.
    pub fn deliver(
        &mut self,
        mem: &mut dyn GuestMemory,
        checksum: Checksum,
        frame: &[u8],
    ) -> Result<Delivered, RxDrop> {
        let outcome = self.on_queue(RECEIVE, mem, |net, rx, mem| net.receive(rx, mem, checksum, frame));
        match outcome {
            Some((Ok(Ok(buffers)), interrupt)) => Ok(Delivered { buffers, interrupt }),
            Some((Ok(Err(drop)), _)) => Err(drop),
            // A broken queue (counted by `receive`): the device now needs a reset.
            Some((Err(_), _)) => Err(RxDrop::NotReady),
            None => {
                self.device_mut().stats.rx_drops += 1;
                Err(RxDrop::NotReady)
            }
        }
    }
}

#[cfg(test)]
mod pci_tests;
#[cfg(test)]
mod rx_tests;
#[cfg(test)]
mod tests;
