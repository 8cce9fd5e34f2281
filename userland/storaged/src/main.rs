//! storaged: Keel's storage service, a ring-3 process that vmd starts with four handles: the
//! hardware handle (DEVICE), vmd's reply notification (SIGNAL), the storage channel vmd shares
//! with it (MAP; keel-storeproto) and the notification vmd rings when it posts a request (WAIT).
//!
//! It brings up the disk controllers (disks.rs, over the host drivers in `drivers/`), finds the
//! datastores on them (datastore.rs), then answers requests one at a time (serve.rs): vmd's, and
//! those of the clients vmd attaches (a VM's monitor, a test program), each limited to the files
//! vmd granted it. Any client rings the same request notification; every channel is checked on
//! each wake. Its unsafe code is hal.rs alone (registers, ports, DMA).
#![no_std]
#![no_main]

extern crate alloc;

mod datastore;
mod disks;
mod hal;
mod serve;

use keel_abi::Handle;
use keel_rt::io::debug;
use keel_rt::sys;

/// The handles vmd grants, in order (hal.rs names the first, `HARDWARE`).
const REPLIES: Handle = 2;
const CHANNEL: Handle = 3;
const REQUESTS: Handle = 4;

keel_rt::entry!(run);

fn run() -> i32 {
    let channel = match keel_rt::shared::store_channel_map(CHANNEL) {
        Ok(c) => c,
        Err(e) => {
            debug(format_args!("storaged: no storage channel: {e}"));
            return 1;
        }
    };
    // PCI configuration mechanism #1: ports 0xCF8..0xD00. See: PCI Local Bus 3.0 3.2.2.3.2.
    let mut config = match hal::Ports::open(0xcf8, 8) {
        Ok(ports) => keel_drv_pci::PortConfigSpace::new(ports),
        Err(e) => {
            debug(format_args!("storaged: no access to PCI configuration space: {e}"));
            return 1;
        }
    };
    let mut disks = disks::Disks::probe(&mut config);
    debug(format_args!("storaged: {} disk(s)", disks.len()));
    let mut datastores = datastore::find(&mut disks);
    let volume = if datastores.is_empty() { None } else { Some(datastores.remove(0)) };
    let mut service = serve::Service::new(disks, volume, channel, REPLIES);
    loop {
        // A request posted before the wait has set the bit: the wait returns at once.
        let _ = match service.serve_all() {
            Some(reply) => sys::notify_signal_wait(reply, 1, REQUESTS, None),
            None => sys::notify_wait(REQUESTS, None),
        };
    }
}
