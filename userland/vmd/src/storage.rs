//! vmd's side of the storage service: start storaged with the hardware handle and vmd's own
//! storage channel, ask it through keel-rt's `StorageClient` (a timeout on every request, so a
//! stuck disk never hangs the shell), attach other clients (a spawned program, later each VM's
//! monitor) with only the files they may use, and format the shell's `ls` output.
//!
//! What it does not do: decide anything about disks or files (storaged does).

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use keel_abi::{Handle, Rights, HANDLE_HARDWARE, HANDLE_MODULES};
use keel_rt::storage::StorageClient;
use keel_rt::sys;
use keel_storeproto::{encode_grants, Entry, Grants, Op, Request, Status};

/// The program's boot-module name.
pub const PROGRAM: &str = "storaged";

pub struct Storage {
    pub client: StorageClient,
    /// The service's process (GRANT: vmd hands it the channels of other clients).
    process: Handle,
    /// The service's request notification (vmd holds it with every right; clients get SIGNAL).
    to_service: Handle,
}

/// What a new client needs, as handles in vmd's table to grant at its spawn: its channel (MAP),
/// the service's request notification (SIGNAL), its reply notification (WAIT). `number` is the
/// service's name for it (for `detach`).
pub struct ClientHandles {
    pub channel: Handle,
    pub to_service: Handle,
    pub replies: Handle,
    pub number: u64,
}

impl ClientHandles {
    /// The grants for `process_spawn_with`, in the order the client expects them.
    pub fn grants(&self) -> [(Handle, Rights); 3] {
        [(self.channel, Rights::MAP), (self.to_service, Rights::SIGNAL), (self.replies, Rights::WAIT)]
    }

    /// Close vmd's copies once the client has its own.
    pub fn close(&self) {
        let _ = sys::handle_close(self.channel);
        let _ = sys::handle_close(self.replies);
    }
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
        let client = StorageClient::new(channel, to_service, replies);
        Ok((Storage { client, process, to_service }, process, pid))
    }

    /// A channel for another client, limited to `grants`: the service is told of it now; the
    /// caller grants the returned handles to the client.
    pub fn attach(&mut self, grants: &Grants) -> Result<ClientHandles, String> {
        let e = |what: &str, x: keel_abi::Error| format!("{what}: {x}");
        let (channel, _) = keel_rt::shared::store_channel_create().map_err(|x| e("storage channel", x))?;
        let replies = sys::notify_create().map_err(|x| e("notification", x))?;
        let in_service = |h, rights| sys::handle_grant(self.process, h, rights).map_err(|x| e("grant", x));
        let (service_channel, service_replies) =
            match (in_service(channel, Rights::MAP), in_service(replies, Rights::SIGNAL)) {
                (Ok(c), Ok(r)) => (c, r),
                (Err(x), _) | (_, Err(x)) => return Err(x),
            };
        let text = encode_grants(grants);
        let mut request = Request::new(Op::Attach);
        request.handle = u64::from(service_channel);
        request.offset = u64::from(service_replies);
        request.length = text.len() as u64;
        let reply = self.client.call(&request, text.as_bytes())?;
        if reply.status != Status::Ok {
            return Err(format!("attach: {}", reply.status));
        }
        Ok(ClientHandles { channel, to_service: self.to_service, replies, number: reply.result })
    }

    /// The service stops serving client `number` (its process is gone).
    pub fn detach(&mut self, number: u64) {
        let mut request = Request::new(Op::Detach);
        request.handle = number;
        let _ = self.client.call(&request, &[]);
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
