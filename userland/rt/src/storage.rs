//! A client of the storage service (storaged): one storage channel (keel-storeproto), the
//! service's request notification to ring, and a notification of its own that the service
//! rings when it answers. vmd, the VM monitors and test programs use it alike.
//!
//! Every call waits at most `TIMEOUT_NS`: a storage service that is dead or stuck gives a clear
//! error, never a hang. What it does not do: pipeline requests (one is in flight per channel),
//! or decide what a client may touch (the service checks that).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

use keel_abi::Handle;
use keel_storeproto::{decode_entries, open, Channel, Entry, Op, Reply, Request, Status, DATA_MAX};

use crate::sys;

/// The most bytes one `read` moves (the channel's data window).
pub const MAX_READ: usize = DATA_MAX;

/// How long one request may take (a disk can be slow; a hung one must not hang the caller).
pub const TIMEOUT_NS: u64 = 30_000_000_000;

/// A client; clones share the channel (one request at a time, so the program's one thread
/// that uses them calls them in turn), which lets each open disk image hold its own.
#[derive(Clone)]
pub struct StorageClient {
    channel: &'static Channel,
    /// Rung when a request is posted (SIGNAL).
    to_service: Handle,
    /// Rung by the service when it answers (WAIT).
    replies: Handle,
    /// A request timed out and may still be answered: drop that answer before the next (shared
    /// by the clones: it is the channel's state).
    stale: Rc<Cell<bool>>,
}

/// An open file: its handle on the channel and its size when opened.
#[derive(Clone, Copy, Debug)]
pub struct OpenFile {
    pub handle: u64,
    pub size: u64,
}

impl StorageClient {
    /// A client over a mapped channel and the two notifications.
    pub fn new(channel: &'static Channel, to_service: Handle, replies: Handle) -> StorageClient {
        StorageClient { channel, to_service, replies, stale: Rc::new(Cell::new(false)) }
    }

    /// A client over the handles a program was given: the channel (MAP), the service's request
    /// notification (SIGNAL) and its reply notification (WAIT).
    pub fn from_handles(channel: Handle, to_service: Handle, replies: Handle) -> Result<StorageClient, String> {
        let channel = crate::shared::store_channel_map(channel).map_err(|e| format!("storage channel: {e}"))?;
        Ok(StorageClient::new(channel, to_service, replies))
    }

    /// Post `request` (with `data` in the window for a write) and wait for the answer.
    pub fn call(&mut self, request: &Request, data: &[u8]) -> Result<Reply, String> {
        self.settle();
        self.channel.put_data(0, data);
        self.channel.post(request);
        let deadline = sys::clock_ns().saturating_add(TIMEOUT_NS);
        // The service's doorbell and the first wait for its answer are one system call.
        let _ = sys::notify_signal_wait(self.to_service, 1, self.replies, Some(TIMEOUT_NS));
        loop {
            if let Some(reply) = self.channel.reply() {
                return Ok(reply);
            }
            let now = sys::clock_ns();
            if now >= deadline {
                self.stale.set(true);
                return Err(String::from("the storage service did not answer in 30 seconds"));
            }
            let _ = sys::notify_wait(self.replies, Some(deadline - now));
        }
    }

    /// Before a request: the late answer to a request that timed out, if it came, is not the
    /// next one's.
    fn settle(&mut self) {
        if self.stale.get() {
            self.channel.reply();
            self.stale.set(false);
        }
    }

    /// Like `call`, with any status but Ok made an error naming `path`.
    fn call_ok(&mut self, request: &Request, data: &[u8]) -> Result<Reply, String> {
        let reply = self.call(request, data)?;
        match reply.status {
            Status::Ok => Ok(reply),
            status if request.path.is_empty() => Err(format!("{status}")),
            status => Err(format!("{}: {status}", request.path)),
        }
    }

    /// The first `len` bytes of the data window (clamped).
    pub fn data(&self, len: u64) -> Vec<u8> {
        let mut out = alloc::vec![0u8; (len as usize).min(DATA_MAX)];
        let n = self.channel.get_data(0, &mut out);
        out.truncate(n);
        out
    }

    fn path_request(op: Op, path: &str) -> Request {
        let mut request = Request::new(op);
        request.path = String::from(path);
        request
    }

    /// The `disks` listing, as the service words it.
    pub fn disks(&mut self) -> Result<String, String> {
        let reply = self.call_ok(&Request::new(Op::Disks), &[])?;
        Ok(String::from_utf8_lossy(&self.data(reply.result)).into())
    }

    /// Whether `path` is a file on the datastore: `Ok(None)` when there is no such file or no
    /// datastore; `Ok(Some(size))` when there is.
    pub fn file_size(&mut self, path: &str) -> Result<Option<u64>, String> {
        let reply = self.call(&Self::path_request(Op::Stat, path), &[])?;
        match reply.status {
            Status::Ok if reply.result2 == 0 => Ok(Some(reply.result)),
            Status::Ok => Err(format!("{path}: is a directory")),
            Status::NotFound | Status::NoDatastore => Ok(None),
            status => Err(format!("{path}: {status}")),
        }
    }

    /// The entries of directory `path`.
    pub fn list(&mut self, path: &str) -> Result<Vec<Entry>, String> {
        let reply = self.call_ok(&Self::path_request(Op::List, path), &[])?;
        Ok(decode_entries(&self.data(reply.result)))
    }

