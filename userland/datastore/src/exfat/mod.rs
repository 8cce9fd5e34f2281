//! exFAT, written from the Microsoft exFAT specification (section numbers in comments refer to
//! it). This file: mounting (boot region, the root directory's system entries, bitmap and
//! up-case table), the VolumeDirty flag (spec 3.1.13.2), and the volume's state. The parts:
//! `boot` (boot region), `upcase` (case folding, NameHash), `entry` (entry sets), `alloc`
//! (bitmap, FAT, extents), `dir` (directories), `ops` (path operations), `file` (reads, writes,
//! truncation), `mkfs` (formatting). It does not do TexFAT (a second active FAT), Volume GUIDs,
//! vendor extensions (kept untouched where they are, never written), timestamps from a clock
//! (the caller sets [`ExfatVolume::set_timestamp`]), or repairs (fsck's job).

mod alloc;
mod boot;
mod dir;
mod entry;
mod file;
pub mod mkfs;
mod ops;
mod upcase;

use ::alloc::string::String;
use ::alloc::vec;
use ::alloc::vec::Vec;
use keel_block::BlockDevice;

pub use self::alloc::Extent;
use self::alloc::{Bitmap, FAT_END};
use self::boot::Geometry;
use self::dir::{DirRef, Node};
use self::entry::{cluster_and_length, ENTRY_SIZE, TYPE_BITMAP, TYPE_END, TYPE_LABEL, TYPE_UPCASE};
use self::upcase::UpcaseTable;
use crate::disk::ByteDisk;
use crate::error::{Error, Result};
use crate::path::name_to_string;

/// A DOS timestamp for 2024-01-01 00:00:00 (spec 7.4.8: year-1980 in 25..31, month, day), used
/// until the caller sets the time.
pub const DEFAULT_TIMESTAMP: u32 = (44 << 25) | (1 << 21) | (1 << 16);

/// A mounted exFAT volume.
pub struct ExfatVolume<D> {
    pub(crate) disk: ByteDisk<D>,
    pub(crate) geo: Geometry,
    pub(crate) bitmap: Bitmap,
    pub(crate) upcase: UpcaseTable,
    pub(crate) fat_cache: (Option<u64>, Vec<u8>),
    label: String,
    /// VolumeDirty is set on disk (by us).
    dirty: bool,
    /// VolumeDirty was set when we mounted: someone else's update was cut short; leave it set
    /// for fsck (spec 3.1.13.2).
    dirty_at_mount: bool,
    /// New contiguous objects are NoFatChain; tests turn this off to exercise FAT chains.
    pub(crate) may_skip_fat: bool,
    pub(crate) timestamp: u32,
    /// Mounted from the backup boot region: the main one is damaged, so nothing is written
    /// (a repair is fsck's job).
    from_backup: bool,
}

/// An open exFAT file or directory: where its entry set is and its clusters. Rename and remove
/// of the same file make it stale (the storage service holds one handle per path).
#[derive(Clone, Debug)]
pub struct ExfatFile {
    pub(crate) node: Option<Node>,
    pub(crate) extents: Vec<Extent>,
}

impl<D: BlockDevice> ExfatVolume<D> {
    /// Mount the exFAT volume on `dev`. Every structure is checked; what does not add up is
    /// `Corrupt` with the reason.
    pub fn mount(dev: D) -> Result<Self> {
        let mut disk = ByteDisk::new(dev);
        let mut first = vec![0u8; 512];
        disk.read(0, &mut first).map_err(|_| Error::NotAFileSystem)?;
        if !boot::is_exfat(&first) {
            return Err(Error::NotAFileSystem);
        }
        let (geo, from_backup) = Self::read_boot_region(&mut disk)?;
        let mut volume = ExfatVolume {
            disk,
            geo,
            bitmap: Bitmap { bits: Vec::new(), extents: Vec::new(), hint: 2, free: 0 },
            upcase: UpcaseTable::load(&[], 0)?,
            fat_cache: (None, Vec::new()),
            label: String::new(),
            dirty: false,
            dirty_at_mount: geo.flags & boot::VOLUME_DIRTY != 0,
            may_skip_fat: true,
            from_backup,
            timestamp: DEFAULT_TIMESTAMP,
        };
        volume.load_system_entries()?;
        Ok(volume)
    }

    /// The main boot region if its checksum holds, else the backup (spec 3.1: the backup is
    /// there for when the main one is damaged).
    fn read_boot_region(disk: &mut ByteDisk<D>) -> Result<(Geometry, bool)> {
        let mut err = Error::NotAFileSystem;
        for region in 0..2u64 {
            let mut sector = vec![0u8; 512];
            let shift = {
                disk.read(region * 12 * 512, &mut sector)?;
                sector[108]
            };
            let size = match shift {
                9..=12 => 1usize << shift,
                _ => {
                    err = Error::Corrupt("sector size out of range");
                    continue;
                }
            };
            let mut bytes = vec![0u8; 12 * size];
            if disk.read(region * 12 * size as u64, &mut bytes).is_err() {
                continue;
            }
            if !boot::checksum_matches(&bytes, size) {
                err = Error::Corrupt("boot region checksum mismatch");
                continue;
            }
            match boot::parse(&bytes[..512], disk.len()) {
                // The VolumeFlags of the main region are the live ones (spec 3.1.13).
                Ok(geo) => return Ok((geo, region == 1)),
                Err(e) => err = e,
            }
        }
        Err(err)
    }

