//! One port's register work: stopping and starting its command engine and FIS receive (AHCI
//! 1.3.1 10.3), pointing it at its memory, waiting for the link and the device, COMRESET (10.4.2),
//! issuing a command in slot 0 and waiting for PxCI or an error (5.3, 6.2), and recovering after
//! an error or a timeout (6.2.2.1).
//!
//! What it does not do: NCQ, several slots, port multipliers, hot-plug or power management; or
//! decide what a port is for (the HBA's `hba.rs` does).

use keel_block::BlockError;
use keel_drv_hal::{Dma, HwError, Platform, Registers};

use crate::command_list::{self, COMMAND_LIST, COMMAND_TABLE, PRDT, PRDT_ENTRY_BYTES, RECEIVED_FIS};
use crate::fis;
use crate::regs::{self, port_register};

/// How long PxCMD.CR and FR may take to clear. See: AHCI 1.3.1 10.1.2
const STOP_TIMEOUT_NS: u64 = 500_000_000;
/// How long a device may stay busy after its link comes up (a disk spinning up).
pub const DEVICE_READY_TIMEOUT_NS: u64 = 10_000_000_000;
/// How long COMRESET is held (at least 1 ms) and how long the link may take after it.
/// See: AHCI 1.3.1 10.4.2
const COMRESET_HOLD_NS: u64 = 1_000_000;
const LINK_TIMEOUT_NS: u64 = 1_000_000_000;

/// A port's register `register`, read.
pub fn read<R: Registers>(regs: &mut R, port: usize, register: usize) -> u32 {
    regs.read32(port_register(port, register))
}

pub fn write<R: Registers>(regs: &mut R, port: usize, register: usize, value: u32) {
    regs.write32(port_register(port, register), value)
}

fn set_command_bits<R: Registers>(regs: &mut R, port: usize, set: u32, clear: u32) {
    let command = read(regs, port, regs::port::CMD);
    write(regs, port, regs::port::CMD, (command & !clear) | set);
}

/// Clear PxCMD.ST and wait for CR, then (with `fis_too`) clear FRE and wait for FR.
/// False when the engine would not stop. See: AHCI 1.3.1 10.1.2, 10.3.2
pub fn stop<R: Registers, P: Platform>(regs: &mut R, platform: &mut P, port: usize, fis_too: bool) -> bool {
    set_command_bits(regs, port, 0, regs::CMD_START);
    let stopped =
        crate::poll(platform, STOP_TIMEOUT_NS, |_| read(regs, port, regs::port::CMD) & regs::CMD_LIST_RUNNING == 0);
    if !stopped || !fis_too {
        return stopped;
    }
    set_command_bits(regs, port, 0, regs::CMD_FIS_RECEIVE);
    crate::poll(platform, STOP_TIMEOUT_NS, |_| read(regs, port, regs::port::CMD) & regs::CMD_FIS_RUNNING == 0)
}

/// Point the stopped port at its memory (command list and received-FIS area), clear its
/// errors and interrupts, enable FIS receive, and spin its device up. See: AHCI 1.3.1 10.1.2
pub fn attach<R: Registers, B: Dma>(regs: &mut R, port: usize, memory: &B) {
    let list = memory.phys() + COMMAND_LIST as u64;
    let received = memory.phys() + RECEIVED_FIS as u64;
    write(regs, port, regs::port::CLB, list as u32);
    write(regs, port, regs::port::CLBU, (list >> 32) as u32);
    write(regs, port, regs::port::FB, received as u32);
    write(regs, port, regs::port::FBU, (received >> 32) as u32);
    write(regs, port, regs::port::SERR, u32::MAX);
    write(regs, port, regs::port::IS, u32::MAX);
    set_command_bits(regs, port, regs::CMD_FIS_RECEIVE | regs::CMD_SPIN_UP | regs::CMD_POWER_ON, 0);
}

/// PxSSTS.DET.
pub fn detection<R: Registers>(regs: &mut R, port: usize) -> u32 {
    read(regs, port, regs::port::SSTS) & 0xf
}

/// Wait for the device's BSY and DRQ to clear (its first D2H FIS arrived). See: AHCI 1.3.1 10.1.2
pub fn wait_device_ready<R: Registers, P: Platform>(
    regs: &mut R,
    platform: &mut P,
    port: usize,
    timeout_ns: u64,
) -> bool {
    crate::poll(platform, timeout_ns, |_| {
        let status = read(regs, port, regs::port::TFD);
        status != u32::MAX && status & (regs::TFD_BSY | regs::TFD_DRQ) == 0
    })
}

/// Enable the port's interrupts and start its command engine. See: AHCI 1.3.1 10.3.1
pub fn start<R: Registers>(regs: &mut R, port: usize) {
    write(regs, port, regs::port::SERR, u32::MAX);
    write(regs, port, regs::port::IS, u32::MAX);
    write(regs, port, regs::port::IE, regs::IE_WANTED);
    set_command_bits(regs, port, regs::CMD_START, 0);
}

