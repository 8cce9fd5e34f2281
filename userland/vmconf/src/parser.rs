//! Recursive-descent parser for the grammar of vmd's parse.y, building a [`Config`].
//!
//! Statements are separated by newlines. Inside `vm` and `switch` blocks each option ends at a
//! newline, and the last one may instead be followed directly by `}` (so `vm "a" { memory 1G }`
//! is fine on one line); blank lines may appear anywhere. An interface's options go either in
//! braces (`interface { switch "uplink" up }`, separated by blanks or newlines) or inline
//! (`interface switch "uplink", up`, optional commas); `allow instance` takes one option or a
//! braced list separated by commas or newlines. Where parse.y has `string`, adjacent strings are
//! joined (`"a" "b"` is `"ab"`), as in vmd.
//!
//! Deliberately more lenient than vmd: empty blocks (`vm "a" {}`) are accepted, a macro value may
//! be a number (`n = 2`), and a trailing comma in `allow instance { ... }` is allowed. Stricter:
//! the first error ends the parse, an included file must be complete in itself (a block cannot
//! start in one file and end in another), duplicate vm names are an error (vmd skips the second),
//! and an instance's parent must be defined above it.
//! Does not: merge an instance with its parent, or require a switch's `interface` (Keel's
//! switches live in vmd, not on a host bridge).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::ast::{Agentx, BootDevice, Config, Disk, DiskFormat, Interface, Owner, Switch, VmConfig};
use crate::check;
use crate::error::{plain, quoted, Error};
use crate::lexer::{lookup, Kw, Lexer, Macros, Tok, Token};
use crate::{
    Includer, MAX_FILE_SIZE, MAX_INCLUDED_FILES, MAX_INCLUDE_DEPTH, MAX_MACROS, MAX_SWITCHES, MAX_TOKEN_LEN,
    MAX_TOTAL_INPUT, MAX_VMS,
};
use keel_vmlimits::{check_memory, parse_memory, MemoryError, ScanError, MAX_DISKS_PER_VM, MAX_NICS_PER_VM};

const VM_OPTIONS: &str =
    "allow, boot, cdrom, cmdline, disable, disk, enable, initrd, interface, interfaces, local, memory, owner, sev, seves";
const SWITCH_OPTIONS: &str = "disable, enable, group, interface, locked lladdr, rdomain, up, down";
const IFACE_OPTIONS: &str = "switch, group, lladdr, locked lladdr, rdomain, up, down";
const INSTANCE_OPTIONS: &str = "boot, cdrom, disk, instance, interface, memory, owner";

/// One file being read.
struct Src<'a> {
    name: &'a str,
    lexer: Lexer<'a>,
    peeked: Option<Token>,
}

impl Src<'_> {
    fn error(&self, line: u32, msg: impl Into<String>) -> Error {
        Error::new(self.name, line, msg)
    }

    /// "syntax error: expected `what`, found `tok`".
    fn expected(&self, what: &str, t: &Token) -> Error {
        self.error(t.line, format!("syntax error: expected {what}, found {}", t.tok))
    }
}

pub(crate) struct Parser<'i> {
    includer: &'i mut dyn Includer,
    macros: Macros,
    /// Characters produced by macro expansion so far (bounded).
    expanded: usize,
    config: Config,
    /// Names of the files being read, outermost first (for loop detection and depth).
    stack: Vec<String>,
    files: usize,
    bytes: usize,
}

/// A VM block's state while its options are read.
struct VmState {
    vm: VmConfig,
    open_line: u32,
    interfaces_count: Option<usize>,
}

impl<'i> Parser<'i> {
    pub(crate) fn new(includer: &'i mut dyn Includer) -> Self {
        Self {
            includer,
            macros: Macros::new(),
            expanded: 0,
            config: Config::default(),
            stack: Vec::new(),
            files: 0,
            bytes: 0,
        }
    }

    pub(crate) fn finish(self) -> Config {
        self.config
    }

    fn next(&mut self, s: &mut Src) -> Result<Token, Error> {
        match s.peeked.take() {
            Some(t) => Ok(t),
            None => s.lexer.next(&self.macros, &mut self.expanded),
        }
    }

