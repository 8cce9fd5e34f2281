//! The channel between the storage service (storaged) and one client (vmd, later each VM's
//! monitor): a shared-memory area of atomics that holds one request at a time, its reply, and
//! a data window for what is read or written. The client fills in a request and signals the
//! service's notification; the service answers and signals the client's.
//!
//! Every field is an atomic and every length is clamped on reading, so a misbehaving peer can
//! garble its own requests and replies, never make the other side read or write out of bounds
//! (as keel-vmproto's control area). The data window is atomic words too, but is copied in and
//! out with one memory copy ([`window`]), the crate's only unsafe code: a word-by-word copy
//! cost several instructions per byte on every read and write. Each side still checks what it reads: the service treats
//! paths and handles as hostile, the client treats replies as untrusted lengths.
//!
//! What it does not do: queue several requests (one is in flight per channel; a client that
//! wants more opens more channels), or decide anything about files (the service does).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
extern crate alloc;

mod window;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

pub const MAGIC: u32 = 0x4b53_544f; // "KSTO"
/// The longest path a request carries (bytes, UTF-8).
pub const PATH_MAX: usize = 1024;
/// The most bytes one read or write moves.
pub const DATA_MAX: usize = 256 << 10;
/// Pages a client allocates for its channel.
pub const CHANNEL_PAGES: u64 = (core::mem::size_of::<Channel>() as u64).div_ceil(4096);

/// What a request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// The disks, their partitions and datastores, as text lines (`disks_text`). No arguments.
    Disks = 1,
    /// Metadata of `path`: result = size, result2 = 1 for a directory.
    Stat = 2,
    /// The entries of directory `path`, encoded by [`encode_entries`] in the data window.
    List = 3,
    /// Open `path` (offset bit 0: create it if missing; bit 1: for writing). Result: a handle.
    Open = 4,
    /// Read `length` bytes at `offset` of `handle` into the data window. Result: bytes read.
    Read = 5,
    /// Write `length` bytes from the data window at `offset` of `handle`. Result: bytes written.
    Write = 6,
    /// Make every write to `handle` durable.
    Flush = 7,
    /// Set `handle`'s size to `offset` (growing is sparse).
    Truncate = 8,
    Close = 9,
    /// Rename `path` to `path2`.
    Rename = 10,
    Remove = 11,
    Mkdir = 12,
    /// vmd only: serve another client. `handle`: the client's channel (a shared-memory handle
    /// vmd granted into the service's table); `offset`: the client's reply notification (also
    /// granted); the data window: what the client may use ([`encode_grants`], `length` bytes).
    /// Result: the client's number.
    Attach = 13,
    /// vmd only: stop serving client `handle` (its files are closed).
    Detach = 14,
    /// vmd only: make disk or partition `path` (`sd1`, `sd1p2`) a datastore: a whole disk gets a
    /// GPT with one partition, formatted exFAT; a partition is formatted in place. `offset` bit
    /// 0: even if it holds something (never the datastore in use). Whatever the status, the data
    /// window holds a line saying what was done or why not (`result` bytes).
    Format = 15,
}

impl Op {
    pub const ALL: [Op; 15] = [
        Op::Disks,
        Op::Stat,
        Op::List,
        Op::Open,
        Op::Read,
        Op::Write,
        Op::Flush,
        Op::Truncate,
        Op::Close,
        Op::Rename,
        Op::Remove,
        Op::Mkdir,
        Op::Attach,
        Op::Detach,
        Op::Format,
    ];

    pub fn from_u32(v: u32) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| *op as u32 == v)
    }
}

/// `Open` flags, in the request's `offset`.
pub mod open {
    pub const CREATE: u64 = 1;
    pub const WRITE: u64 = 2;
}