    /// Open `path`; with `create`, make it when missing; with `write`, for writing.
    pub fn open(&mut self, path: &str, create: bool, write: bool) -> Result<OpenFile, String> {
        let mut request = Self::path_request(Op::Open, path);
        request.offset = if create { open::CREATE } else { 0 } | if write { open::WRITE } else { 0 };
        let reply = self.call_ok(&request, &[])?;
        Ok(OpenFile { handle: reply.result, size: reply.result2 })
    }

    fn handle_request(op: Op, file: OpenFile, offset: u64, length: u64) -> Request {
        let mut request = Request::new(op);
        request.handle = file.handle;
        request.offset = offset;
        request.length = length;
        request
    }

    /// Read up to `out.len()` bytes at `offset` (at most DATA_MAX per call). Returns bytes read.
    pub fn read(&mut self, file: OpenFile, offset: u64, out: &mut [u8]) -> Result<usize, String> {
        let length = out.len().min(DATA_MAX) as u64;
        let reply = self.call_ok(&Self::handle_request(Op::Read, file, offset, length), &[])?;
        Ok(self.channel.get_data(0, &mut out[..(reply.result as usize).min(length as usize)]))
    }

    /// Read up to `len` bytes at `offset` (at most DATA_MAX) and hand them to `f` straight from
    /// the data window, with no copy of the client's own (a guest disk's read goes from the
    /// window into guest memory). Returns what `f` returned; it gets fewer bytes at the end of
    /// the file.
    pub fn read_with<R>(
        &mut self,
        file: OpenFile,
        offset: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, String> {
        let length = len.min(DATA_MAX) as u64;
        let reply = self.call_ok(&Self::handle_request(Op::Read, file, offset, length), &[])?;
        let n = (reply.result as usize).min(length as usize);
        // The window is this side's again until the next post (storeproto's protocol).
        Ok(self.channel.with_data(n, |bytes| f(bytes)))
    }

    /// Write `len` bytes at `offset` (at most DATA_MAX), which `fill` puts straight into the
    /// data window. Nothing is written when `fill` returns false (then Ok(false)).
    pub fn write_with(
        &mut self,
        file: OpenFile,
        offset: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<bool, String> {
        let length = len.min(DATA_MAX);
        self.settle();
        if !self.channel.with_data(length, fill) {
            return Ok(false);
        }
        self.call_ok(&Self::handle_request(Op::Write, file, offset, length as u64), &[])?;
        Ok(true)
    }

    /// Write `data` at `offset`, in pieces of DATA_MAX.
    pub fn write(&mut self, file: OpenFile, offset: u64, data: &[u8]) -> Result<(), String> {
        for (i, piece) in data.chunks(DATA_MAX).enumerate() {
            let at = offset + (i * DATA_MAX) as u64;
            self.call_ok(&Self::handle_request(Op::Write, file, at, piece.len() as u64), piece)?;
        }
        Ok(())
    }

    /// Set the file's size (growing is sparse: no data written).
    pub fn truncate(&mut self, file: OpenFile, size: u64) -> Result<(), String> {
        self.call_ok(&Self::handle_request(Op::Truncate, file, size, 0), &[]).map(|_| ())
    }

    /// Make every write so far durable.
    pub fn flush(&mut self, file: OpenFile) -> Result<(), String> {
        self.call_ok(&Self::handle_request(Op::Flush, file, 0, 0), &[]).map(|_| ())
    }

    pub fn close(&mut self, file: OpenFile) -> Result<(), String> {
        self.call_ok(&Self::handle_request(Op::Close, file, 0, 0), &[]).map(|_| ())
    }

    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), String> {
        let mut request = Self::path_request(Op::Rename, from);
        request.path2 = String::from(to);
        self.call_ok(&request, &[]).map(|_| ())
    }

    pub fn remove(&mut self, path: &str) -> Result<(), String> {
        self.call_ok(&Self::path_request(Op::Remove, path), &[]).map(|_| ())
    }

    pub fn mkdir(&mut self, path: &str) -> Result<(), String> {
        self.call_ok(&Self::path_request(Op::Mkdir, path), &[]).map(|_| ())
    }

    /// Read all of the open `file` (its `size` bytes) into `out`, which must hold them.
    /// Returns the bytes read (fewer if the file shrank meanwhile).
    pub fn read_all(&mut self, file: OpenFile, out: &mut [u8]) -> Result<usize, String> {
        let size = usize::try_from(file.size).unwrap_or(usize::MAX);
        let have = out.len();
        let out = out.get_mut(..size).ok_or_else(|| format!("a buffer of {have} bytes for {size}"))?;
        let mut done = 0;
        while done < out.len() {
            match self.read(file, done as u64, &mut out[done..])? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }

    /// The whole file `path`, if at most `limit` bytes.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, String> {
        let file = self.open(path, false, false)?;
        let result = if file.size > limit {
            Err(format!("{path}: file too large ({} bytes)", file.size))
        } else {
            let mut bytes = alloc::vec![0u8; file.size as usize];
            self.read_all(file, &mut bytes).map(|n| {
                bytes.truncate(n);
                bytes
            })
        };
        let _ = self.close(file);
        result
    }
}
