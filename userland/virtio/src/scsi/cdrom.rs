//! A read-only SCSI CD/DVD-ROM logical unit (MMC-6 over SPC-4), as pure command logic: a CDB in,
//! a [`Reply`] out (data built in a caller's 256-byte buffer, a range of the medium to transfer,
//! or CHECK CONDITION with its sense). No virtio, no guest memory, no I/O: the transport
//! (`super`) moves the bytes.
//!
//! The medium is an image of 2048-byte logical blocks (a partial last block is not visible); an
//! empty image is "no medium" (NOT READY, MEDIUM NOT PRESENT). One data track, one session,
//! always a complete disc. Commands, with what Linux's SCSI midlayer, sr and cdrom drivers send
//! at probe and mount:
//!
//! | opcode | command | reply |
//! |---|---|---|
//! | 0x00 | TEST UNIT READY (SPC-4 6.47) | GOOD, or no medium |
//! | 0x03 | REQUEST SENSE (SPC-4 6.39) | fixed-format sense: no sense, or no medium |
//! | 0x12 | INQUIRY (SPC-4 6.6) | standard data (device type 05h, removable, SPC-3); VPD pages 00h, 80h (serial), 83h (a T10 vendor ID designator); other pages INVALID FIELD IN CDB |
//! | 0x1A, 0x5A | MODE SENSE(6), (10) (SPC-4 6.11, 6.12) | page 2Ah (MM capabilities, MMC-3 6.3.11, as Linux sr reads it) alone or as "all pages"; no block descriptors; saved values refused |
//! | 0x1B | START STOP UNIT (MMC-6 6.39) | GOOD; an eject while removal is prevented is MEDIUM REMOVAL PREVENTED (the medium stays) |
//! | 0x1E | PREVENT ALLOW MEDIUM REMOVAL (MMC-6 6.10) | GOOD, remembered |
//! | 0x25, 0x9E/10h | READ CAPACITY(10), (16) (SBC-3 5.15, 5.16) | last LBA, 2048 |
//! | 0x28, 0xA8, 0x88 | READ(10), (12), (16) (MMC-6 6.15, 6.16; SBC-3 5.8) | the blocks; LBA OUT OF RANGE past the end; more than [`MAX_TRANSFER_BLOCKS`]: INVALID FIELD IN CDB |
//! | 0x2A, 0xAA, 0x8A | WRITE(10), (12), (16) | DATA PROTECT, WRITE PROTECTED |
//! | 0x43 | READ TOC/PMA/ATIP (MMC-6 6.26) | formats 0 (TOC: track 1 and the lead-out) and 1 (session info), LBA or MSF; the old format field in byte 9 too |
//! | 0x46 | GET CONFIGURATION (MMC-6 6.6) | profiles DVD-ROM/CD-ROM (current by image size), Core, Removable Medium, Random Readable, CD Read; RT 0, 1, 2 |
//! | 0x4A | GET EVENT STATUS NOTIFICATION (MMC-6 6.7) | polled only; media class: "new media" once after creation, then "no change" |
//! | 0x51 | READ DISC INFORMATION (MMC-6 6.22) | standard disc information: complete, one session, one track |
//! | 0xA0 | REPORT LUNS (SPC-4 6.33) | LUN 0 |
//! | 0xBD | MECHANISM STATUS (MMC-6 6.11) | idle, door closed, no changer |
//! | other | | ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE |
//!
//! Every reply is cut to the CDB's allocation length and to [`REPLY_MAX`]. Numbers in CDBs and
//! replies are big-endian (SPC-4 3.5.2).
//!
//! Does not: eject or change media, play audio, report unit attentions, or implement READ CD,
//! READ TRACK INFORMATION, MODE SELECT, SET CD SPEED or any write.

use super::sense::Sense;

/// The logical block size (MMC-6 4.2.2.1: 2048 bytes for CD/DVD data).
pub const BLOCK: u64 = 2048;
/// The largest reply a command builds (REPORT LUNS, GET CONFIGURATION and INQUIRY fit).
pub const REPLY_MAX: usize = 256;
/// The most blocks one READ may transfer (4 MiB; the transport advertises it as max_sectors).
pub const MAX_TRANSFER_BLOCKS: u64 = 2048;
/// Above this many blocks (about 780 MiB, more than a CD holds) the current profile is DVD-ROM.
const CD_MAX_BLOCKS: u64 = 400_000;