/// Reply status: 0 is success; the others name what went wrong, for the client's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    Exists = 2,
    NotADirectory = 3,
    IsADirectory = 4,
    NoSpace = 5,
    BadName = 6,
    ReadOnly = 7,
    Corrupt = 8,
    DiskError = 9,
    BadHandle = 10,
    BadRequest = 11,
    NoDatastore = 12,
    NotEmpty = 13,
    TooMany = 14,
    /// The client may not do that (a path outside its grants, a write to a file it may only
    /// read, a request only vmd may make).
    Denied = 15,
}

impl Status {
    pub const ALL: [Status; 16] = [
        Status::Ok,
        Status::NotFound,
        Status::Exists,
        Status::NotADirectory,
        Status::IsADirectory,
        Status::NoSpace,
        Status::BadName,
        Status::ReadOnly,
        Status::Corrupt,
        Status::DiskError,
        Status::BadHandle,
        Status::BadRequest,
        Status::NoDatastore,
        Status::NotEmpty,
        Status::TooMany,
        Status::Denied,
    ];

    /// An unknown code reads as `BadRequest` (the peer is not trusted).
    pub fn from_u32(v: u32) -> Status {
        Status::ALL.iter().copied().find(|s| *s as u32 == v).unwrap_or(Status::BadRequest)
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::NotFound => "no such file or directory",
            Status::Exists => "file exists",
            Status::NotADirectory => "not a directory",
            Status::IsADirectory => "is a directory",
            Status::NoSpace => "no space left on the datastore",
            Status::BadName => "invalid file name",
            Status::ReadOnly => "read-only datastore",
            Status::Corrupt => "the datastore's file system is corrupt",
            Status::DiskError => "disk error",
            Status::BadHandle => "bad file handle",
            Status::BadRequest => "bad request",
            Status::NoDatastore => "no datastore",
            Status::NotEmpty => "directory not empty",
            Status::TooMany => "too many open files",
            Status::Denied => "permission denied",
        })
    }
}

/// A request as the service reads it (every length already clamped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub handle: u64,
    pub offset: u64,
    pub length: u64,
    pub path: String,
    pub path2: String,
}

impl Request {
    pub fn new(op: Op) -> Request {
        Request { op, handle: 0, offset: 0, length: 0, path: String::new(), path2: String::new() }
    }
}

/// A reply as the client reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    pub result: u64,
    pub result2: u64,
}

/// Channel states.
const IDLE: u32 = 0;
const REQUESTED: u32 = 1;
const ANSWERED: u32 = 2;

/// The shared area.
#[repr(C)]
pub struct Channel {
    magic: AtomicU32,
    state: AtomicU32,
    op: AtomicU32,
    status: AtomicU32,
    handle: AtomicU64,
    offset: AtomicU64,
    length: AtomicU64,
    result: AtomicU64,
    result2: AtomicU64,
    path_len: AtomicU32,
    path2_len: AtomicU32,
    paths: [AtomicU8; 2 * PATH_MAX],
    data: [AtomicU64; DATA_MAX / 8],
}

impl Default for Channel {
    fn default() -> Self {
        Self::new()
    }
}

impl Channel {
    pub fn new() -> Channel {
        Channel {
            magic: AtomicU32::new(MAGIC),
            state: AtomicU32::new(IDLE),
            op: AtomicU32::new(0),
            status: AtomicU32::new(0),
            handle: AtomicU64::new(0),
            offset: AtomicU64::new(0),
            length: AtomicU64::new(0),
            result: AtomicU64::new(0),
            result2: AtomicU64::new(0),
            path_len: AtomicU32::new(0),
            path2_len: AtomicU32::new(0),
            paths: [const { AtomicU8::new(0) }; 2 * PATH_MAX],
            data: [const { AtomicU64::new(0) }; DATA_MAX / 8],
        }
    }

    /// Make zeroed memory a fresh, idle channel (zero is already idle; this sets the magic).
    pub fn reset(&self) {
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.state.store(IDLE, Ordering::Release);
    }