    fn peek(&mut self, s: &mut Src) -> Result<Tok, Error> {
        let t = match s.peeked.take() {
            Some(t) => t,
            None => s.lexer.next(&self.macros, &mut self.expanded)?,
        };
        Ok(s.peeked.insert(t).tok.clone())
    }

    fn skip_newlines(&mut self, s: &mut Src) -> Result<(), Error> {
        while self.peek(s)? == Tok::Newline {
            self.next(s)?;
        }
        Ok(())
    }

    fn expect_kw(&mut self, s: &mut Src, kw: Kw, after: &str) -> Result<(), Error> {
        let t = self.next(s)?;
        if t.tok == Tok::Kw(kw) {
            Ok(())
        } else {
            Err(s.expected(&format!("'{}' after {after}", kw.as_str()), &t))
        }
    }

    /// parse.y's `string`: one or more adjacent strings, joined.
    fn string(&mut self, s: &mut Src, what: &str) -> Result<String, Error> {
        let t = self.next(s)?;
        let Tok::Str(mut out) = t.tok else {
            return Err(s.expected(what, &t));
        };
        while let Tok::Str(more) = self.peek(s)? {
            let t = self.next(s)?;
            if out.len() + more.len() > MAX_TOKEN_LEN {
                return Err(s.error(t.line, format!("syntax error: string too long (max {MAX_TOKEN_LEN} bytes)")));
            }
            out.push_str(&more);
        }
        Ok(out)
    }

    /// A single string token (parse.y's `STRING`).
    fn one_string(&mut self, s: &mut Src, what: &str) -> Result<(String, u32), Error> {
        let t = self.next(s)?;
        match t.tok {
            Tok::Str(v) => Ok((v, t.line)),
            _ => Err(s.expected(what, &t)),
        }
    }

    fn number(&mut self, s: &mut Src, what: &str) -> Result<(i64, u32), Error> {
        let t = self.next(s)?;
        match t.tok {
            Tok::Num(n) => Ok((n, t.line)),
            _ => Err(s.expected(what, &t)),
        }
    }

