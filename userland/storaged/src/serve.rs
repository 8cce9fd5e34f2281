//! The storage requests (keel-storeproto) and their answers. Every request is hostile input:
//! paths and handles are checked, lengths were clamped by the channel.
//!
//! What it answers today: `Disks` (the listing of disks.rs). The file requests answer
//! `NoDatastore` until the datastore layer mounts volumes.

use keel_storeproto::{Channel, Op, Reply, Request, Status};

use crate::disks::Disks;

pub struct Service {
    disks: Disks,
}

fn reply(status: Status, result: u64) -> Reply {
    Reply { status, result, result2: 0 }
}

impl Service {
    pub fn new(disks: Disks) -> Service {
        Service { disks }
    }

    pub fn handle(&mut self, channel: &Channel, request: &Request) -> Reply {
        match request.op {
            Op::Disks => {
                let text = self.disks.text();
                let n = channel.put_data(0, text.as_bytes());
                reply(Status::Ok, n as u64)
            }
            _ => reply(Status::NoDatastore, 0),
        }
    }
}
