//! Reading vm.conf: from the datastore when it holds `/etc/vm.conf` (the main file and every
//! `include` are then paths on the datastore, read through the storage service), else from the
//! boot modules, where a path names the module with the same last component (`include
//! "/etc/vm.d/web.conf"` reads module `web.conf`), since the boot media has no file system that
//! vmd could read. docs/vm.conf.md says which is used when.

use alloc::string::String;
use alloc::vec;

use keel_abi::HANDLE_MODULES;
use keel_rt::sys;
use keel_vmconf::{Config, Includer};

/// The largest configuration file read (as the parser's own limit).
const MAX_FILE: u64 = keel_vmconf::MAX_FILE_SIZE as u64;

/// The module name a path refers to.
pub fn module_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The text of a boot module, or why not.
pub fn read_module(path: &str) -> Result<String, String> {
    let name = module_name(path);
    if name.is_empty() || name.len() > keel_abi::MAX_NAME as usize {
        return Err(String::from("bad file name"));
    }
    let size = sys::module_size(HANDLE_MODULES, name).map_err(|e| match e {
        keel_abi::Error::NotFound => String::from("no such file on the boot media"),
        e => alloc::format!("{e}"),
    })?;
    if size > MAX_FILE {
        return Err(alloc::format!("file too large ({size} bytes)"));
    }
    let mut bytes = vec![0u8; size as usize];
    let mut done = 0;
    while done < bytes.len() {
        let n = sys::module_read(HANDLE_MODULES, name, done as u64, &mut bytes[done..])
            .map_err(|e| alloc::format!("{e}"))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    String::from_utf8(bytes).map_err(|_| String::from("not UTF-8 text"))
}

struct ModuleIncluder;

impl Includer for ModuleIncluder {
    fn read(&mut self, path: &str) -> Result<String, String> {
        read_module(path)
    }
}

/// Parse the configuration file `path` from the boot modules. The error is one line naming file
/// and line.
pub fn load(path: &str) -> Result<Config, String> {
    let text = read_module(path).map_err(|e| alloc::format!("{path}: {e}"))?;
    keel_vmconf::parse(module_name(path), &text, &mut ModuleIncluder).map_err(|e| alloc::format!("{e}"))
}

/// Files on the datastore, through the storage service.
struct DatastoreIncluder<'a>(&'a mut keel_rt::storage::StorageClient);

impl Includer for DatastoreIncluder<'_> {
    fn read(&mut self, path: &str) -> Result<String, String> {
        let bytes = self.0.read_file(path, MAX_FILE)?;
        String::from_utf8(bytes).map_err(|_| String::from("not UTF-8 text"))
    }
}

/// Parse the configuration file `path` (absolute) from the datastore.
pub fn load_from_datastore(storage: &mut keel_rt::storage::StorageClient, path: &str) -> Result<Config, String> {
    let mut includer = DatastoreIncluder(storage);
    let text = includer.read(path).map_err(|e| alloc::format!("{path}: {e}"))?;
    keel_vmconf::parse(path, &text, &mut includer).map_err(|e| alloc::format!("{e}"))
}