    /// A statement ends at a newline or at the end of the file.
    fn end_of_statement(&mut self, s: &mut Src, after: &str) -> Result<(), Error> {
        match self.peek(s)? {
            Tok::Newline => {
                self.next(s)?;
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => {
                let t = self.next(s)?;
                Err(s.expected(&format!("end of line after {after}"), &t))
            }
        }
    }

    /// An option inside a block ends at a newline, or just before the closing `}`.
    fn end_of_option(&mut self, s: &mut Src, after: &str) -> Result<(), Error> {
        match self.peek(s)? {
            Tok::Newline => {
                self.next(s)?;
                Ok(())
            }
            Tok::Char('}') | Tok::Eof => Ok(()),
            _ => {
                let t = self.next(s)?;
                Err(s.expected(&format!("end of line or '}}' after {after}"), &t))
            }
        }
    }

    /// Reads one whole file (the main one or an included one).
    pub(crate) fn parse_file(&mut self, name: &str, text: &str) -> Result<(), Error> {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(text.len());
        if text.len() > MAX_FILE_SIZE {
            return Err(Error::new(name, 1, format!("file too large ({} bytes, max {MAX_FILE_SIZE})", text.len())));
        }
        self.stack.push(String::from(name));
        let mut s = Src { name, lexer: Lexer::new(name, text), peeked: None };
        let r = self.statements(&mut s);
        self.stack.pop();
        r
    }

    fn statements(&mut self, s: &mut Src) -> Result<(), Error> {
        loop {
            let t = self.next(s)?;
            let what = match t.tok {
                Tok::Newline => continue,
                Tok::Eof => return Ok(()),
                Tok::Kw(Kw::Include) => {
                    self.include(s, t.line)?;
                    continue;
                }
                Tok::Kw(Kw::Vm) => {
                    self.vm(s, t.line)?;
                    "vm block"
                }
                Tok::Kw(Kw::Switch) => {
                    self.switch(s, t.line)?;
                    "switch block"
                }
                Tok::Kw(Kw::Local) => {
                    self.local(s)?;
                    "local option"
                }
                Tok::Kw(Kw::Socket) => {
                    self.expect_kw(s, Kw::Owner, "'socket'")?;
                    self.config.globals.socket_owner = Some(self.owner_id(s)?);
                    "socket owner"
                }
                Tok::Kw(Kw::Staggered) => {
                    self.staggered(s)?;
                    "staggered start"
                }
                Tok::Kw(Kw::Agentx) => {
                    self.agentx(s)?;
                    "agentx"
                }
                Tok::Str(name) => {
                    if self.peek(s)? != Tok::Char('=') {
                        return Err(s.error(t.line, format!("syntax error: unknown statement {}", quoted(&name))));
                    }
                    self.next(s)?;
                    self.varset(s, &name, t.line)?;
                    "macro definition"
                }
                _ => {
                    return Err(s.expected(
                        "a statement (vm, switch, include, local, socket, staggered, agentx or name = value)",
                        &t,
                    ))
                }
            };
            self.end_of_statement(s, what)?;
        }
    }

    fn include(&mut self, s: &mut Src, line: u32) -> Result<(), Error> {
        let path = self.string(s, "a file name after 'include'")?;
        self.end_of_statement(s, "include")?;
        if self.stack.contains(&path) {
            let mut chain = String::new();
            for f in &self.stack {
                chain.push_str(&quoted(f));
                chain.push_str(" -> ");
            }
            chain.push_str(&quoted(&path));
            return Err(s.error(line, format!("include loop: {chain}")));
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(s.error(line, format!("includes nested too deeply (max {MAX_INCLUDE_DEPTH} levels)")));
        }
        if self.files > MAX_INCLUDED_FILES {
            return Err(s.error(line, format!("too many included files (max {MAX_INCLUDED_FILES})")));
        }
        let text = self
            .includer
            .read(&path)
            .map_err(|why| s.error(line, format!("failed to include file {}: {why}", quoted(&path))))?;
        if text.len() > MAX_FILE_SIZE {
            return Err(s.error(
                line,
                format!("included file {} too large ({} bytes, max {MAX_FILE_SIZE})", quoted(&path), text.len()),
            ));
        }
        if self.bytes.saturating_add(text.len()) > MAX_TOTAL_INPUT {
            return Err(s.error(line, format!("included files too large in all (max {MAX_TOTAL_INPUT} bytes)")));
        }
        self.parse_file(&path, &text)
    }

    /// `name = value`: vmd's `varset`.
    fn varset(&mut self, s: &mut Src, name: &str, line: u32) -> Result<(), Error> {
        let t = self.next(s)?;
        let value = match t.tok {
            Tok::Str(v) => v,
            Tok::Num(n) => n.to_string(),
            _ => return Err(s.expected(&format!("a value after '{} ='", quoted(name)), &t)),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(s.error(line, format!("invalid macro name {}: use only letters, digits and '_'", quoted(name))));
        }
        if lookup(name).is_some() {
            return Err(s.error(line, format!("invalid macro name {}: it is a reserved word", quoted(name))));
        }
        if self.macros.len() >= MAX_MACROS && !self.macros.contains_key(name) {
            return Err(s.error(line, format!("too many macros (max {MAX_MACROS})")));
        }
        self.macros.insert(String::from(name), value);
        Ok(())
    }

    fn local(&mut self, s: &mut Src) -> Result<(), Error> {
        let t = self.next(s)?;
        match t.tok {
            Tok::Kw(Kw::Inet6) => {
                self.config.globals.local_inet6 = true;
                if self.peek(s)? == Tok::Kw(Kw::Prefix) {
                    self.next(s)?;
                    let (p, line) = self.one_string(s, "an IPv6 prefix after 'local inet6 prefix'")?;
                    check::prefix6(&p).map_err(|e| s.error(line, e))?;
                    self.config.globals.local_prefix6 = Some(p);
                }
                Ok(())
            }
            Tok::Kw(Kw::Prefix) => {
                let (p, line) = self.one_string(s, "an IPv4 prefix after 'local prefix'")?;
                check::prefix4(&p).map_err(|e| s.error(line, e))?;
                self.config.globals.local_prefix = Some(p);
                Ok(())
            }
            Tok::Kw(Kw::Interface) => {
                Err(s.error(t.line, "syntax error: 'local interface' is only valid inside a vm block"))
            }
            _ => Err(s.expected("'prefix' or 'inet6' after 'local'", &t)),
        }
    }

    fn staggered(&mut self, s: &mut Src) -> Result<(), Error> {
        self.expect_kw(s, Kw::Start, "'staggered'")?;
        self.expect_kw(s, Kw::Parallel, "'staggered start'")?;
        let (parallel, pline) = self.number(s, "a number after 'staggered start parallel'")?;
        self.expect_kw(s, Kw::Delay, "'staggered start parallel N'")?;
        let (delay, dline) = self.number(s, "a number of seconds after 'delay'")?;
        let parallel = u32::try_from(parallel).ok().filter(|&p| p > 0).ok_or_else(|| {
            s.error(pline, format!("invalid staggered start parallelism {parallel}: must be at least 1"))
        })?;
        let delay = u32::try_from(delay)
            .map_err(|_| s.error(dline, format!("invalid staggered start delay {delay}: must be 0 or more seconds")))?;
        self.config.globals.staggered_start = Some((parallel, delay));
        Ok(())
    }

    fn agentx(&mut self, s: &mut Src) -> Result<(), Error> {
        let mut ax = Agentx::default();
        loop {
            match self.peek(s)? {
                Tok::Kw(Kw::Context) => {
                    self.next(s)?;
                    let (c, line) = self.one_string(s, "a context name after 'context'")?;
                    if c.len() > 32 {
                        return Err(s.error(line, "agentx context too long (max 32 bytes)"));
                    }
                    ax.context = Some(c);
                }
                Tok::Kw(Kw::Path) => {
                    self.next(s)?;
                    let (p, line) = self.one_string(s, "a socket path after 'path'")?;
                    if !p.starts_with('/') {
                        return Err(s.error(line, format!("agentx path {} is not absolute", quoted(&p))));
                    }
                    if p.len() > 103 {
                        return Err(s.error(line, "agentx path too long (max 103 bytes)"));
                    }
                    ax.path = Some(p);
                }
                _ => break,
            }
        }
        self.config.globals.agentx = Some(ax);
        Ok(())
    }

    /// vmd's `owner_id`: a uid, `user`, `user:group` or `:group`.
    fn owner_id(&mut self, s: &mut Src) -> Result<Owner, Error> {
        let t = self.next(s)?;
        match t.tok {
            Tok::Num(n) if (0..=i64::from(u32::MAX)).contains(&n) => {
                Ok(Owner { user: Some(n.to_string()), group: None })
            }
            Tok::Num(n) => Err(s.error(t.line, format!("invalid owner uid {n}"))),
            Tok::Str(o) => check::owner(&o).map_err(|e| s.error(t.line, e)),
            _ => Err(s.expected("user, user:group or :group after 'owner'", &t)),
        }
    }

    /// Block opened: `open_line` is where, `what` names it in the "missing '}'" message.
    fn missing_brace(s: &Src, t: &Token, what: &str, open_line: u32) -> Error {
        s.error(t.line, format!("syntax error: missing '}}' to close {what} opened at line {open_line}"))
    }

    fn switch(&mut self, s: &mut Src, line: u32) -> Result<(), Error> {
        let name = self.string(s, "a switch name after 'switch'")?;
        check::switch_name(&name).map_err(|e| s.error(line, e))?;
        if let Some(prev) = self.config.switch(&name) {
            return Err(s.error(
                line,
                format!("switch {} is already defined at {}:{}", quoted(&name), plain(&prev.file), prev.line),
            ));
        }
        if self.config.switches.len() >= MAX_SWITCHES {
            return Err(s.error(line, format!("too many switches (max {MAX_SWITCHES})")));
        }
        let t = self.next(s)?;
        if t.tok != Tok::Char('{') {
            return Err(s.expected("'{' after switch name", &t));
        }
        let what = format!("switch {}", quoted(&name));
        let mut sw = Switch { name, file: String::from(s.name), line, ..Switch::default() };
        loop {
            let t = self.next(s)?;
            let opt = match t.tok {
                Tok::Newline => continue,
                Tok::Char('}') => break,
                Tok::Eof | Tok::Kw(Kw::Vm | Kw::Switch) => return Err(Self::missing_brace(s, &t, &what, line)),
                Tok::Kw(Kw::Enable) => {
                    sw.enabled = true;
                    "'enable'"
                }
                Tok::Kw(Kw::Disable) => {
                    sw.enabled = false;
                    "'disable'"
                }
                Tok::Kw(Kw::Group) => {
                    let g = self.string(s, "a group name after 'group'")?;
                    check::group_name(&g).map_err(|e| s.error(t.line, e))?;
                    sw.group = Some(g);
                    "'group'"
                }
                Tok::Kw(Kw::Interface) => {
                    let i = self.string(s, "an interface name after 'interface'")?;
                    check::if_name(&i).map_err(|e| s.error(t.line, format!("switch interface: {e}")))?;
                    sw.interfaces.push(i);
                    "'interface'"
                }
                Tok::Kw(Kw::Locked) => {
                    self.expect_kw(s, Kw::Lladdr, "'locked'")?;
                    sw.locked_lladdr = true;
                    "'locked lladdr'"
                }
                Tok::Kw(Kw::Rdomain) => {
                    sw.rdomain = Some(self.rdomain(s)?);
                    "'rdomain'"
                }
                Tok::Kw(Kw::Up) => {
                    sw.up = Some(true);
                    "'up'"
                }
                Tok::Kw(Kw::Down) => {
                    sw.up = Some(false);
                    "'down'"
                }
                Tok::Str(ref o) => {
                    return Err(s.error(
                        t.line,
                        format!("syntax error: unknown switch option {} (expected {SWITCH_OPTIONS})", quoted(o)),
                    ))
                }
                _ => return Err(s.expected("a switch option or '}'", &t)),
            };
            self.end_of_option(s, opt)?;
        }
        self.config.switches.push(sw);
        Ok(())
    }

    fn rdomain(&mut self, s: &mut Src) -> Result<u32, Error> {
        let (n, line) = self.number(s, "a routing domain number after 'rdomain'")?;
        if !(0..=check::RDOMAIN_MAX).contains(&n) {
            return Err(s.error(line, format!("invalid rdomain {n} (must be 0 to {})", check::RDOMAIN_MAX)));
        }
        Ok(n as u32)
    }

    fn vm(&mut self, s: &mut Src, line: u32) -> Result<(), Error> {
        let first = self.string(s, "a vm name after 'vm'")?;
        let (name, parent) = if self.peek(s)? == Tok::Kw(Kw::Instance) {
            self.next(s)?;
            let name = self.string(s, "an instance name after 'instance'")?;
            (name, Some(first))
        } else {
            (first, None)
        };
        check::vm_name(&name).map_err(|e| s.error(line, e))?;
        if let Some(prev) = self.config.vm(&name) {
            return Err(s.error(
                line,
                format!("vm {} is already defined at {}:{}", quoted(&name), plain(&prev.file), prev.line),
            ));
        }
        if let Some(parent) = &parent {
            check::vm_name(parent).map_err(|e| s.error(line, format!("instance parent: {e}")))?;
            if self.config.vm(parent).is_none() {
                return Err(s.error(
                    line,
                    format!("vm {}: instance parent {} is not defined above", quoted(&name), quoted(parent)),
                ));
            }
        }
        if self.config.vms.len() >= MAX_VMS {
            return Err(s.error(line, format!("too many vms (max {MAX_VMS})")));
        }
        let t = self.next(s)?;
        if t.tok != Tok::Char('{') {
            return Err(s.expected("'{' after vm name", &t));
        }
        let vm = VmConfig { name, file: String::from(s.name), line, instance_of: parent, ..VmConfig::default() };
        let mut st = VmState { vm, open_line: line, interfaces_count: None };
        loop {
            let t = self.next(s)?;
            let opt = match t.tok {
                Tok::Newline => continue,
                Tok::Char('}') => break,
                Tok::Eof => {
                    let what = format!("vm {}", quoted(&st.vm.name));
                    return Err(Self::missing_brace(s, &t, &what, st.open_line));
                }
                Tok::Kw(Kw::Vm | Kw::Switch) => {
                    let what = format!("vm {}", quoted(&st.vm.name));
                    return Err(Self::missing_brace(s, &t, &what, st.open_line));
                }
                Tok::Kw(kw) => self.vm_option(s, &mut st, kw, t.line)?,
                Tok::Str(ref o) => {
                    return Err(s.error(
                        t.line,
                        format!("syntax error: unknown vm option {} (expected {VM_OPTIONS})", quoted(o)),
                    ))
                }
                _ => return Err(s.expected("a vm option or '}'", &t)),
            };
            self.end_of_option(s, opt)?;
        }
        let mut vm = st.vm;
        let want = st.interfaces_count.unwrap_or(0);
        while vm.interfaces.len() < want {
            vm.interfaces.push(Interface::default());
        }
        self.config.vms.push(vm);
        Ok(())
    }

    /// One option in a vm block, `kw` already read. Returns how to name it in a later error.
    fn vm_option(&mut self, s: &mut Src, st: &mut VmState, kw: Kw, line: u32) -> Result<&'static str, Error> {
        let vm_err = |s: &Src, line: u32, msg: &str, name: &str| s.error(line, format!("vm {}: {msg}", quoted(name)));
        let vm = &mut st.vm;
        match kw {
            Kw::Enable => vm.enabled = true,
            Kw::Disable => vm.enabled = false,
            Kw::Sev => vm.sev = true,
            Kw::Seves => {
                vm.sev = true;
                vm.seves = true;
            }
            Kw::Disk => {
                let path = self.string(s, "a disk image path after 'disk'")?;
                check::path("disk", &path).map_err(|e| vm_err(s, line, &e, &vm.name))?;
                let mut format = None;
                if self.peek(s)? == Tok::Kw(Kw::Format) {
                    self.next(s)?;
                    let f = self.string(s, "a disk format (qcow2 or raw) after 'format'")?;
                    format = Some(match f.to_ascii_lowercase().as_str() {
                        "raw" => DiskFormat::Raw,
                        "qcow2" => DiskFormat::Qcow2,
                        _ => {
                            let msg = format!("unrecognized disk format {} (expected qcow2 or raw)", quoted(&f));
                            return Err(vm_err(s, line, &msg, &vm.name));
                        }
                    });
                }
                if vm.disks.len() >= MAX_DISKS_PER_VM {
                    return Err(vm_err(s, line, &format!("too many disks (max {MAX_DISKS_PER_VM})"), &vm.name));
                }
                vm.disks.push(Disk { path, format });
                return Ok("'disk'");
            }
            Kw::Local => {
                self.expect_kw(s, Kw::Interface, "'local' in a vm block")?;
                self.interface(s, vm, true, line)?;
                return Ok("'local interface'");
            }
            Kw::Interface => {
                self.interface(s, vm, false, line)?;
                return Ok("'interface'");
            }
            Kw::Boot => {
                if self.peek(s)? == Tok::Kw(Kw::Device) {
                    self.next(s)?;
                    let t = self.next(s)?;
                    vm.boot_device = Some(match t.tok {
                        Tok::Kw(Kw::Cdrom) => BootDevice::Cdrom,
                        Tok::Kw(Kw::Disk) => BootDevice::Disk,
                        Tok::Kw(Kw::Net) => BootDevice::Net,
                        _ => return Err(s.expected("cdrom, disk or net after 'boot device'", &t)),
                    });
                    return Ok("'boot device'");
                }
                let path = self.string(s, "a kernel path or 'device' after 'boot'")?;
                if vm.boot.is_some() {
                    return Err(vm_err(s, line, "boot specified more than once", &vm.name));
                }
                check::path("boot", &path).map_err(|e| vm_err(s, line, &e, &vm.name))?;
                vm.boot = Some(path);
                return Ok("'boot'");
            }
            Kw::Cdrom => {
                let path = self.string(s, "an ISO image path after 'cdrom'")?;
                if vm.cdrom.is_some() {
                    return Err(vm_err(s, line, "cdrom specified more than once", &vm.name));
                }
                check::path("cdrom", &path).map_err(|e| vm_err(s, line, &e, &vm.name))?;
                vm.cdrom = Some(path);
                return Ok("'cdrom'");
            }
            Kw::Initrd => {
                let path = self.string(s, "an initrd path after 'initrd'")?;
                if vm.initrd.is_some() {
                    return Err(vm_err(s, line, "initrd specified more than once", &vm.name));
                }
                check::path("initrd", &path).map_err(|e| vm_err(s, line, &e, &vm.name))?;
                vm.initrd = Some(path);
                return Ok("'initrd'");
            }
            Kw::Cmdline => {
                let (mut cmdline, _) = self.one_string(s, "a quoted kernel command line after 'cmdline'")?;
                let mut too_long = cmdline.len() > check::CMDLINE_MAX;
                while let Tok::Str(more) = self.peek(s)? {
                    self.next(s)?;
                    if !too_long {
                        cmdline.push(' ');
                        cmdline.push_str(&more);
                        too_long = cmdline.len() > check::CMDLINE_MAX;
                    }
                }
                if vm.cmdline.is_some() {
                    return Err(vm_err(s, line, "cmdline specified more than once", &vm.name));
                }
                if too_long {
                    let msg = format!("cmdline too long (max {} bytes)", check::CMDLINE_MAX);
                    return Err(vm_err(s, line, &msg, &vm.name));
                }
                vm.cmdline = Some(cmdline);
                return Ok("'cmdline'");
            }
            Kw::Interfaces => {
                let (n, nline) = self.number(s, "a count after 'interfaces'")?;
                if st.interfaces_count.is_some() {
                    return Err(vm_err(s, line, "interfaces specified more than once", &vm.name));
                }
                if !(0..=MAX_NICS_PER_VM as i64).contains(&n) {
                    let msg = format!("invalid interfaces count {n} (must be 0 to {MAX_NICS_PER_VM})");
                    return Err(vm_err(s, nline, &msg, &vm.name));
                }
                st.interfaces_count = Some(n as usize);
                return Ok("'interfaces'");
            }
            Kw::Memory => {
                let t = self.next(s)?;
                let size = match &t.tok {
                    // The same rule as `start -m` (keel-vmlimits); a number is bytes.
                    Tok::Num(n) => u64::try_from(*n)
                        .map_err(|_| MemoryError::Invalid(ScanError::Negative))
                        .and_then(check_memory)
                        .map_err(|e| e.message(&quoted(&n.to_string()))),
                    Tok::Str(v) => parse_memory(v).map_err(|e| e.message(&quoted(v))),
                    _ => return Err(s.expected("a size (e.g. 512M or 1G) after 'memory'", &t)),
                };
                if vm.memory.is_some() {
                    return Err(vm_err(s, line, "memory specified more than once", &vm.name));
                }
                vm.memory = Some(size.map_err(|e| vm_err(s, t.line, &e, &vm.name))?);
                return Ok("'memory'");
            }
            Kw::Owner => {
                vm.owner = Some(self.owner_id(s)?);
                return Ok("'owner'");
            }
            Kw::Allow => {
                self.expect_kw(s, Kw::Instance, "'allow'")?;
                self.allow_instance(s, vm)?;
                return Ok("'allow instance'");
            }
            other => {
                return Err(s.error(
                    line,
                    format!("syntax error: '{}' is not a vm option (expected {VM_OPTIONS})", other.as_str()),
                ))
            }
        }
        Ok(match kw {
            Kw::Enable => "'enable'",
            Kw::Disable => "'disable'",
            Kw::Sev => "'sev'",
            _ => "'seves'",
        })
    }

