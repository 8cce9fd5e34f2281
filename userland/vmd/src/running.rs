//! Running VMs: starting a VM's monitor process with its control area and notifications, and
//! reading back its status and console. The control area is shared with a process whose guest is
//! hostile, so everything read from it is bounded (keel-vmproto) and treated as text to show.

use alloc::string::String;

use keel_abi::{Handle, Rights, HANDLE_MODULES};
use keel_rt::sys;
use keel_vmproto::ControlArea;

use crate::BIT_CHILD;

/// What to boot: an image, and for Linux an initrd and a command line. Each file is a boot
/// module's name or, starting with `/`, a path on the datastore (`Vmd::locate` decided which).
pub struct Boot {
    pub image: String,
    pub initrd: String,
    pub cmdline: String,
}

pub struct Running {
    pub control: &'static ControlArea,
    pub process: Handle,
    pub pid: u64,
    /// Our notification for this monitor (it waits on it).
    pub to_monitor: Handle,
    pub memory: u64,
    /// The monitor's number as a client of the storage service, when it reads files there.
    pub storage_client: Option<u64>,
    /// Its disks and CD-ROM (for `show`, and so that no other VM writes them).
    pub files: crate::disks::VmFiles,
}

impl Running {
    /// Start `image` with `memory` bytes for VM `id`/`name`. `notify` is vmd's own notification.
    /// `storage`: the handles of the monitor's storage channel (its handles 5 to 7), when its
    /// files are on the datastore.
    pub fn start(
        notify: Handle,
        id: u32,
        name: &str,
        boot: &Boot,
        memory: u64,
        storage: Option<&crate::storage::ClientHandles>,
        files: crate::disks::VmFiles,
    ) -> Result<Running, String> {
        let e = |what: &str, e: keel_abi::Error| alloc::format!("{what}: {e}");
        let (shm, control) = keel_rt::shared::control_area_create().map_err(|x| e("control area", x))?;
        control.configure_storage(&files.disks, &files.cdrom);
        control.configure_linux(id, name, &boot.image, memory, &boot.initrd, &boot.cmdline);
        let to_monitor = sys::notify_create().map_err(|x| e("notification", x))?;
        let mut grants = alloc::vec![
            (HANDLE_MODULES, Rights::READ),
            (notify, Rights::SIGNAL),
            (shm, Rights::MAP),
            (to_monitor, Rights::WAIT)
        ];
        if let Some(client) = storage {
            grants.extend(client.grants());
        }
        let started = sys::process_spawn_with(HANDLE_MODULES, "monitor", notify, BIT_CHILD, &grants);
        let _ = sys::handle_close(shm);
        let (process, pid) = started.map_err(|x| e("cannot start the monitor", x))?;
        Ok(Running { control, process, pid, to_monitor, memory, storage_client: storage.map(|c| c.number), files })
    }

    pub fn ask(&self, bits: u32) {
        self.control.ask(bits);
        let _ = sys::notify_signal(self.to_monitor, 1);
    }

    pub fn reason(&self) -> String {
        let mut buf = [0u8; keel_vmproto::REASON_MAX];
        let n = self.control.reason.get(&mut buf);
        String::from_utf8_lossy(&buf[..n]).chars().filter(|c| !c.is_control()).collect()
    }
}
