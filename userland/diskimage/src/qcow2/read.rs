//! Reading a qcow2 image: each guest cluster from its data cluster (neighbouring data clusters
//! that are also neighbours in the file are read in one request), as zeros, inflated, or from
//! the backing file (zeros past the backing file's end; spec, "If a cluster is unallocated...").
//! Also what a range is, for copying ([`Qcow2::block_status`]).
//!
//! Not here: range checks against the virtual size (the `Image` front does them).

use super::entry::Cluster;
use super::Qcow2;
use crate::file::{sink_zeros, Sink};
use crate::{BlockStatus, Error};

impl Qcow2 {
    pub(crate) fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let cs = self.cluster_size;
        // A run of data clusters contiguous in the file: (host start, buf start, len).
        let mut run: Option<(u64, usize, usize)> = None;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let within = pos % cs;
            let n = ((cs - within) as usize).min(buf.len() - done);
            let state = self.lookup(pos >> self.cluster_bits)?;
            if let Cluster::Data { host, .. } = state {
                let at = host + within;
                match &mut run {
                    Some((start, from, len)) if *start + *len as u64 == at && *from + *len == done => *len += n,
                    _ => {
                        if let Some((start, from, len)) = run.take() {
                            self.file.read_at(start, &mut buf[from..from + len])?;
                        }
                        run = Some((at, done, n));
                    }
                }
            } else {
                self.read_cluster_part(pos, state, &mut buf[done..done + n])?;
            }
            done += n;
        }
        if let Some((start, from, len)) = run {
            self.file.read_at(start, &mut buf[from..from + len])?;
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` into `sink` (see `ImageFile::read_into`): data clusters
    /// straight from the file (neighbours in one request, as `read` does), the rest as `read`.
    pub(crate) fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        let cs = self.cluster_size;
        // A run of data clusters contiguous in the file: (host start, read start, len).
        let mut run: Option<(u64, u64, u64)> = None;
        let mut done = 0u64;
        while done < len {
            let pos = offset + done;
            let within = pos % cs;
            let n = (cs - within).min(len - done);
            let state = self.lookup(pos >> self.cluster_bits)?;
            if let Cluster::Data { host, .. } = state {
                let at = host + within;
                match &mut run {
                    Some((start, from, len)) if *start + *len == at && *from + *len == done => *len += n,
                    _ => {
                        if let Some((start, from, len)) = run.take() {
                            self.file.read_into(start, len, &mut |a, b| sink(from + a, b))?;
                        }
                        run = Some((at, done, n));
                    }
                }
            } else {
                if let Some((start, from, len)) = run.take() {
                    self.file.read_into(start, len, &mut |a, b| sink(from + a, b))?;
                }
                self.read_cluster_part_into(pos, state, n, &mut |a, b| sink(done + a, b))?;
            }
            done += n;
        }
        if let Some((start, from, len)) = run {
            self.file.read_into(start, len, &mut |a, b| sink(from + a, b))?;
        }
        Ok(())
    }

    /// `read_cluster_part` into a sink: `len` bytes inside one guest cluster, at `pos`.
    fn read_cluster_part_into(&mut self, pos: u64, state: Cluster, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        let within = (pos % self.cluster_size) as usize;
        match state {
            Cluster::Data { host, .. } => self.file.read_into(host + within as u64, len, sink),
            Cluster::Zero { .. } => sink_zeros(sink, 0, len),
            Cluster::Unallocated => {
                let Some(backing) = self.backing.as_deref_mut() else { return sink_zeros(sink, 0, len) };
                let from_backing = backing.size().saturating_sub(pos).min(len);
                if from_backing > 0 {
                    backing.read_into(pos, from_backing, sink)?;
                }
                sink_zeros(sink, from_backing, len - from_backing)
            }
            Cluster::Compressed { host, len: stored } => {
                let data = self.inflate.cluster(&mut *self.file, host, stored, self.cluster_size as usize)?;
                match sink(0, &data[within..within + len as usize]) {
                    true => Ok(()),
                    false => Err(Error::Transfer),
                }
            }
        }
    }

    /// Reads `out` (inside one guest cluster, at `pos`) of a cluster in `state`.
    pub(super) fn read_cluster_part(&mut self, pos: u64, state: Cluster, out: &mut [u8]) -> Result<(), Error> {
        let within = (pos % self.cluster_size) as usize;
        match state {
            Cluster::Data { host, .. } => self.file.read_at(host + within as u64, out),
            Cluster::Zero { .. } => {
                out.fill(0);
                Ok(())
            }
            Cluster::Unallocated => self.read_backing(pos, out),
            Cluster::Compressed { host, len } => {
                let data = self.inflate.cluster(&mut *self.file, host, len, self.cluster_size as usize)?;
                out.copy_from_slice(&data[within..within + out.len()]);
                Ok(())
            }
        }
    }

    /// Reads from the backing file at the same guest offset; zeros past its end or without one.
    fn read_backing(&mut self, pos: u64, out: &mut [u8]) -> Result<(), Error> {
        out.fill(0);
        let Some(backing) = self.backing.as_deref_mut() else { return Ok(()) };
        let size = backing.size();
        if pos >= size {
            return Ok(());
        }
        let n = (size - pos).min(out.len() as u64) as usize;
        backing.read(pos, &mut out[..n])
    }

    /// What the bytes from `offset` are, and for how many bytes (to the end of the cluster at
    /// most, and never past `limit` bytes).
    pub(crate) fn block_status(&mut self, offset: u64, limit: u64) -> Result<(u64, BlockStatus), Error> {
        let cs = self.cluster_size;
        let guest_cluster = offset >> self.cluster_bits;
        if self.backing.is_none() && self.l2_missing(guest_cluster) {
            // A whole L2 table's range reads as zeros: say so at once.
            let range_end = self.next_l2_range(guest_cluster).saturating_mul(cs);
            return Ok(((range_end - offset).min(limit), BlockStatus::Zero));
        }
        let len = (cs - offset % cs).min(limit);
        match self.lookup(guest_cluster)? {
            Cluster::Data { .. } | Cluster::Compressed { .. } => Ok((len, BlockStatus::Data)),
            Cluster::Zero { .. } => Ok((len, BlockStatus::Zero)),
            Cluster::Unallocated => match self.backing.as_deref_mut() {
                Some(backing) if offset < backing.size() => {
                    let (n, status) = backing.block_status(offset, len.min(backing.size() - offset))?;
                    Ok((n.clamp(1, len), status))
                }
                _ => Ok((len, BlockStatus::Zero)),
            },
        }
    }
}