    /// `[local] interface [NAME] [OPTIONS]`, the keywords already read.
    fn interface(&mut self, s: &mut Src, vm: &mut VmConfig, local: bool, line: u32) -> Result<(), Error> {
        if vm.interfaces.len() >= MAX_NICS_PER_VM {
            return Err(s.error(line, format!("vm {}: too many interfaces (max {MAX_NICS_PER_VM})", quoted(&vm.name))));
        }
        let mut iface = Interface { local, ..Interface::default() };
        if let Tok::Str(name) = self.peek(s)? {
            let t = self.next(s)?;
            check::if_name(&name).map_err(|e| s.error(t.line, e))?;
            iface.name = Some(name);
        }
        if self.peek(s)? == Tok::Char('{') {
            self.next(s)?;
            loop {
                match self.peek(s)? {
                    Tok::Newline => {
                        self.next(s)?;
                    }
                    Tok::Char('}') => {
                        self.next(s)?;
                        break;
                    }
                    Tok::Eof => {
                        let t = self.next(s)?;
                        return Err(Self::missing_brace(s, &t, "interface options", line));
                    }
                    _ => self.iface_option(s, &mut iface, true)?,
                }
            }
        } else {
            while is_iface_option(&self.peek(s)?) {
                self.iface_option(s, &mut iface, false)?;
                if self.peek(s)? == Tok::Char(',') {
                    self.next(s)?;
                }
            }
        }
        vm.interfaces.push(iface);
        Ok(())
    }