    /// Client: post a request (its data, for a write, already in the window). Paths longer than
    /// PATH_MAX are cut (the service then finds no such file).
    pub fn post(&self, request: &Request) {
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.op.store(request.op as u32, Ordering::Relaxed);
        self.handle.store(request.handle, Ordering::Relaxed);
        self.offset.store(request.offset, Ordering::Relaxed);
        self.length.store(request.length, Ordering::Relaxed);
        let put = |at: usize, s: &str| {
            let bytes = &s.as_bytes()[..s.len().min(PATH_MAX)];
            for (i, &b) in bytes.iter().enumerate() {
                self.paths[at + i].store(b, Ordering::Relaxed);
            }
            bytes.len() as u32
        };
        self.path_len.store(put(0, &request.path), Ordering::Relaxed);
        self.path2_len.store(put(PATH_MAX, &request.path2), Ordering::Relaxed);
        self.state.store(REQUESTED, Ordering::Release);
    }

    /// Service: the pending request, if any (lengths clamped; an unknown op or non-UTF-8 path
    /// is answered `BadRequest` here and gives `None`).
    pub fn take(&self) -> Option<Request> {
        if self.state.load(Ordering::Acquire) != REQUESTED {
            return None;
        }
        let get = |at: usize, len: &AtomicU32| {
            let n = (len.load(Ordering::Relaxed) as usize).min(PATH_MAX);
            let bytes: Vec<u8> = (0..n).map(|i| self.paths[at + i].load(Ordering::Relaxed)).collect();
            String::from_utf8(bytes).ok()
        };
        let op = Op::from_u32(self.op.load(Ordering::Relaxed));
        match (op, get(0, &self.path_len), get(PATH_MAX, &self.path2_len)) {
            (Some(op), Some(path), Some(path2)) => Some(Request {
                op,
                handle: self.handle.load(Ordering::Relaxed),
                offset: self.offset.load(Ordering::Relaxed),
                length: self.length.load(Ordering::Relaxed).min(DATA_MAX as u64),
                path,
                path2,
            }),
            _ => {
                self.answer(Reply { status: Status::BadRequest, result: 0, result2: 0 });
                None
            }
        }
    }

    /// Service: answer the request (its data, for a read, already in the window).
    pub fn answer(&self, reply: Reply) {
        self.status.store(reply.status as u32, Ordering::Relaxed);
        self.result.store(reply.result, Ordering::Relaxed);
        self.result2.store(reply.result2, Ordering::Relaxed);
        self.state.store(ANSWERED, Ordering::Release);
    }

    /// Client: the reply, once there (the channel is idle again after this).
    pub fn reply(&self) -> Option<Reply> {
        if self.state.load(Ordering::Acquire) != ANSWERED {
            return None;
        }
        let reply = Reply {
            status: Status::from_u32(self.status.load(Ordering::Relaxed)),
            result: self.result.load(Ordering::Relaxed),
            result2: self.result2.load(Ordering::Relaxed),
        };
        self.state.store(IDLE, Ordering::Release);
        Some(reply)
    }

    /// Copy `bytes` into the data window at `offset` (what does not fit is left out). Returns
    /// the bytes copied.
    pub fn put_data(&self, offset: usize, bytes: &[u8]) -> usize {
        let n = bytes.len().min(DATA_MAX.saturating_sub(offset));
        window::copy_in(&self.data, offset, &bytes[..n]);
        n
    }

    /// Run `f` on the window's first `len` bytes (clamped), with no copy: the service reads a
    /// file into it or writes a file from it, a client fills it before posting or takes a read
    /// out after the reply. Only by the side that holds the window under the protocol (the
    /// service between `take` and `answer`, the client otherwise).
    pub fn with_data<R>(&self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        window::with_slice(&self.data, len, f)
    }

