//! One submission/completion queue pair in DMA memory (the admin pair, or the I/O pair): it
//! places commands at the submission tail and rings the tail doorbell, and takes completions at
//! the completion head while their Phase Tag matches the pass it expects, ringing the head
//! doorbell. See: NVMe 1.4 4.1 (queue mechanics), 4.6 (Phase Tag), 7.2 (processing).
//!
//! What it does not do: wait (the controller waits, with its timeout), or track more than the
//! positions; the driver keeps one command outstanding, so a queue of two or more entries never
//! fills.

use keel_drv_hal::{HwError, Platform, Registers};

use crate::command::{Command, Completion, COMMAND_BYTES, COMPLETION_BYTES};
use crate::page_buffer::PageBuffer;
use crate::regs::Capabilities;

pub struct QueuePair<B> {
    /// The queue identifier: 0 for the admin pair.
    pub id: u16,
    /// Entries in each queue (at least 2).
    depth: u16,
    submissions: PageBuffer<B>,
    completions: PageBuffer<B>,
    submission_tail: u16,
    completion_head: u16,
    /// The Phase Tag a new completion carries on this pass through the queue: 1 on the first
    /// pass (the queue starts zeroed), flipped at each wrap.
    expected_phase: bool,
    submission_doorbell: usize,
    completion_doorbell: usize,
}

impl<B: keel_drv_hal::Dma> QueuePair<B> {
    /// A pair of `depth` entries each, zeroed, with its doorbells from `caps`.
    pub fn new<P: Platform<Buffer = B>>(
        platform: &mut P,
        caps: &Capabilities,
        page_size: usize,
        id: u16,
        depth: u16,
    ) -> Result<Self, HwError> {
        let depth = depth.max(2);
        let submissions = PageBuffer::new(platform, depth as usize * COMMAND_BYTES, page_size)?;
        let completions = PageBuffer::new(platform, depth as usize * COMPLETION_BYTES, page_size)?;
        Ok(QueuePair {
            id,
            depth,
            submissions,
            completions,
            submission_tail: 0,
            completion_head: 0,
            expected_phase: true,
            submission_doorbell: caps.submission_doorbell(id),
            completion_doorbell: caps.completion_doorbell(id),
        })
    }

    pub fn depth(&self) -> u16 {
        self.depth
    }

    pub fn submission_phys(&self) -> u64 {
        self.submissions.phys()
    }

    pub fn completion_phys(&self) -> u64 {
        self.completions.phys()
    }

    /// Back to the state after creation (the controller was reset: both queues are empty and
    /// it starts again at entry 0 with phase 1). See: NVMe 1.4 7.3.1
    pub fn restart(&mut self) -> Result<(), HwError> {
        self.submission_tail = 0;
        self.completion_head = 0;
        self.expected_phase = true;
        let zeros = [0u8; COMPLETION_BYTES];
        for entry in 0..self.depth as usize {
            self.completions.write(entry * COMPLETION_BYTES, &zeros)?;
        }
        Ok(())
    }

    /// Place `command` at the tail and ring the doorbell. See: NVMe 1.4 4.1
    pub fn submit(&mut self, regs: &mut impl Registers, command: &Command) -> Result<(), HwError> {
        let slot = self.submission_tail as usize * COMMAND_BYTES;
        self.submissions.write(slot, &command.to_bytes())?;
        self.submission_tail = (self.submission_tail + 1) % self.depth;
        regs.write32(self.submission_doorbell, self.submission_tail as u32);
        Ok(())
    }

    /// The next completion, if the controller has posted one: its Phase Tag is read first, and
    /// only a matching tag makes the rest of the entry valid. The head doorbell frees the slot.
    /// See: NVMe 1.4 4.6, 7.2.6
    pub fn take_completion(&mut self, regs: &mut impl Registers) -> Option<Completion> {
        let slot = self.completion_head as usize * COMPLETION_BYTES;
        let dw3 = self.completions.read_u32(slot + 12);
        if (dw3 & 1 << 16 != 0) != self.expected_phase {
            return None;
        }
        let dw0 = self.completions.read_u32(slot);
        let dw2 = self.completions.read_u32(slot + 8);
        self.completion_head += 1;
        if self.completion_head == self.depth {
            self.completion_head = 0;
            self.expected_phase = !self.expected_phase;
        }
        regs.write32(self.completion_doorbell, self.completion_head as u32);
        Some(Completion::decode(dw0, dw2, dw3))
    }
}