    fn iface_option(&mut self, s: &mut Src, iface: &mut Interface, braced: bool) -> Result<(), Error> {
        let t = self.next(s)?;
        match t.tok {
            Tok::Kw(Kw::Switch) => {
                let sw = self.string(s, "a switch name after 'switch'")?;
                check::switch_name(&sw).map_err(|e| s.error(t.line, e))?;
                iface.switch = Some(sw);
            }
            Tok::Kw(Kw::Group) => {
                let g = self.string(s, "a group name after 'group'")?;
                check::group_name(&g).map_err(|e| s.error(t.line, e))?;
                iface.group = Some(g);
            }
            Tok::Kw(Kw::Locked) => {
                self.expect_kw(s, Kw::Lladdr, "'locked'")?;
                iface.locked_lladdr = true;
                self.lladdr(s, iface)?;
            }
            Tok::Kw(Kw::Lladdr) => self.lladdr(s, iface)?,
            Tok::Kw(Kw::Rdomain) => iface.rdomain = Some(self.rdomain(s)?),
            Tok::Kw(Kw::Up) => iface.up = Some(true),
            Tok::Kw(Kw::Down) => iface.up = Some(false),
            Tok::Str(ref o) if braced => {
                return Err(s.error(
                    t.line,
                    format!("syntax error: unknown interface option {} (expected {IFACE_OPTIONS})", quoted(o)),
                ))
            }
            _ if braced => return Err(s.expected("an interface option or '}'", &t)),
            _ => return Err(s.expected("an interface option", &t)),
        }
        Ok(())
    }

