//! Value checks that vmd does while parsing: names and their lengths, interface groups, MAC
//! addresses, local prefixes, owners. Each returns the message part of an error (the parser adds
//! file and line) or the normalised value. VM and switch names follow keel-vmlimits, the rule
//! the shell uses too.
//! Does not: look anything up on a host (vmd resolves users, groups and interface types there;
//! Keel has no passwd file and no host interfaces, so names are only checked for form).

use alloc::format;
use alloc::string::String;
use core::net::{Ipv4Addr, Ipv6Addr};

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

/// ether_aton(3): six hex octets of one or two digits separated by ':'. Returns the address in
/// lower-case two-digit form.
pub fn lladdr(s: &str) -> Result<String, String> {
    let bad = || format!("invalid lladdr {}: expected six hex octets like fe:e1:ba:d0:00:01", quoted(s));
    let mut out = String::new();
    let mut n = 0;
    for part in s.split(':') {
        n += 1;
        if n > 6 || part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        if n > 1 {
            out.push(':');
        }
        out.push_str(&format!("{octet:02x}"));
    }
    if n != 6 {
        return Err(bad());
    }
    Ok(out)
}

/// Splits `ADDR[/LEN]`; `LEN` defaults to `default` and must lie in `min..=max`.
fn split_prefix(s: &str, min: u32, max: u32, default: u32) -> Result<(&str, u32), String> {
    match s.rsplit_once('/') {
        None => Ok((s, default)),
        Some((addr, len)) => match len.parse::<u32>() {
            Ok(len) if (min..=max).contains(&len) => Ok((addr, len)),
            _ => Err(format!("prefix length must be {min} to {max}")),
        },
    }
}

/// `local prefix`: vmd's `parse_prefix4`. The length is 1 to 16 (vmd keeps the low 16 bits for
/// the VM and interface numbers), 16 if not given, and the address has no bits outside it.
pub fn prefix4(s: &str) -> Result<(), String> {
    let fail = |why: &str| format!("invalid local prefix {}: {why}", quoted(s));
    let (addr, len) = split_prefix(s, 1, 16, 16).map_err(|e| fail(&e))?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| fail("not an IPv4 address"))?;
    let mask = u32::MAX << (32 - len);
    if u32::from(addr) & !mask != 0 {
        return Err(fail("address has bits set outside the prefix length"));
    }
    Ok(())
}

/// `local inet6 prefix`: vmd's `parse_prefix6`. The length is at most 64, 64 if not given.
pub fn prefix6(s: &str) -> Result<(), String> {
    let fail = |why: &str| format!("invalid local inet6 prefix {}: {why}", quoted(s));
    let (addr, len) = split_prefix(s, 0, 64, 64).map_err(|e| fail(&e))?;
    let addr: Ipv6Addr = addr.parse().map_err(|_| fail("not an IPv6 address"))?;
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    if u128::from(addr) & !mask != 0 {
        return Err(fail("address has bits set outside the prefix length"));
    }
    Ok(())
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
