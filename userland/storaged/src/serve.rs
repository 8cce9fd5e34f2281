//! The storage requests (keel-storeproto) of every client and their answers, over the disks and
//! the datastore in use. Client 0 is vmd, which may do anything and attach the others (a VM's
//! monitor, a test program), each limited to its grants. Every request is hostile input: paths
//! are checked against the client's grants and by the file system, handles against the client's
//! own table, lengths were clamped by the channel.
//!
//! What it does not do: caching, or serving two requests at once.

use alloc::string::String;
use alloc::vec::Vec;

use keel_abi::Handle;
use keel_datastore::{Error, File};
use keel_rt::shared::ChannelMapping;
use keel_rt::sys;
use keel_storeproto::{
    decode_grants, encode_entries, open, Channel, Entry, Grants, Op, Reply, Request, Status, DATA_MAX,
};

use crate::datastore::DatastoreVolume;
use crate::disks::Disks;

/// The most files open at once per client.
const MAX_OPEN: usize = 64;
/// The most clients at once (vmd included).
const MAX_CLIENTS: usize = 64;

/// Where a client's channel lives.
enum Area {
    /// vmd's, mapped for the service's life.
    Fixed(&'static Channel),
    /// An attached client's, unmapped when it detaches.
    Attached { mapping: ChannelMapping, handle: Handle },
}

struct Client {
    area: Area,
    /// Rung when a reply is ready.
    reply: Handle,
    grants: Grants,
    /// Open files, and whether each was opened for writing.
    files: Vec<Option<(File, bool)>>,
}

impl Area {
    fn channel(&self) -> &Channel {
        match self {
            Area::Fixed(c) => c,
            Area::Attached { mapping, .. } => mapping,
        }
    }
}

impl Client {
    fn channel(&self) -> &Channel {
        self.area.channel()
    }
}

pub struct Service {
    disks: Disks,
    /// The datastore paths name (the first found, or the first made by `newfs`), if any.
    volume: Option<DatastoreVolume>,
    /// Its disk or partition name (`sd0p1`).
    volume_name: Option<String>,
    clients: Vec<Option<Client>>,
}

fn reply(status: Status, result: u64) -> Reply {
    Reply { status, result, result2: 0 }
}

/// What the client is told for a file-system error.
fn status_of(e: Error) -> Status {
    match e {
        Error::NotFound => Status::NotFound,
        Error::AlreadyExists => Status::Exists,
        Error::NotADirectory => Status::NotADirectory,
        Error::IsADirectory => Status::IsADirectory,
        Error::DirectoryNotEmpty => Status::NotEmpty,
        Error::NoSpace | Error::FileTooLarge => Status::NoSpace,
        Error::NameTooLong | Error::InvalidName | Error::InvalidMove => Status::BadName,
        Error::ReadOnly => Status::ReadOnly,
        Error::Corrupt(_) | Error::Unsupported(_) | Error::NotAFileSystem => Status::Corrupt,
        Error::Disk(_) => Status::DiskError,
    }
}

impl Service {
    /// The service, with vmd as client 0 over `channel`, answered through `reply`.
    pub fn new(
        disks: Disks,
        volume: Option<(String, DatastoreVolume)>,
        channel: &'static Channel,
        reply: Handle,
    ) -> Service {
        let vmd = Client { area: Area::Fixed(channel), reply, grants: Grants::All, files: Vec::new() };
        let (volume_name, volume) = volume.map_or((None, None), |(name, v)| (Some(name), Some(v)));
        Service { disks, volume, volume_name, clients: alloc::vec![Some(vmd)] }
    }

    /// Answer every request waiting on any channel. The last answer's signal is left to the
    /// caller (the notification handle returned), to go with its wait for the next request in
    /// one system call; every earlier one is sent before the next request is handled.
    pub fn serve_all(&mut self) -> Option<Handle> {
        let mut unsignalled: Option<Handle> = None;
        for index in 0..self.clients.len() {
            while let Some(client) = self.clients.get(index).and_then(Option::as_ref) {
                let Some(request) = client.channel().take() else { break };
                if let Some(reply) = unsignalled.take() {
                    let _ = sys::notify_signal(reply, 1);
                }
                let answer = self.handle(index, &request);
                if let Some(client) = self.clients.get(index).and_then(Option::as_ref) {
                    client.channel().answer(answer);
                    unsignalled = Some(client.reply);
                }
            }
        }
        unsignalled
    }

