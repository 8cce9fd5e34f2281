//! vmd's side of the storage service: start storaged with the hardware handle and a storage
//! channel (keel-storeproto), ask it one request at a time with a timeout, and turn its answers
//! into the shell's `disks` and `ls` output.
//!
//! A storage service that is missing, dead or stuck gives the caller a clear error after at most
//! `TIMEOUT_NS`, never a hang of the shell. What it does not do: decide anything about disks or
//! files (storaged does), or talk for the VM monitors (they will get channels of their own).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use keel_abi::{Handle, Rights, HANDLE_HARDWARE, HANDLE_MODULES};
use keel_rt::sys;
use keel_storeproto::{decode_entries, Channel, Entry, Op, Reply, Request, Status};

/// The program's boot-module name.
pub const PROGRAM: &str = "storaged";
/// How long one request may take before vmd gives up on it (a disk can be slow; a hung one
/// must not hang the shell).
const TIMEOUT_NS: u64 = 30_000_000_000;

pub struct Storage {
    channel: &'static Channel,
    /// Rung by vmd when it posts a request.
    to_service: Handle,
    /// Rung by storaged when it answers.
    replies: Handle,
    /// A request timed out and may still be answered: drop that answer before the next.
    stale: bool,
}

impl Storage {
    /// Start storaged, its exit reported through `notify`'s `bit`. Returns the service and the
    /// process (handle, pid), or why not.
    pub fn start(notify: Handle, bit: u8) -> Result<(Storage, Handle, u64), String> {
        let e = |what: &str, x: keel_abi::Error| format!("{what}: {x}");
        let (shm, channel) = keel_rt::shared::store_channel_create().map_err(|x| e("storage channel", x))?;
        let to_service = sys::notify_create().map_err(|x| e("notification", x))?;
        let replies = sys::notify_create().map_err(|x| e("notification", x))?;
        let grants = [
            (HANDLE_HARDWARE, Rights::DEVICE),
            (replies, Rights::SIGNAL),
            (shm, Rights::MAP),
            (to_service, Rights::WAIT),
        ];
        let (process, pid) =
            sys::process_spawn_with(HANDLE_MODULES, PROGRAM, notify, bit, &grants).map_err(|x| e("spawn", x))?;
        let _ = sys::handle_close(shm);
        Ok((Storage { channel, to_service, replies, stale: false }, process, pid))
    }

    /// Post `request` (with `data` in the window for a write), wait for the answer.
    fn call(&mut self, request: &Request, data: &[u8]) -> Result<Reply, String> {
        if self.stale {
            // The late answer to a request that timed out, if it came, is not this one's.
            self.channel.reply();
            self.stale = false;
        }
        self.channel.put_data(0, data);
        self.channel.post(request);
        let _ = sys::notify_signal(self.to_service, 1);
        let deadline = sys::clock_ns().saturating_add(TIMEOUT_NS);
        loop {
            if let Some(reply) = self.channel.reply() {
                return Ok(reply);
            }
            let now = sys::clock_ns();
            if now >= deadline {
                self.stale = true;
                return Err(String::from("the storage service did not answer in 30 seconds"));
            }
            let _ = sys::notify_wait(self.replies, Some(deadline - now));
        }
    }

    /// The bytes of the data window after a reply that says how many there are.
    fn data(&self, len: u64) -> Vec<u8> {
        let mut out = alloc::vec![0u8; (len as usize).min(keel_storeproto::DATA_MAX)];
        let n = self.channel.get_data(0, &mut out);
        out.truncate(n);
        out
    }

    /// The `disks` listing, as the service words it.
    pub fn disks(&mut self) -> Result<String, String> {
        let reply = self.call(&Request::new(Op::Disks), &[])?;
        match reply.status {
            Status::Ok => Ok(String::from_utf8_lossy(&self.data(reply.result)).into()),
            status => Err(format!("{status}")),
        }
    }

    /// Whether `path` exists on the datastore: `Ok(None)` when it does not or there is no
    /// datastore; `Ok(Some(size))` when it is a file.
    pub fn file_size(&mut self, path: &str) -> Result<Option<u64>, String> {
        let mut request = Request::new(Op::Stat);
        request.path = String::from(path);
        let reply = self.call(&request, &[])?;
        match reply.status {
            Status::Ok if reply.result2 == 0 => Ok(Some(reply.result)),
            Status::Ok => Err(format!("{path}: is a directory")),
            Status::NotFound | Status::NoDatastore => Ok(None),
            status => Err(format!("{path}: {status}")),
        }
    }

    /// The whole file `path` from the datastore, if at most `limit` bytes.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, String> {
        let mut request = Request::new(Op::Open);
        request.path = String::from(path);
        let opened = self.call(&request, &[])?;
        if opened.status != Status::Ok {
            return Err(format!("{}", opened.status));
        }
        let (handle, size) = (opened.result, opened.result2);
        let result =
            if size > limit { Err(format!("file too large ({size} bytes)")) } else { self.read_open(handle, size) };
        let mut close = Request::new(Op::Close);
        close.handle = handle;
        let _ = self.call(&close, &[]);
        result
    }

    fn read_open(&mut self, handle: u64, size: u64) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        while (bytes.len() as u64) < size {
            let mut request = Request::new(Op::Read);
            request.handle = handle;
            request.offset = bytes.len() as u64;
            request.length = (size - bytes.len() as u64).min(keel_storeproto::DATA_MAX as u64);
            let reply = self.call(&request, &[])?;
            if reply.status != Status::Ok {
                return Err(format!("{}", reply.status));
            }
            if reply.result == 0 {
                break;
            }
            bytes.extend_from_slice(&self.data(reply.result));
        }
        Ok(bytes)
    }

    /// The entries of the datastore directory `path`.
    pub fn list(&mut self, path: &str) -> Result<Vec<Entry>, String> {
        let mut request = Request::new(Op::List);
        request.path = String::from(path);
        let reply = self.call(&request, &[])?;
        match reply.status {
            Status::Ok => Ok(decode_entries(&self.data(reply.result))),
            status => Err(format!("{path}: {status}")),
        }
    }
}

/// `ls` output: one entry a line, size then name, directories marked with a slash.
pub fn format_entries(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let _ = if e.is_dir {
            writeln!(out, "{:>12}  {}/", "-", e.name)
        } else {
            writeln!(out, "{:>12}  {}", e.size, e.name)
        };
    }
    out
}
