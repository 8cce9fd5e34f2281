//! Value checks that vmd does while parsing: names and their lengths, interface groups, MAC
//! addresses, local prefixes, owners. Each returns the message part of an error (the parser adds
//! file and line) or the normalised value. VM and switch names follow keel-vmlimits, the rule
//! the shell uses too.
//! Does not: look anything up on a host (vmd resolves users, groups and interface types there;
//! Keel has no passwd file and no host interfaces, so names are only checked for form).

use alloc::format;
use alloc::string::{String, ToString};

use keel_net::local::{Prefix4, Prefix6};
use keel_net::MacAddr;

use crate::ast::Owner;
use crate::error::quoted;

/// IF_NAMESIZE is 16 including the NUL.
pub const IF_NAME_MAX: usize = 15;
/// Linux x86 boot protocol: COMMAND_LINE_SIZE is 2048 including the NUL.
pub const CMDLINE_MAX: usize = 2047;
/// RT_TABLEID_MAX.
pub const RDOMAIN_MAX: i64 = 255;

/// A VM's name ([`keel_vmlimits::check_vm_name`]: vm.conf(5)'s rule and vmd's length limit).
pub fn vm_name(name: &str) -> Result<(), String> {
    keel_vmlimits::check_vm_name(name).map_err(|e| e.message("VM name", &quoted(name)))
}

/// A switch's name ([`keel_vmlimits::check_switch_name`]).
pub fn switch_name(name: &str) -> Result<(), String> {
    keel_vmlimits::check_switch_name(name).map_err(|e| e.message("switch name", &quoted(name)))
}

/// A network interface name (`interface tap0`, a switch's `interface bridge0`).
pub fn if_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(String::from("interface name must not be empty"));
    }
    if name.len() > IF_NAME_MAX {
        return Err(format!("interface name {} too long (max {IF_NAME_MAX} bytes)", quoted(name)));
    }
    Ok(())
}

/// vmd's `priv_validgroup`: shorter than IF_NAMESIZE and not ending in a digit (ifconfig(8)).
pub fn group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > IF_NAME_MAX || name.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "invalid group name {}: it must be 1 to {IF_NAME_MAX} bytes and not end with a digit",
            quoted(name)
        ));
    }
    Ok(())
}

/// A file path argument (`disk`, `cdrom`, `boot`, `initrd`): [`keel_vmlimits::check_path`].
pub fn path(what: &str, path: &str) -> Result<(), String> {
    keel_vmlimits::check_path(path).map_err(|e| e.message(&format!("{what} path"), &quoted(path)))
}

/// ether_aton(3), keel-net's [`MacAddr`] rule: six hex octets of one or two digits separated by
/// ':'. Returns the address in lower-case two-digit form.
pub fn lladdr(s: &str) -> Result<String, String> {
    let mac: MacAddr = s.parse().map_err(|e| format!("invalid lladdr {}: {e}", quoted(s)))?;
    Ok(mac.to_string())
}

/// `local prefix`: vmd's `parse_prefix4`, whose rule is keel-net's [`Prefix4`] (the length is 1
/// to 16, 16 if not given, and no bits are set past it), the rule the addresses are computed by.
pub fn prefix4(s: &str) -> Result<(), String> {
    s.parse::<Prefix4>().map(|_| ()).map_err(|e| format!("invalid local prefix {}: {e}", quoted(s)))
}

/// `local inet6 prefix`: vmd's `parse_prefix6`, keel-net's [`Prefix6`] (at most 64, 64 if not
/// given).
pub fn prefix6(s: &str) -> Result<(), String> {
    s.parse::<Prefix6>().map(|_| ()).map_err(|e| format!("invalid local inet6 prefix {}: {e}", quoted(s)))
}

/// `USER`, `USER:GROUP` or `:GROUP` (vmd's `owner_id` from a string).
pub fn owner(s: &str) -> Result<Owner, String> {
    let bad = || format!("invalid owner {}: expected user, user:group or :group", quoted(s));
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, g),
        None => (s, ""),
    };
    if group.contains(':') || (user.is_empty() && group.is_empty()) {
        return Err(bad());
    }
    let some = |x: &str| (!x.is_empty()).then(|| String::from(x));
    Ok(Owner { user: some(user), group: some(group) })
}