    /// Copy from the data window at `offset` into `out` (clamped to the window). Returns the
    /// bytes copied.
    pub fn get_data(&self, offset: usize, out: &mut [u8]) -> usize {
        let n = out.len().min(DATA_MAX.saturating_sub(offset));
        window::copy_out(&self.data, offset, &mut out[..n]);
        n
    }
}

/// What a client may use: everything (vmd, a program the console user started with a channel),
/// or a list of files, each readable and perhaps writable (a VM's monitor: its VM's images).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grants {
    All,
    Files(Vec<(String, bool)>),
}

/// A path in one spelling: `/` then its names joined by `/` (repeated and trailing slashes
/// dropped), so that a grant and a request compare equal however either was written. `None`
/// for a path with `.` or `..` (never resolved) or not starting with `/`.
pub fn canonical_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = String::new();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        if name == "." || name == ".." {
            return None;
        }
        out.push('/');
        out.push_str(name);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

impl Grants {
    /// May the client read `path`?
    pub fn may_read(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    /// May the client write (or create) `path`?
    pub fn may_write(&self, path: &str) -> bool {
        self.find(path) == Some(true)
    }

    /// Whether `path` is granted, and writable.
    fn find(&self, path: &str) -> Option<bool> {
        match self {
            Grants::All => Some(true),
            Grants::Files(files) => {
                let path = canonical_path(path)?;
                files.iter().find(|(p, _)| canonical_path(p).as_deref() == Some(&path)).map(|(_, w)| *w)
            }
        }
    }
}

/// Grants as text: `*` for all, else a line per file, `r PATH` or `w PATH`.
pub fn encode_grants(grants: &Grants) -> String {
    match grants {
        Grants::All => String::from("*"),
        Grants::Files(files) => {
            let mut out = String::new();
            for (path, writable) in files {
                out.push_str(if *writable { "w " } else { "r " });
                out.push_str(path);
                out.push('\n');
            }
            out
        }
    }
}

/// The grants in `text`; a malformed line grants nothing.
pub fn decode_grants(text: &str) -> Grants {
    if text == "*" {
        return Grants::All;
    }
    let files = text
        .lines()
        .filter_map(|line| match line.split_at_checked(2) {
            Some(("r ", path)) => Some((String::from(path), false)),
            Some(("w ", path)) => Some((String::from(path), true)),
            _ => None,
        })
        .collect();
    Grants::Files(files)
}

/// One directory entry in a `List` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub is_dir: bool,
}

/// Entries as bytes: per entry a kind byte (1 directory, 0 file), the size (u64 LE), the name's
/// length (u16 LE) and the name.
pub fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let name = &e.name.as_bytes()[..e.name.len().min(u16::MAX as usize)];
        out.push(u8::from(e.is_dir));
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
    }
    out
}