    /// Find the Allocation Bitmap, Up-case Table and Volume Label in the root (spec 7.1-7.3).
    fn load_system_entries(&mut self) -> Result<()> {
        let root = self.root_ref();
        let loaded = self.load_dir(&root)?;
        let mut bitmap = None;
        let mut upcase = None;
        let first_fat_offset = u64::from(self.geo.fat_offset) << self.geo.sector_shift;
        for entry in loaded.bytes.chunks_exact(ENTRY_SIZE) {
            match entry[0] {
                TYPE_END => break,
                // Spec 7.1.2: BitmapFlags bit 0 names the FAT the bitmap belongs to.
                TYPE_BITMAP
                    if bitmap.is_none() || (entry[1] & 1 == 1) == (self.geo.fat_byte_offset() != first_fat_offset) =>
                {
                    bitmap = Some(cluster_and_length(entry));
                }
                TYPE_UPCASE if upcase.is_none() => {
                    let sum = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
                    upcase = Some((cluster_and_length(entry), sum));
                }
                TYPE_LABEL => {
                    let count = usize::from(entry[1]).min(11);
                    let units: Vec<u16> =
                        (0..count).map(|i| u16::from_le_bytes([entry[2 + 2 * i], entry[3 + 2 * i]])).collect();
                    self.label = name_to_string(&units);
                }
                _ => {}
            }
        }
        let ((first, len), sum) = upcase.ok_or(Error::Corrupt("no up-case table"))?;
        // Spec 7.2: at most 65536 two-byte entries.
        if len > 2 * 0x10000 || !len.is_multiple_of(2) {
            return Err(Error::Corrupt("up-case table length out of range"));
        }
        let table = self.read_object(first, len)?;
        self.upcase = UpcaseTable::load(&table, sum)?;
        let (first, len) = bitmap.ok_or(Error::Corrupt("no allocation bitmap"))?;
        let need = u64::from(self.geo.cluster_count).div_ceil(8);
        if len < need {
            return Err(Error::Corrupt("allocation bitmap shorter than the cluster count"));
        }
        let extents = self.extents_of(first, false, Some(len))?;
        let mut bits = self.read_object(first, need)?;
        // Bits past the last cluster are treated as used so nothing allocates them.
        let tail = self.geo.cluster_count % 8;
        if tail != 0 {
            if let Some(last) = bits.last_mut() {
                *last |= 0xFF << tail;
            }
        }
        let used: u64 = bits.iter().map(|b| u64::from(b.count_ones())).sum();
        let free = (need * 8).saturating_sub(used) as u32;
        self.bitmap = Bitmap { bits, extents, hint: 2, free };
        Ok(())
    }

    /// The first `len` bytes of a FAT-chained system object.
    fn read_object(&mut self, first: u32, len: u64) -> Result<Vec<u8>> {
        let extents = self.extents_of(first, false, Some(len))?;
        let cs = self.geo.cluster_size();
        let mut bytes = vec![0u8; len as usize];
        let mut at = 0u64;
        for e in extents {
            let n = (u64::from(e.count) * cs).min(len - at);
            self.disk.read(self.geo.cluster_offset(e.first), &mut bytes[at as usize..(at + n) as usize])?;
            at += n;
        }
        Ok(bytes)
    }

    pub(crate) fn root_ref(&self) -> DirRef {
        DirRef { first: self.geo.root_cluster, no_fat_chain: false, len: None }
    }

    /// Set VolumeDirty before the first metadata change since the last flush (spec 3.1.13.2),
    /// and make it durable before that change.
    pub(crate) fn mark_dirty(&mut self) -> Result<()> {
        if self.disk.read_only() || self.from_backup {
            return Err(Error::ReadOnly);
        }
        if !self.dirty {
            self.write_flags(self.geo.flags | boot::VOLUME_DIRTY)?;
            self.disk.flush()?;
            self.dirty = true;
        }
        Ok(())
    }

    fn write_flags(&mut self, flags: u16) -> Result<()> {
        // VolumeFlags is outside the boot checksum (spec 3.4), so only these two bytes change.
        self.disk.write(boot::VOLUME_FLAGS_OFFSET as u64, &flags.to_le_bytes())
    }

    /// Make every completed write durable, then clear VolumeDirty (unless it was set when we
    /// mounted) and make that durable too. After `flush` returns, the volume on disk is
    /// consistent and holds everything written before it.
    pub fn flush(&mut self) -> Result<()> {
        if self.disk.read_only() || self.from_backup {
            return Ok(());
        }
        self.disk.flush()?;
        if self.dirty && !self.dirty_at_mount {
            self.write_flags(self.geo.flags & !boot::VOLUME_DIRTY)?;
            self.disk.flush()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// The volume label (spec 7.3), empty when there is none.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Bytes in the cluster heap, and bytes free in it.
    pub fn space(&self) -> (u64, u64) {
        let cs = self.geo.cluster_size();
        (u64::from(self.geo.cluster_count) * cs, u64::from(self.bitmap.free) * cs)
    }

    /// The timestamp new and changed entries get (a DOS date and time, spec 7.4.8).
    pub fn set_timestamp(&mut self, timestamp: u32) {
        self.timestamp = timestamp;
    }

    /// The device underneath.
    pub fn device(&self) -> &D {
        &self.disk.dev
    }

    /// The device, for the caller to take back.
    pub fn into_device(self) -> D {
        self.disk.dev
    }

    /// Whether new contiguous objects are recorded as NoFatChain (the default, spec 6.3.4.2);
    /// off, every object gets a FAT chain, as some other implementations write them.
    pub fn set_no_fat_chain(&mut self, on: bool) {
        self.may_skip_fat = on;
    }
}

/// The end-of-chain value, for the mkfs code.
pub(crate) const END_OF_CHAIN: u32 = FAT_END;