const VENDOR: &[u8; 8] = b"KEEL    ";
const PRODUCT: &[u8; 16] = b"Virtual CD-ROM  ";
const REVISION: &[u8; 4] = b"1.0 ";
const SERIAL_MAX: usize = 20;

/// Profiles (MMC-6 5.3.1).
const PROFILE_CD_ROM: u16 = 0x0008;
const PROFILE_DVD_ROM: u16 = 0x0010;

/// What a command asks of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// GOOD status with the first `n` bytes of the reply buffer as data-in (0: no data).
    Data(usize),
    /// GOOD status with `len` bytes of the medium from byte `offset` as data-in (a READ, already
    /// checked against the medium's size and [`MAX_TRANSFER_BLOCKS`]).
    Medium { offset: u64, len: u64 },
    /// CHECK CONDITION with this sense.
    Check(Sense),
}

/// The CD-ROM logical unit's state.
#[derive(Debug, Clone)]
pub struct CdRom {
    blocks: u64,
    serial: [u8; SERIAL_MAX],
    serial_len: usize,
    prevent_removal: bool,
    /// GET EVENT STATUS NOTIFICATION reports "new media" once.
    new_media_event: bool,
}

fn be16(b: &[u8; 16], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn be32(b: &[u8; 16], at: usize) -> u64 {
    u64::from(u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Builds a reply in a byte buffer without indexing past it.
struct Writer<'a> {
    buf: &'a mut [u8; REPLY_MAX],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
            }
            self.len += 1;
        }
    }

    /// Writes `bytes` at `at` (a length field filled in afterwards).
    fn patch(&mut self, at: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            if let Some(slot) = self.buf.get_mut(at + i) {
                *slot = b;
            }
        }
    }

    /// The data, cut to the allocation length and the buffer.
    fn done(self, alloc: usize) -> Reply {
        Reply::Data(self.len.min(alloc).min(REPLY_MAX))
    }
}

/// An LBA as READ TOC gives it: big-endian, or minutes, seconds, frames with the 2-second
/// pregap (MMC-6 6.26.3.2, "MSF"); minutes past 255 saturate (no real disc has them).
fn toc_address(lba: u64, msf: bool) -> [u8; 4] {
    if msf {
        let frames = lba.saturating_add(150);
        [0, (frames / (60 * 75)).min(255) as u8, (frames / 75 % 60) as u8, (frames % 75) as u8]
    } else {
        (lba.min(u64::from(u32::MAX)) as u32).to_be_bytes()
    }
}

impl CdRom {
    /// A unit holding an image of `size_bytes`; `serial` (its first 20 bytes) is the unit serial
    /// number of VPD page 80h.
    pub fn new(size_bytes: u64, serial: &[u8]) -> Self {
        let mut s = [0u8; SERIAL_MAX];
        let n = serial.len().min(SERIAL_MAX);
        s[..n].copy_from_slice(&serial[..n]);
        Self { blocks: size_bytes / BLOCK, serial: s, serial_len: n, prevent_removal: false, new_media_event: true }
    }

    /// Logical blocks on the medium.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Whether the guest prevented medium removal.
    pub fn removal_prevented(&self) -> bool {
        self.prevent_removal
    }

    /// A logical unit reset (virtio-scsi TMF or device reset): removal allowed again.
    pub fn reset(&mut self) {
        self.prevent_removal = false;
    }

    fn medium(&self) -> Result<(), Sense> {
        if self.blocks == 0 {
            Err(Sense::NO_MEDIUM)
        } else {
            Ok(())
        }
    }