/// The entries in `bytes`; a truncated or malformed tail is dropped.
pub fn decode_entries(bytes: &[u8]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 11 {
        let is_dir = rest[0] == 1;
        let size = u64::from_le_bytes(rest[1..9].try_into().unwrap_or([0; 8]));
        let len = usize::from(u16::from_le_bytes([rest[9], rest[10]]));
        let Some(name) = rest.get(11..11 + len) else { break };
        entries.push(Entry { name: String::from_utf8_lossy(name).into(), size, is_dir });
        rest = &rest[11 + len..];
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_its_reply_cross_the_channel() {
        let channel = Channel::new();
        assert!(channel.take().is_none());
        let mut request = Request::new(Op::Rename);
        request.path = "/etc/vm.conf".into();
        request.path2 = "/etc/vm.conf.old".into();
        channel.post(&request);
        assert_eq!(channel.take(), Some(request));
        assert!(channel.reply().is_none());
        channel.answer(Reply { status: Status::NotFound, result: 1, result2: 2 });
        assert_eq!(channel.reply(), Some(Reply { status: Status::NotFound, result: 1, result2: 2 }));
        assert!(channel.reply().is_none(), "a reply is taken once");
    }

    #[test]
    fn data_round_trips_at_any_alignment_and_is_clamped() {
        let channel = Channel::new();
        let bytes: Vec<u8> = (0..100u8).collect();
        for offset in [0, 1, 7, 8, 13] {
            assert_eq!(channel.put_data(offset, &bytes), 100);
            let mut out = vec![0u8; 100];
            assert_eq!(channel.get_data(offset, &mut out), 100);
            assert_eq!(out, bytes);
        }
        channel.put_data(0, &[0xaa; 16]);
        channel.put_data(3, &[1, 2]);
        let mut out = [0u8; 8];
        channel.get_data(0, &mut out);
        assert_eq!(out, [0xaa, 0xaa, 0xaa, 1, 2, 0xaa, 0xaa, 0xaa]);
        assert_eq!(channel.put_data(DATA_MAX - 4, &[1; 10]), 4);
        assert_eq!(channel.get_data(DATA_MAX + 5, &mut [0; 10]), 0);
    }

    #[test]
    fn the_service_works_in_the_window_in_place_clamped_to_it() {
        let channel = Channel::new();
        let n = channel.with_data(5, |window| {
            window.copy_from_slice(b"keel!");
            window.len()
        });
        assert_eq!(n, 5);
        let mut out = [0u8; 5];
        channel.get_data(0, &mut out);
        assert_eq!(&out, b"keel!");
        assert_eq!(channel.with_data(DATA_MAX + 4096, |window| window.len()), DATA_MAX);
        assert_eq!(channel.with_data(0, |window| window.len()), 0);
    }

    #[test]
    fn a_hostile_client_gets_bad_request_not_a_crash() {
        let channel = Channel::new();
        channel.op.store(999, Ordering::Relaxed);
        channel.path_len.store(u32::MAX, Ordering::Relaxed);
        channel.state.store(REQUESTED, Ordering::Release);
        assert!(channel.take().is_none());
        assert_eq!(channel.reply().map(|r| r.status), Some(Status::BadRequest));
        let mut request = Request::new(Op::Read);
        request.length = u64::MAX;
        channel.post(&request);
        assert_eq!(channel.take().map(|r| r.length), Some(DATA_MAX as u64));
        assert_eq!(Status::from_u32(12345), Status::BadRequest);
    }

    #[test]
    fn grants_name_files_in_any_spelling_and_nothing_else() {
        let grants = Grants::Files(vec![("/vm/disk.img".into(), true), ("/iso/install.iso".into(), false)]);
        let decoded = decode_grants(&encode_grants(&grants));
        assert_eq!(decoded, grants);
        assert!(decoded.may_write("/vm/disk.img"));
        assert!(decoded.may_write("//vm///disk.img/"));
        assert!(decoded.may_read("/iso/install.iso"));
        assert!(!decoded.may_write("/iso/install.iso"));
        assert!(!decoded.may_read("/vm/../iso/install.iso"));
        assert!(!decoded.may_read("/etc/vm.conf"));
        assert!(!decoded.may_read("vm/disk.img"));
        assert!(!decoded.may_read("/"));
        assert!(decode_grants("*").may_write("/anything"));
        assert_eq!(decode_grants("x /a\nw\n"), Grants::Files(vec![]));
        assert_eq!(canonical_path("/"), Some("/".into()));
        assert_eq!(canonical_path("/a/./b"), None);
    }

    #[test]
    fn entries_round_trip_and_a_torn_list_is_cut() {
        let entries = vec![
            Entry { name: "vm.conf".into(), size: 120, is_dir: false },
            Entry { name: "images".into(), size: 0, is_dir: true },
        ];
        let bytes = encode_entries(&entries);
        assert_eq!(decode_entries(&bytes), entries);
        assert_eq!(decode_entries(&bytes[..bytes.len() - 1]), entries[..1].to_vec());
        assert!(decode_entries(&[1, 2, 3]).is_empty());
    }
}
