//! The storage requests (keel-storeproto) and their answers, over the disks and the datastore in
//! use. Every request is hostile input: paths are checked by the file system, handles against
//! this table, lengths were clamped by the channel.
//!
//! What it does not do: more than one channel (vmd's), per-client file permissions (the
//! monitors' channels will carry only the files their VM may use), or caching.

use alloc::vec::Vec;

use keel_datastore::{Error, File};
use keel_storeproto::{encode_entries, open, Channel, Entry, Op, Reply, Request, Status, DATA_MAX};

use crate::datastore::DatastoreVolume;
use crate::disks::Disks;

/// The most files open at once on a channel.
const MAX_OPEN: usize = 64;

pub struct Service {
    disks: Disks,
    /// The datastore paths name (the first found), if any.
    volume: Option<DatastoreVolume>,
    files: Vec<Option<File>>,
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
    pub fn new(disks: Disks, volume: Option<DatastoreVolume>) -> Service {
        Service { disks, volume, files: Vec::new() }
    }

    pub fn handle(&mut self, channel: &Channel, request: &Request) -> Reply {
        if request.op == Op::Disks {
            let text = self.disks.text();
            let n = channel.put_data(0, text.as_bytes());
            return reply(Status::Ok, n as u64);
        }
        match self.file_request(channel, request) {
            Ok(reply) => reply,
            Err(status) => reply(status, 0),
        }
    }

    /// The open file behind a request's handle.
    fn file(&mut self, handle: u64) -> Result<&mut File, Status> {
        let slot = usize::try_from(handle).ok().and_then(|h| h.checked_sub(1)).ok_or(Status::BadHandle)?;
        self.files.get_mut(slot).and_then(Option::as_mut).ok_or(Status::BadHandle)
    }

    fn file_request(&mut self, channel: &Channel, request: &Request) -> Result<Reply, Status> {
        let path = request.path.as_str();
        match request.op {
            Op::Close => {
                self.file(request.handle)?;
                self.files[request.handle as usize - 1] = None;
                return Ok(reply(Status::Ok, 0));
            }
            Op::Disks => return Ok(reply(Status::Ok, 0)),
            _ => {}
        }
        let Some(volume) = self.volume.as_mut() else { return Err(Status::NoDatastore) };
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
                Ok(reply(Status::Ok, channel.put_data(0, &bytes) as u64))
            }
            Op::Open => {
                let file = match volume.open(path) {
                    Err(Error::NotFound) if request.offset & open::CREATE != 0 => volume.create(path),
                    other => other,
                }
                .map_err(status_of)?;
                let slot = match self.files.iter().position(Option::is_none) {
                    Some(free) => free,
                    None if self.files.len() < MAX_OPEN => {
                        self.files.push(None);
                        self.files.len() - 1
                    }
                    None => return Err(Status::TooMany),
                };
                let size = file.metadata().len;
                self.files[slot] = Some(file);
                Ok(Reply { status: Status::Ok, result: slot as u64 + 1, result2: size })
            }
            Op::Read => {
                let mut buf = alloc::vec![0u8; request.length as usize];
                let file = self.file(request.handle)?.clone();
                let volume = self.volume.as_mut().ok_or(Status::NoDatastore)?;
                let n = volume.read(&file, request.offset, &mut buf).map_err(status_of)?;
                Ok(reply(Status::Ok, channel.put_data(0, &buf[..n]) as u64))
            }
            Op::Write => {
                let mut data = alloc::vec![0u8; request.length as usize];
                channel.get_data(0, &mut data);
                let mut file = self.file(request.handle)?.clone();
                let volume = self.volume.as_mut().ok_or(Status::NoDatastore)?;
                volume.write(&mut file, request.offset, &data).map_err(status_of)?;
                *self.file(request.handle)? = file;
                Ok(reply(Status::Ok, data.len() as u64))
            }
            Op::Truncate => {
                let mut file = self.file(request.handle)?.clone();
                let volume = self.volume.as_mut().ok_or(Status::NoDatastore)?;
                volume.truncate(&mut file, request.offset).map_err(status_of)?;
                *self.file(request.handle)? = file;
                Ok(reply(Status::Ok, 0))
            }
            Op::Flush => {
                volume.flush().map_err(status_of)?;
                Ok(reply(Status::Ok, 0))
            }
            Op::Rename => {
                volume.rename(path, &request.path2).map_err(status_of)?;
                Ok(reply(Status::Ok, 0))
            }
            Op::Remove => {
                volume.remove(path).map_err(status_of)?;
                Ok(reply(Status::Ok, 0))
            }
            Op::Mkdir => {
                volume.mkdir(path).map_err(status_of)?;
                Ok(reply(Status::Ok, 0))
            }
            Op::Close | Op::Disks => Ok(reply(Status::Ok, 0)),
        }
    }
}