    /// Executes one CDB (at most its first 16 bytes matter; a shorter one reads as zero-padded).
    pub fn execute(&mut self, cdb: &[u8], reply: &mut [u8; REPLY_MAX]) -> Reply {
        let mut c = [0u8; 16];
        let n = cdb.len().min(c.len());
        c[..n].copy_from_slice(&cdb[..n]);
        reply.fill(0);
        let w = Writer { buf: reply, len: 0 };
        let result = match c[0] {
            0x00 => self.medium().map(|()| Reply::Data(0)),
            0x03 => Ok(self.request_sense(&c, w)),
            0x12 => self.inquiry(&c, w),
            0x1A => self.mode_sense(c[2], c[3], usize::from(c[4]), false, w),
            0x5A => self.mode_sense(c[2], c[3], be16(&c, 7), true, w),
            0x1B => self.start_stop(&c),
            0x1E => {
                // MMC-6 6.10: bit 0 of byte 4 prevents, bit 1 (persistent) is not kept apart.
                self.prevent_removal = c[4] & 0x03 != 0;
                Ok(Reply::Data(0))
            }
            0x25 => self.read_capacity_10(w),
            0x9E if c[1] & 0x1F == 0x10 => self.read_capacity_16(be32(&c, 10) as usize, w),
            0x28 => self.read(be32(&c, 2), be16(&c, 7) as u64),
            0xA8 => self.read(be32(&c, 2), be32(&c, 6)),
            0x88 => {
                let lba = u64::from_be_bytes([c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]]);
                self.read(lba, be32(&c, 10))
            }
            0x2A | 0xAA | 0x8A => Err(Sense::WRITE_PROTECTED),
            0x43 => self.read_toc(&c, w),
            0x46 => self.get_configuration(&c, w),
            0x4A => self.event_status(&c, w),
            0x51 => self.disc_information(&c, w),
            0xA0 => Self::report_luns(&c, w),
            0xBD => {
                let mut w = w;
                w.put(&[0; 8]);
                Ok(w.done(be16(&c, 8)))
            }
            _ => Err(Sense::INVALID_OPCODE),
        };
        result.unwrap_or_else(Reply::Check)
    }

    /// REQUEST SENSE: sense is delivered with each CHECK CONDITION (virtio-scsi autosense), so
    /// what is left to report is the unit's state (SPC-4 5.11).
    fn request_sense(&self, c: &[u8; 16], mut w: Writer<'_>) -> Reply {
        let sense = self.medium().err().unwrap_or(Sense::NONE);
        w.put(&sense.fixed());
        w.done(usize::from(c[4]))
    }

    fn inquiry(&self, c: &[u8; 16], mut w: Writer<'_>) -> Result<Reply, Sense> {
        let evpd = c[1] & 1 != 0;
        let page = c[2];
        let alloc = be16(c, 3);
        match (evpd, page) {
            (false, 0) => {
                // SPC-4 6.6.2: CD/DVD device (05h), removable, SPC-3 (05h), response format 2.
                w.put(&[0x05, 0x80, 0x05, 0x02, 31, 0, 0, 0]);
                w.put(VENDOR);
                w.put(PRODUCT);
                w.put(REVISION);
            }
            (false, _) => return Err(Sense::INVALID_FIELD),
            (true, 0x00) => w.put(&[0x05, 0x00, 0, 3, 0x00, 0x80, 0x83]),
            (true, 0x80) => {
                // SPC-4 7.8.15: the serial, ASCII.
                w.put(&[0x05, 0x80, 0, self.serial_len as u8]);
                w.put(&self.serial[..self.serial_len]);
            }
            (true, 0x83) => {
                // SPC-4 7.8.6: one designator, ASCII, associated with the LU, T10 vendor ID
                // based: the vendor then the serial.
                let len = VENDOR.len() + self.serial_len;
                w.put(&[0x05, 0x83, 0, (4 + len) as u8]);
                w.put(&[0x02, 0x01, 0, len as u8]);
                w.put(VENDOR);
                w.put(&self.serial[..self.serial_len]);
            }
            (true, _) => return Err(Sense::INVALID_FIELD),
        }
        Ok(w.done(alloc))
    }

    /// MODE SENSE(6) or (10): the MM capabilities page (2Ah) only.
    fn mode_sense(
        &self,
        page_byte: u8,
        subpage: u8,
        alloc: usize,
        ten: bool,
        mut w: Writer<'_>,
    ) -> Result<Reply, Sense> {
        let control = page_byte >> 6;
        let page = page_byte & 0x3F;
        if control == 3 {
            return Err(Sense::SAVING_NOT_SUPPORTED);
        }
        if !(page == 0x2A || page == 0x3F) || subpage != 0 {
            return Err(Sense::INVALID_FIELD);
        }
        // Header: mode data length (filled in below), medium type, device-specific, block
        // descriptor length 0 (SPC-4 7.5.5).
        let header = if ten { 8 } else { 4 };
        w.put(&[0; 8][..header]);
        let mut p = [0u8; 22];
        p[0] = 0x2A;
        p[1] = 20;
        // "Changeable values" (control 1): nothing can be changed, all zeros.
        if control != 1 {
            p[2] = 0x0B; // reads CD-R, CD-RW, DVD-ROM
            p[4] = 0x40; // multi-session
            p[6] = 0x29; // tray loading, eject, lock
            p[8..10].copy_from_slice(&5644u16.to_be_bytes()); // 32x (obsolete, Linux shows it)
            p[14..16].copy_from_slice(&5644u16.to_be_bytes());
        }
        w.put(&p);
        let total = w.len;
        if ten {
            w.patch(0, &((total - 2) as u16).to_be_bytes());
        } else {
            w.patch(0, &[(total - 1) as u8]);
        }
        Ok(w.done(alloc))
    }

    fn start_stop(&mut self, c: &[u8; 16]) -> Result<Reply, Sense> {
        let load_eject = c[4] & 0x02 != 0;
        let start = c[4] & 0x01 != 0;
        if load_eject && !start && self.prevent_removal {
            return Err(Sense::REMOVAL_PREVENTED);
        }
        Ok(Reply::Data(0))
    }

    fn read_capacity_10(&self, mut w: Writer<'_>) -> Result<Reply, Sense> {
        self.medium()?;
        // SBC-3 5.15.2: FFFFFFFFh when the last LBA does not fit.
        let last = (self.blocks - 1).min(u64::from(u32::MAX)) as u32;
        w.put(&last.to_be_bytes());
        w.put(&(BLOCK as u32).to_be_bytes());
        Ok(w.done(8))
    }

    fn read_capacity_16(&self, alloc: usize, mut w: Writer<'_>) -> Result<Reply, Sense> {
        self.medium()?;
        w.put(&(self.blocks - 1).to_be_bytes());
        w.put(&(BLOCK as u32).to_be_bytes());
        w.put(&[0; 20]);
        Ok(w.done(alloc))
    }

    fn read(&self, lba: u64, blocks: u64) -> Result<Reply, Sense> {
        self.medium()?;
        if blocks == 0 {
            return Ok(Reply::Data(0));
        }
        let end = lba.checked_add(blocks).ok_or(Sense::LBA_OUT_OF_RANGE)?;
        if end > self.blocks {
            return Err(Sense::LBA_OUT_OF_RANGE);
        }
        if blocks > MAX_TRANSFER_BLOCKS {
            return Err(Sense::INVALID_FIELD);
        }
        // Both below the medium's size in bytes, which is a u64.
        Ok(Reply::Medium { offset: lba * BLOCK, len: blocks * BLOCK })
    }

    fn read_toc(&self, c: &[u8; 16], mut w: Writer<'_>) -> Result<Reply, Sense> {
        self.medium()?;
        let msf = c[1] & 0x02 != 0;
        // MMC-6 6.26.2.5: format 0 in byte 2 may be the old format field in byte 9's top bits
        // (Linux's sr uses it for the session info).
        let format = match c[2] & 0x0F {
            0 => c[9] >> 6,
            f => f,
        };
        let track = c[6];
        let alloc = be16(c, 7);
        match format {
            0 => {
                if track > 1 && track != 0xAA {
                    return Err(Sense::INVALID_FIELD);
                }
                w.put(&[0, 0, 1, 1]);
                if track <= 1 {
                    // Track 1: a data track (ADR 1, control 4), at LBA 0.
                    w.put(&[0, 0x14, 1, 0]);
                    w.put(&toc_address(0, msf));
                }
                w.put(&[0, 0x14, 0xAA, 0]);
                w.put(&toc_address(self.blocks, msf));
            }
            1 => {
                // One complete session whose first track starts at LBA 0.
                w.put(&[0, 0, 1, 1, 0, 0x14, 1, 0]);
                w.put(&toc_address(0, msf));
            }
            _ => return Err(Sense::INVALID_FIELD),
        }
        let total = w.len;
        w.patch(0, &((total - 2) as u16).to_be_bytes());
        Ok(w.done(alloc))
    }

    fn get_configuration(&self, c: &[u8; 16], mut w: Writer<'_>) -> Result<Reply, Sense> {
        let rt = c[1] & 0x03;
        let start = be16(c, 2) as u16;
        let alloc = be16(c, 7);
        if rt == 3 {
            return Err(Sense::INVALID_FIELD);
        }
        let present = self.blocks > 0;
        let profile = match (present, self.blocks > CD_MAX_BLOCKS) {
            (false, _) => 0,
            (true, true) => PROFILE_DVD_ROM,
            (true, false) => PROFILE_CD_ROM,
        };
        let cur = u8::from(present);
        let is = |p: u16| u8::from(p == profile);
        // Each feature: code, then its bytes from the version/persistent/current byte on
        // (MMC-6 5.2.2, 5.3).
        let profiles = [0x03, 8, 0, 0x10, is(PROFILE_DVD_ROM), 0, 0, 0x08, is(PROFILE_CD_ROM), 0];
        let core = [0x0B, 8, 0, 0, 0, 1, 0, 0, 0, 0]; // version 2, persistent, current; SCSI
        let removable = [0x03, 4, 0x29, 0, 0, 0]; // tray, eject, lock
        let random_readable = [0x04 | cur, 8, 0, 0, 0x08, 0x00, 0, 1, 0, 0]; // 2048-byte blocks
        let cd_read = [0x08 | cur, 4, 0, 0, 0, 0];
        let features: [(u16, &[u8]); 5] = [
            (0x0000, &profiles),
            (0x0001, &core),
            (0x0003, &removable),
            (0x0010, &random_readable),
            (0x001E, &cd_read),
        ];
        w.put(&[0; 6]);
        w.put(&profile.to_be_bytes());
        for (code, body) in features {
            let current = body[0] & 1 != 0;
            let wanted = match rt {
                0 => code >= start,
                1 => code >= start && current,
                _ => code == start,
            };
            if wanted {
                w.put(&code.to_be_bytes());
                w.put(body);
            }
        }
        let total = w.len;
        w.patch(0, &((total - 4) as u32).to_be_bytes());
        Ok(w.done(alloc))
    }

    fn event_status(&mut self, c: &[u8; 16], mut w: Writer<'_>) -> Result<Reply, Sense> {
        // MMC-6 6.7.2: only polled operation (byte 1 bit 0) is supported.
        if c[1] & 0x01 == 0 {
            return Err(Sense::INVALID_FIELD);
        }
        let alloc = be16(c, 7);
        const MEDIA_CLASS: u8 = 0x10;
        if c[4] & MEDIA_CLASS != 0 {
            let event = if core::mem::take(&mut self.new_media_event) && self.blocks > 0 { 2 } else { 0 };
            let status = if self.blocks > 0 { 0x02 } else { 0 }; // media present, door closed
            w.put(&[0, 6, 0x04, MEDIA_CLASS, event, status, 0, 0]);
        } else {
            // No event of a class asked for (NEA), media events supported.
            w.put(&[0, 2, 0x80, MEDIA_CLASS]);
        }
        Ok(w.done(alloc))
    }

    fn disc_information(&self, c: &[u8; 16], mut w: Writer<'_>) -> Result<Reply, Sense> {
        if c[1] & 0x07 != 0 {
            return Err(Sense::INVALID_FIELD);
        }
        self.medium()?;
        // MMC-6 6.22.3.1: not erasable, last session complete, disc complete; first track 1,
        // one session, its first and last track 1; no lead-in or lead-out addresses.
        w.put(&[0, 32, 0x0E, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        w.put(&[0xFF; 8]);
        w.put(&[0; 10]);
        Ok(w.done(be16(c, 7)))
    }

    fn report_luns(c: &[u8; 16], mut w: Writer<'_>) -> Result<Reply, Sense> {
        let alloc = be32(c, 6) as usize;
        // SPC-4 6.33: an allocation length under 16 is an invalid field.
        if alloc < 16 || c[2] > 2 {
            return Err(Sense::INVALID_FIELD);
        }
        w.put(&[0, 0, 0, 8, 0, 0, 0, 0]);
        w.put(&[0; 8]);
        Ok(w.done(alloc))
    }
}

#[cfg(test)]
mod tests;