/// COMRESET: hold PxSCTL.DET at 1 for a millisecond, release it, wait for the link and then
/// the device. See: AHCI 1.3.1 10.4.2
fn comreset<R: Registers, P: Platform>(regs: &mut R, platform: &mut P, port: usize) -> bool {
    let control = read(regs, port, regs::port::SCTL) & !0xf;
    write(regs, port, regs::port::SCTL, control | 1);
    crate::poll(platform, COMRESET_HOLD_NS, |_| false);
    write(regs, port, regs::port::SCTL, control);
    let linked = crate::poll(platform, LINK_TIMEOUT_NS, |_| detection(regs, port) == regs::DET_PRESENT);
    write(regs, port, regs::port::SERR, u32::MAX);
    linked && wait_device_ready(regs, platform, port, DEVICE_READY_TIMEOUT_NS)
}

/// Bring the port back after a failed or timed-out command: stop the engine (which clears
/// PxCI), clear errors and interrupts, COMRESET if the device is still busy, start again.
/// False when the port cannot be brought back. See: AHCI 1.3.1 6.2.2.1
pub fn recover<R: Registers, P: Platform>(regs: &mut R, platform: &mut P, port: usize) -> bool {
    if !stop(regs, platform, port, false) {
        return false;
    }
    write(regs, port, regs::port::SERR, u32::MAX);
    write(regs, port, regs::port::IS, u32::MAX);
    let status = read(regs, port, regs::port::TFD);
    if status == u32::MAX {
        return false;
    }
    if status & (regs::TFD_BSY | regs::TFD_DRQ) != 0 && !comreset(regs, platform, port) {
        return false;
    }
    start(regs, port);
    true
}

/// An ATA command for slot 0: the command, its LBA and count, and the data it moves.
pub struct AtaCommand<'a> {
    pub command: u8,
    pub lba: u64,
    pub count: u16,
    /// The data's PRDT (physical address, bytes), empty for none.
    pub data: &'a [(u64, usize)],
    /// Data goes to the device.
    pub write: bool,
}

/// What issuing a command ended in.
pub enum Outcome {
    Done,
    /// An error bit in PxIS or PxTFD: `PxIS error bits >> 24` in bits 23:16, PxTFD's error
    /// and status registers in 15:0.
    Failed(u32),
    TimedOut,
    /// The registers read all ones.
    Vanished,
}

/// Write `command` into slot 0 of the port's memory, issue it and wait for PxCI to clear or an
/// error, for at most `timeout_ns`. See: AHCI 1.3.1 5.5 (issuing), 5.6 (completion), 6.2.2
pub fn issue<R: Registers, P: Platform, B: Dma>(
    regs: &mut R,
    platform: &mut P,
    port: usize,
    memory: &mut B,
    command: &AtaCommand<'_>,
    timeout_ns: u64,
) -> Result<Outcome, HwError> {
    let table = memory.phys() + COMMAND_TABLE as u64;
    memory.write(COMMAND_TABLE, &fis::register_h2d(command.command, command.lba, command.count))?;
    for (index, &(address, bytes)) in command.data.iter().enumerate() {
        memory.write(COMMAND_TABLE + PRDT + index * PRDT_ENTRY_BYTES, &command_list::prdt_entry(address, bytes))?;
    }
    let entries = u16::try_from(command.data.len()).map_err(|_| HwError::OutOfRange)?;
    memory.write(COMMAND_LIST, &command_list::command_header(command.write, entries, table))?;
    write(regs, port, regs::port::IS, u32::MAX);
    write(regs, port, regs::port::CI, 1);
    let mut vanished = false;
    let finished = crate::poll(platform, timeout_ns, |_| {
        let issued = read(regs, port, regs::port::CI);
        let status = read(regs, port, regs::port::IS);
        vanished = issued == u32::MAX;
        vanished || issued & 1 == 0 || status & regs::IS_ERRORS != 0
    });
    let status = read(regs, port, regs::port::IS);
    let task_file = read(regs, port, regs::port::TFD);
    write(regs, port, regs::port::IS, status);
    regs.write32(regs::IS, 1 << port);
    if vanished || task_file == u32::MAX {
        return Ok(Outcome::Vanished);
    }
    if !finished {
        return Ok(Outcome::TimedOut);
    }
    let errors = status & regs::IS_ERRORS;
    if errors != 0 || task_file & regs::TFD_ERR != 0 {
        return Ok(Outcome::Failed((errors >> 24) << 16 | (task_file & 0xffff)));
    }
    Ok(Outcome::Done)
}

/// The outcome as a block request's result, recovering the port after a failure: a port that
/// cannot be recovered is gone (`false` in the second field).
pub fn settle<R: Registers, P: Platform>(
    regs: &mut R,
    platform: &mut P,
    port: usize,
    outcome: Outcome,
) -> (Result<(), BlockError>, bool) {
    let error = match outcome {
        Outcome::Done => return (Ok(()), true),
        Outcome::Vanished => return (Err(BlockError::Gone), false),
        Outcome::Failed(code) => BlockError::Device(code),
        Outcome::TimedOut => BlockError::Timeout,
    };
    let alive = recover(regs, platform, port);
    (Err(error), alive)
}