    /// The optional address after `lladdr`.
    fn lladdr(&mut self, s: &mut Src, iface: &mut Interface) -> Result<(), Error> {
        if let Tok::Str(addr) = self.peek(s)? {
            let t = self.next(s)?;
            iface.lladdr = Some(check::lladdr(&addr).map_err(|e| s.error(t.line, e))?);
        }
        Ok(())
    }

    /// `allow instance FLAG` or `allow instance { FLAG, FLAG ... }`, the keywords already read.
    fn allow_instance(&mut self, s: &mut Src, vm: &mut VmConfig) -> Result<(), Error> {
        if self.peek(s)? != Tok::Char('{') {
            return self.instance_flag(s, vm);
        }
        let open = self.next(s)?.line;
        self.skip_newlines(s)?;
        loop {
            match self.peek(s)? {
                Tok::Char('}') => {
                    self.next(s)?;
                    return Ok(());
                }
                Tok::Eof => {
                    let t = self.next(s)?;
                    return Err(Self::missing_brace(s, &t, "allow instance", open));
                }
                _ => self.instance_flag(s, vm)?,
            }
            match self.peek(s)? {
                Tok::Char(',') => {
                    self.next(s)?;
                    self.skip_newlines(s)?;
                }
                Tok::Newline => self.skip_newlines(s)?,
                Tok::Char('}') | Tok::Eof => {}
                _ => {
                    let t = self.next(s)?;
                    return Err(s.expected("',' or end of line between allow instance options", &t));
                }
            }
        }
    }

    fn instance_flag(&mut self, s: &mut Src, vm: &mut VmConfig) -> Result<(), Error> {
        let t = self.next(s)?;
        let flag = match t.tok {
            Tok::Kw(kw @ (Kw::Boot | Kw::Memory | Kw::Interface | Kw::Disk | Kw::Cdrom | Kw::Instance)) => kw.as_str(),
            Tok::Kw(Kw::Owner) => {
                vm.instance_owner = Some(self.owner_id(s)?);
                "owner"
            }
            _ => return Err(s.expected(&format!("an allow instance option ({INSTANCE_OPTIONS})"), &t)),
        };
        if !vm.allow_instance.iter().any(|f| f == flag) {
            vm.allow_instance.push(String::from(flag));
        }
        Ok(())
    }
}

fn is_iface_option(t: &Tok) -> bool {
    matches!(t, Tok::Kw(Kw::Switch | Kw::Group | Kw::Locked | Kw::Lladdr | Kw::Rdomain | Kw::Up | Kw::Down))
}