    fn handle(&mut self, index: usize, request: &Request) -> Reply {
        let result = match request.op {
            Op::Attach | Op::Detach | Op::Format if index != 0 => Err(Status::Denied),
            Op::Format => Ok(self.format(request)),
            Op::Attach => self.attach(request),
            Op::Detach => self.detach(request.handle),
            Op::Disks => {
                let text = self.disks.text();
                Ok(reply(Status::Ok, self.channel(index).put_data(0, text.as_bytes()) as u64))
            }
            _ => self.file_request(index, request),
        };
        result.unwrap_or_else(|status| reply(status, 0))
    }

    fn channel(&self, index: usize) -> &Channel {
        self.clients[index].as_ref().map(Client::channel).expect("the client making a request exists")
    }

    fn client(&mut self, index: usize) -> &mut Client {
        self.clients[index].as_mut().expect("the client making a request exists")
    }

    /// `newfs`: format, then use the new datastore if none is in use. The data window says what
    /// happened either way.
    fn format(&mut self, request: &Request) -> Reply {
        let force = request.offset & 1 != 0;
        let outcome = crate::datastore::format(&mut self.disks, &request.path, force, self.volume_name.as_deref());
        let (status, text) = match outcome {
            Ok((text, (name, volume))) => {
                let mut text = text;
                if self.volume.is_none() {
                    text.push_str(", in use");
                    self.volume = Some(volume);
                    self.volume_name = Some(name);
                }
                (Status::Ok, text)
            }
            Err(text) => (Status::Denied, text),
        };
        keel_rt::io::debug(format_args!("storaged: newfs {}: {text}", request.path));
        let n = self.channel(0).put_data(0, text.as_bytes());
        reply(status, n as u64)
    }

    /// vmd attaches a client: map its channel, take its grants from vmd's data window.
    fn attach(&mut self, request: &Request) -> Result<Reply, Status> {
        let (Ok(handle), Ok(reply_handle)) = (Handle::try_from(request.handle), Handle::try_from(request.offset))
        else {
            return Err(Status::BadRequest);
        };
        let mut text = alloc::vec![0u8; request.length as usize];
        self.channel(0).get_data(0, &mut text);
        let grants = decode_grants(&String::from_utf8_lossy(&text));
        let slot = match self.clients.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.clients.len() < MAX_CLIENTS => {
                self.clients.push(None);
                self.clients.len() - 1
            }
            None => return Err(Status::TooMany),
        };
        let mapping = ChannelMapping::map(handle).map_err(|_| Status::BadRequest)?;
        let area = Area::Attached { mapping, handle };
        self.clients[slot] = Some(Client { area, reply: reply_handle, grants, files: Vec::new() });
        Ok(reply(Status::Ok, slot as u64))
    }

    /// vmd detaches a client: its files close, its channel is unmapped and its handles closed.
    fn detach(&mut self, number: u64) -> Result<Reply, Status> {
        let slot = usize::try_from(number).ok().filter(|&n| n != 0).ok_or(Status::BadHandle)?;
        let client = self.clients.get_mut(slot).and_then(Option::take).ok_or(Status::BadHandle)?;
        let _ = sys::handle_close(client.reply);
        if let Area::Attached { mapping, handle } = client.area {
            drop(mapping);
            let _ = sys::handle_close(handle);
        }
        Ok(reply(Status::Ok, 0))
    }

    /// The open file behind a request's handle, and whether it may be written.
    fn file(&mut self, index: usize, handle: u64) -> Result<&mut (File, bool), Status> {
        let slot = usize::try_from(handle).ok().and_then(|h| h.checked_sub(1)).ok_or(Status::BadHandle)?;
        self.client(index).files.get_mut(slot).and_then(Option::as_mut).ok_or(Status::BadHandle)
    }

    fn file_request(&mut self, index: usize, request: &Request) -> Result<Reply, Status> {
        let path = request.path.as_str();
        let grants = &self.client(index).grants;
        let everything = *grants == Grants::All;
        match request.op {
            Op::Stat if !grants.may_read(path) => return Err(Status::Denied),
            Op::Open if !grants.may_read(path) => return Err(Status::Denied),
            Op::Open if request.offset & (open::CREATE | open::WRITE) != 0 && !grants.may_write(path) => {
                return Err(Status::Denied)
            }
            Op::List | Op::Rename | Op::Remove | Op::Mkdir if !everything => return Err(Status::Denied),
            Op::Close => {
                self.file(index, request.handle)?;
                self.client(index).files[request.handle as usize - 1] = None;
                return Ok(reply(Status::Ok, 0));
            }
            _ => {}
        }
        if self.volume.is_none() {
            return Err(Status::NoDatastore);
        }
        match request.op {
            Op::Read => {
                // Disjoint borrows of the service's parts: the file stays in the client's table
                // (no copy of its cluster list per request), and the file system reads straight
                // into the client's window.
                let Service { volume, clients, .. } = self;
                let client = clients[index].as_ref().ok_or(Status::BadHandle)?;
                let slot = usize::try_from(request.handle).ok().and_then(|h| h.checked_sub(1));
                let (file, _) = slot.and_then(|s| client.files.get(s)?.as_ref()).ok_or(Status::BadHandle)?;
                let volume = volume.as_mut().ok_or(Status::NoDatastore)?;
                let len = request.length as usize;
                let n = client.channel().with_data(len, |window| volume.read(file, request.offset, window));
                Ok(reply(Status::Ok, n.map_err(status_of)? as u64))
            }
            Op::Write => {
                // As for Read: the file is written where it is in the client's table (its view,
                // size and first cluster, follows what was done, even on error), straight from
                // the client's window.
                let Service { volume, clients, .. } = self;
                let Client { area, files, .. } = clients[index].as_mut().ok_or(Status::BadHandle)?;
                let slot = usize::try_from(request.handle).ok().and_then(|h| h.checked_sub(1));
                let (file, writable) = slot.and_then(|s| files.get_mut(s)?.as_mut()).ok_or(Status::BadHandle)?;
                if !*writable {
                    return Err(Status::Denied);
                }
                let volume = volume.as_mut().ok_or(Status::NoDatastore)?;
                let len = request.length as usize;
                let result = area
                    .channel()
                    .with_data(len, |data| volume.write(file, request.offset, data).map(|()| data.len() as u64));
                Ok(reply(Status::Ok, result.map_err(status_of)?))
            }
            Op::Truncate => {
                let (mut file, writable) = self.file(index, request.handle)?.clone();
                if !writable {
                    return Err(Status::Denied);
                }
                let result = self.volume()?.truncate(&mut file, request.offset).map(|()| 0);
                // The handle's view (size, first cluster) follows what was done, even on error.
                self.file(index, request.handle)?.0 = file;
                Ok(reply(Status::Ok, result.map_err(status_of)?))
            }
            Op::Open => self.open(index, request),
            _ => self.path_request(index, request),
        }
    }

    fn volume(&mut self) -> Result<&mut DatastoreVolume, Status> {
        self.volume.as_mut().ok_or(Status::NoDatastore)
    }

    fn open(&mut self, index: usize, request: &Request) -> Result<Reply, Status> {
        let path = request.path.as_str();
        let volume = self.volume()?;
        let file = match volume.open(path) {
            Err(Error::NotFound) if request.offset & open::CREATE != 0 => volume.create(path),
            other => other,
        }
        .map_err(status_of)?;
        let writable = request.offset & open::WRITE != 0;
        let files = &mut self.client(index).files;
        let slot = match files.iter().position(Option::is_none) {
            Some(free) => free,
            None if files.len() < MAX_OPEN => {
                files.push(None);
                files.len() - 1
            }
            None => return Err(Status::TooMany),
        };
        let size = file.metadata().len;
        files[slot] = Some((file, writable));
        Ok(Reply { status: Status::Ok, result: slot as u64 + 1, result2: size })
    }

    /// The requests that name paths only (access already checked).
    fn path_request(&mut self, index: usize, request: &Request) -> Result<Reply, Status> {
        let path = request.path.as_str();
        let volume = self.volume()?;
        match request.op {
            Op::Stat => {
                let meta = volume.stat(path).map_err(status_of)?;
                Ok(Reply { status: Status::Ok, result: meta.len, result2: u64::from(meta.is_dir) })
            }
            Op::List => {
                let entries: Vec<Entry> = volume
                    .list(path)
                    .map_err(status_of)?
                    .into_iter()
                    .map(|e| Entry { name: e.name, size: e.metadata.len, is_dir: e.metadata.is_dir })
                    .collect();
                let bytes = encode_entries(&entries);
                if bytes.len() > DATA_MAX {
                    return Err(Status::TooMany);
                }
                Ok(reply(Status::Ok, self.channel(index).put_data(0, &bytes) as u64))
            }
            Op::Flush => volume.flush().map(|()| reply(Status::Ok, 0)).map_err(status_of),
            Op::Rename => volume.rename(path, &request.path2).map(|()| reply(Status::Ok, 0)).map_err(status_of),
            Op::Remove => volume.remove(path).map(|()| reply(Status::Ok, 0)).map_err(status_of),
            Op::Mkdir => volume.mkdir(path).map(|()| reply(Status::Ok, 0)).map_err(status_of),
            _ => Err(Status::BadRequest),
        }
    }
}
