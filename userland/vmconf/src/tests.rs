//! Host tests: the OpenBSD FAQ and vm.conf(5) examples, every statement and option, the lexer's
//! corners (macros, continuation, comments, quoting), every error message with its line, the
//! limits, includes through a fake [`Includer`], and `diff`.

use super::*;
use alloc::string::ToString;
use std::collections::BTreeMap;
use std::format;
use std::vec;
use std::vec::Vec;

/// An in-memory file system for `include`.
#[derive(Default)]
struct FakeFs {
    files: BTreeMap<String, String>,
    reads: Vec<String>,
}

impl FakeFs {
    fn with(files: &[(&str, &str)]) -> Self {
        Self { files: files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect(), reads: Vec::new() }
    }
}

impl Includer for FakeFs {
    fn read(&mut self, path: &str) -> Result<String, String> {
        self.reads.push(path.to_string());
        self.files.get(path).cloned().ok_or_else(|| String::from("No such file or directory"))
    }
}

#[track_caller]
fn ok(text: &str) -> Config {
    match parse("vm.conf", text, &mut NoIncludes) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[track_caller]
fn err(text: &str) -> String {
    match parse("vm.conf", text, &mut NoIncludes) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn one_vm(text: &str) -> VmConfig {
    let c = ok(text);
    assert_eq!(c.vms.len(), 1, "{c:?}");
    c.vms.into_iter().next().unwrap()
}

fn iface() -> Interface {
    Interface::default()
}

const G: u64 = 1 << 30;
const M: u64 = 1 << 20;

// ---- The documented examples ----------------------------------------------------------------

#[test]
fn faq_example() {
    let text = r#"vm "example" {
    memory 1G
    disk /home/user/disk.qcow2
    local interface
}

switch "my_switch" {
    interface bridge0
}

vm "my_vm" {
    interface { switch "my_switch" }
}
"#;
    let c = ok(text);
    assert_eq!(c.globals, Globals::default());
    assert_eq!(
        c.vms,
        vec![
            VmConfig {
                name: "example".into(),
                file: "vm.conf".into(),
                line: 1,
                memory: Some(G),
                disks: vec![Disk { path: "/home/user/disk.qcow2".into(), format: None }],
                interfaces: vec![Interface { local: true, ..iface() }],
                ..VmConfig::default()
            },
            VmConfig {
                name: "my_vm".into(),
                file: "vm.conf".into(),
                line: 11,
                interfaces: vec![Interface { switch: Some("my_switch".into()), ..iface() }],
                ..VmConfig::default()
            },
        ]
    );
    assert_eq!(
        c.switches,
        vec![Switch {
            name: "my_switch".into(),
            file: "vm.conf".into(),
            line: 7,
            interfaces: vec!["bridge0".into()],
            ..Switch::default()
        }]
    );
    assert!(c.vms.iter().all(|v| v.enabled));
    assert!(c.unknown_switch_refs().is_empty());
}

/// vm.conf(5) EXAMPLES, in the order the page gives them.
#[test]
fn man_page_examples() {
    let text = "vm \"vm2.example.com\" {\n\tmemory 1G\n\tdisk \"/home/joe/vm2-disk.img\"\n\tinterface { switch \"uplink\" }\n\towner joe\n}\n\nvm \"vm2.example.com\" instance \"vm3.example.com\" {\n\tdisk \"/home/joe/vm3-disk.img\"\n}\n\nswitch \"uplink\" {\n\tinterface bridge0\n}\n";
    let c = ok(text);
    assert_eq!(c.vms.len(), 2);
    let vm2 = &c.vms[0];
    assert_eq!(vm2.name, "vm2.example.com");
    assert_eq!(vm2.memory, Some(G));
    assert_eq!(vm2.disks, vec![Disk { path: "/home/joe/vm2-disk.img".into(), format: None }]);
    assert_eq!(vm2.interfaces, vec![Interface { switch: Some("uplink".into()), ..iface() }]);
    assert_eq!(vm2.owner, Some(Owner { user: Some("joe".into()), group: None }));
    assert_eq!(vm2.instance_of, None);
    let vm3 = &c.vms[1];
    assert_eq!(vm3.name, "vm3.example.com");
    assert_eq!(vm3.instance_of.as_deref(), Some("vm2.example.com"));
    assert_eq!(vm3.line, 8);
    assert_eq!(vm3.disks, vec![Disk { path: "/home/joe/vm3-disk.img".into(), format: None }]);
    assert_eq!(c.switches.len(), 1);
    assert_eq!(c.switches[0].name, "uplink");
    assert_eq!(c.switches[0].interfaces, vec![String::from("bridge0")]);
}

/// vm.conf(5) MACROS example.
#[test]
fn man_page_macro_example() {
    let vm = one_vm("ramdisk=\"/bsd.rd\"\nvm \"vm1.example.com\" {\n\tmemory 512M\n\tboot $ramdisk\n}\n");
    assert_eq!(vm.name, "vm1.example.com");
    assert_eq!(vm.memory, Some(512 * M));
    assert_eq!(vm.boot.as_deref(), Some("/bsd.rd"));
}

/// vm.conf(5) DESCRIPTION include example.
#[test]
fn man_page_include_example() {
    let mut fs = FakeFs::with(&[("/etc/vm1.example.com.conf", "vm \"vm1.example.com\" {\n\tmemory 512M\n}\n")]);
    let c = parse("/etc/vm.conf", "include \"/etc/vm1.example.com.conf\"\n", &mut fs).unwrap();
    assert_eq!(c.vms.len(), 1);
    assert_eq!(c.vms[0].file, "/etc/vm1.example.com.conf");
    assert_eq!(c.vms[0].line, 1);
    assert_eq!(fs.reads, vec![String::from("/etc/vm1.example.com.conf")]);
}

// ---- Statements and options -----------------------------------------------------------------

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(ok(""), Config::default());
    assert_eq!(ok("\n\n  \t\n"), Config::default());
    assert_eq!(ok("# nothing here\n   # indented comment"), Config::default());
}

#[test]
fn global_options() {
    let c = ok("local prefix 10.0.0.0/8\n\
         local inet6 prefix fd00:1234::/48\n\
         socket owner _vmd:wheel\n\
         staggered start parallel 4 delay 10\n\
         agentx context vms path \"/var/agentx/master\"\n");
    assert_eq!(
        c.globals,
        Globals {
            local_prefix: Some("10.0.0.0/8".into()),
            local_prefix6: Some("fd00:1234::/48".into()),
            local_inet6: true,
            socket_owner: Some(Owner { user: Some("_vmd".into()), group: Some("wheel".into()) }),
            staggered_start: Some((4, 10)),
            agentx: Some(Agentx { context: Some("vms".into()), path: Some("/var/agentx/master".into()) }),
        }
    );
    let c = ok("local inet6\nagentx\nlocal prefix 100.64.0.0\n");
    assert!(c.globals.local_inet6);
    assert_eq!(c.globals.local_prefix6, None);
    assert_eq!(c.globals.agentx, Some(Agentx::default()));
    assert_eq!(c.globals.local_prefix.as_deref(), Some("100.64.0.0"));
}

#[test]
fn every_vm_option() {
    let text = r#"
vm "full" {
    disable
    memory 2G
    disk /vm/a.img format raw
    disk "/vm/b.qcow2" format QCOW2
    disk /vm/c.img
    cdrom /iso/install.iso
    boot /bsd.rd
    boot device cdrom
    initrd /boot/initrd.gz
    cmdline "console=ttyS0 root=/dev/vda"
    interface tap0 { switch "uplink"; }
    local interface
    interfaces 3
    owner joe:staff
    allow instance { boot, memory
        disk
        owner :staff }
    sev
}
"#;
    // `;` is not a separator in vm.conf: the block above must be fixed first.
    assert_eq!(err(text), "vm.conf:13: syntax error: expected an interface option or '}', found ';'");
    let vm = one_vm(&text.replace("\"uplink\";", "\"uplink\""));
    assert_eq!(
        vm,
        VmConfig {
            name: "full".into(),
            file: "vm.conf".into(),
            line: 2,
            enabled: false,
            memory: Some(2 * G),
            disks: vec![
                Disk { path: "/vm/a.img".into(), format: Some(DiskFormat::Raw) },
                Disk { path: "/vm/b.qcow2".into(), format: Some(DiskFormat::Qcow2) },
                Disk { path: "/vm/c.img".into(), format: None },
            ],
            cdrom: Some("/iso/install.iso".into()),
            boot: Some("/bsd.rd".into()),
            boot_device: Some(BootDevice::Cdrom),
            initrd: Some("/boot/initrd.gz".into()),
            cmdline: Some("console=ttyS0 root=/dev/vda".into()),
            interfaces: vec![
                Interface { name: Some("tap0".into()), switch: Some("uplink".into()), ..iface() },
                Interface { local: true, ..iface() },
                iface(),
            ],
            owner: Some(Owner { user: Some("joe".into()), group: Some("staff".into()) }),
            instance_of: None,
            allow_instance: vec!["boot".into(), "memory".into(), "disk".into(), "owner".into()],
            instance_owner: Some(Owner { user: None, group: Some("staff".into()) }),
            sev: true,
            seves: false,
        }
    );
}

#[test]
fn enable_disable_sev_seves() {
    assert!(one_vm("vm \"a\" {\n disable\n enable\n}").enabled);
    assert!(!one_vm("vm \"a\" {\n disable\n}").enabled);
    let vm = one_vm("vm \"a\" {\n seves\n}");
    assert!(vm.sev && vm.seves);
}

#[test]
fn boot_devices() {
    for (word, dev) in [("cdrom", BootDevice::Cdrom), ("disk", BootDevice::Disk), ("net", BootDevice::Net)] {
        let vm = one_vm(&format!("vm \"a\" {{ boot device {word} }}"));
        assert_eq!(vm.boot_device, Some(dev));
        assert_eq!(vm.boot, None);
        assert_eq!(dev.to_string(), word);
    }
    assert_eq!(
        err("vm \"a\" {\n boot device floppy\n}"),
        "vm.conf:2: syntax error: expected cdrom, disk or net after 'boot device', found \"floppy\""
    );
}

#[test]
fn interfaces_count_adds_defaults() {
    assert_eq!(one_vm("vm \"a\" {\n interfaces 2\n}").interfaces, vec![iface(), iface()]);
    assert_eq!(one_vm("vm \"a\" {\n interfaces 0\n}").interfaces, vec![]);
    // The count is a minimum: explicit interfaces come first and count towards it.
    let vm = one_vm("vm \"a\" {\n interfaces 2\n local interface\n}");
    assert_eq!(vm.interfaces, vec![Interface { local: true, ..iface() }, iface()]);
    let vm = one_vm("vm \"a\" {\n interface\n interface\n interface\n interfaces 1\n}");
    assert_eq!(vm.interfaces.len(), 3);
    let vm = one_vm("vm \"a\" {\n interfaces 4\n interface\n interface\n interface\n interface\n}");
    assert_eq!(vm.interfaces.len(), 4);
}

#[test]
fn interface_option_forms() {
    // Braces over several lines, every option.
    let vm = one_vm(
        "vm \"a\" {\n interface tap3 {\n  switch \"sw\"\n  group vmnet\n  locked lladdr FE:E1:BA:D0:0:1\n  rdomain 7\n  down\n }\n}\n",
    );
    assert_eq!(
        vm.interfaces,
        vec![Interface {
            local: false,
            name: Some("tap3".into()),
            switch: Some("sw".into()),
            lladdr: Some("fe:e1:ba:d0:00:01".into()),
            locked_lladdr: true,
            group: Some("vmnet".into()),
            rdomain: Some(7),
            up: Some(false),
        }]
    );
    // Braces on one line without separators, as parse.y's iface_opts_l allows.
    let vm = one_vm("vm \"a\" { interface { switch sw up lladdr 00:11:22:33:44:55 } }");
    assert_eq!(vm.interfaces[0].switch.as_deref(), Some("sw"));
    assert_eq!(vm.interfaces[0].up, Some(true));
    assert_eq!(vm.interfaces[0].lladdr.as_deref(), Some("00:11:22:33:44:55"));
    // Inline options, with and without commas.
    let vm = one_vm("vm \"a\" {\n local interface switch \"sw\", rdomain 1, up,\n interface group g down\n}");
    assert_eq!(
        vm.interfaces,
        vec![
            Interface { local: true, switch: Some("sw".into()), rdomain: Some(1), up: Some(true), ..iface() },
            Interface { group: Some("g".into()), up: Some(false), ..iface() },
        ]
    );
    // `locked lladdr` with no address: vmd picks one, but the guest may not change it.
    let vm = one_vm("vm \"a\" {\n interface { locked lladdr }\n}");
    assert_eq!(vm.interfaces[0], Interface { locked_lladdr: true, ..iface() });
    // `interface tap` is vmd's default name; an empty brace pair is accepted.
    let vm = one_vm("vm \"a\" {\n interface tap {\n }\n}");
    assert_eq!(vm.interfaces[0].name.as_deref(), Some("tap"));
}

#[test]
fn allow_instance_forms() {
    let vm = one_vm("vm \"a\" {\n allow instance boot\n}");
    assert_eq!(vm.allow_instance, vec![String::from("boot")]);
    let vm = one_vm("vm \"a\" {\n allow instance {\n  boot\n  memory, interface,\n  disk, cdrom, instance, owner joe\n  boot\n }\n}");
    assert_eq!(vm.allow_instance, ["boot", "memory", "interface", "disk", "cdrom", "instance", "owner"]);
    assert_eq!(vm.instance_owner, Some(Owner { user: Some("joe".into()), group: None }));
    let vm = one_vm("vm \"a\" { allow instance { memory } }");
    assert_eq!(vm.allow_instance, ["memory"]);
    assert_eq!(
        err("vm \"a\" {\n allow instance { boot memory }\n}"),
        "vm.conf:2: syntax error: expected ',' or end of line between allow instance options, found 'memory'"
    );
    assert_eq!(
        err("vm \"a\" {\n allow instance { disable }\n}"),
        "vm.conf:2: syntax error: expected an allow instance option (boot, cdrom, disk, instance, interface, memory, owner), found 'disable'"
    );
    assert_eq!(
        err("vm \"a\" {\n allow boot\n}"),
        "vm.conf:2: syntax error: expected 'instance' after 'allow', found 'boot'"
    );
    assert_eq!(
        err("vm \"a\" {\n allow instance {\n boot\n"),
        "vm.conf:3: syntax error: missing '}' to close allow instance opened at line 2"
    );
}

#[test]
fn owners() {
    let owner = |text: &str| one_vm(&format!("vm \"a\" {{\n owner {text}\n}}")).owner.unwrap();
    assert_eq!(owner("joe"), Owner { user: Some("joe".into()), group: None });
    assert_eq!(owner("joe:staff"), Owner { user: Some("joe".into()), group: Some("staff".into()) });
    assert_eq!(owner(":staff"), Owner { user: None, group: Some("staff".into()) });
    assert_eq!(owner("joe:"), Owner { user: Some("joe".into()), group: None });
    assert_eq!(owner("1000"), Owner { user: Some("1000".into()), group: None });
    assert_eq!(owner("\"joe\""), Owner { user: Some("joe".into()), group: None });
    assert_eq!(owner(":staff").to_string(), ":staff");
    assert_eq!(owner("joe:staff").to_string(), "joe:staff");
    assert_eq!(err("vm \"a\" {\n owner :\n}"), "vm.conf:2: invalid owner \":\": expected user, user:group or :group");
    assert_eq!(
        err("vm \"a\" {\n owner a:b:c\n}"),
        "vm.conf:2: invalid owner \"a:b:c\": expected user, user:group or :group"
    );
    assert_eq!(err("socket owner -1\n"), "vm.conf:1: invalid owner uid -1");
    assert_eq!(
        err("socket owner\n"),
        "vm.conf:1: syntax error: expected user, user:group or :group after 'owner', found end of line"
    );
}

#[test]
fn switch_options() {
    let c = ok("switch \"sw\" {\n disable\n group vmsw\n interface bridge0\n interface veb1\n locked lladdr\n rdomain 3\n down\n}\nswitch 'other' { up }\n");
    assert_eq!(
        c.switches[0],
        Switch {
            name: "sw".into(),
            file: "vm.conf".into(),
            line: 1,
            enabled: false,
            interfaces: vec!["bridge0".into(), "veb1".into()],
            group: Some("vmsw".into()),
            locked_lladdr: true,
            rdomain: Some(3),
            up: Some(false),
        }
    );
    assert_eq!(c.switches[1].up, Some(true));
    assert_eq!(c.switches[1].line, 10);
    assert!(c.switches[1].enabled);
}

#[test]
fn memory_sizes() {
    let mem = |text: &str| one_vm(&format!("vm \"a\" {{\n memory {text}\n}}")).memory.unwrap();
    assert_eq!(mem("1G"), G);
    assert_eq!(mem("1g"), G);
    assert_eq!(mem("512M"), 512 * M);
    assert_eq!(mem("512m"), 512 * M);
    assert_eq!(mem("1.5G"), 3 * 512 * M);
    assert_eq!(mem("1048576"), M);
    assert_eq!(mem("1073741824"), G);
    assert_eq!(mem("\"2G\""), 2 * G);
    assert_eq!(mem("1048577"), M); // rounded down to a whole MiB, as vmd does
    assert_eq!(mem("128G"), 128 * G);
    assert_eq!(mem("65536K"), 64 * M);
}

#[test]
fn memory_size_rules() {
    // The rule itself is keel-vmlimits' (tested there, and against the shell in
    // userland/shell/tests/front_ends_agree.rs); here: how vm.conf reports it.
    let e = |text: &str| err(&format!("vm \"a\" {{\n memory {text}\n}}"));
    let mem = |text: &str| one_vm(&format!("vm \"a\" {{\n memory {text}\n}}")).memory.unwrap();
    assert_eq!(mem("\"1048576B\""), M);
    assert_eq!(mem("0.5G"), 512 * M);
    assert_eq!(mem("\".5G\""), 512 * M);
    assert_eq!(mem("128G"), MAX_MEMORY);
    assert_eq!(mem("137438953472"), MAX_MEMORY);
    assert_eq!(e("1K"), "vm.conf:2: vm \"a\": memory size must be at least 1M");
    assert_eq!(e("0"), "vm.conf:2: vm \"a\": memory size must be at least 1M");
    assert_eq!(e("1048575"), "vm.conf:2: vm \"a\": memory size must be at least 1M");
    assert_eq!(e("1023K"), "vm.conf:2: vm \"a\": memory size must be at least 1M");
    assert_eq!(e("129G"), "vm.conf:2: vm \"a\": memory size too large (limit is 128G)");
    assert_eq!(e("200G"), "vm.conf:2: vm \"a\": memory size too large (limit is 128G)");
    assert_eq!(e("137438953473"), "vm.conf:2: vm \"a\": memory size too large (limit is 128G)");
    assert_eq!(e("1T"), "vm.conf:2: vm \"a\": memory size too large (limit is 128G)");
    assert_eq!(e("16E"), "vm.conf:2: vm \"a\": memory size too large (limit is 128G)");
    assert_eq!(e("\"\""), "vm.conf:2: vm \"a\": invalid memory size \"\": no size given");
    assert_eq!(e("G"), "vm.conf:2: vm \"a\": invalid memory size \"G\": expected a number, e.g. 512M or 1.5G");
    assert_eq!(e("\" 2g\""), "vm.conf:2: vm \"a\": invalid memory size \" 2g\": expected a number, e.g. 512M or 1.5G");
    assert_eq!(e("\"+1M\""), "vm.conf:2: vm \"a\": invalid memory size \"+1M\": expected a number, e.g. 512M or 1.5G");
    assert_eq!(e("1.2.3G"), "vm.conf:2: vm \"a\": invalid memory size \"1.2.3G\": more than one '.' in the number");
    assert_eq!(e("\"-1G\""), "vm.conf:2: vm \"a\": invalid memory size \"-1G\": a size cannot be negative");
    assert_eq!(e("-5"), "vm.conf:2: vm \"a\": invalid memory size \"-5\": a size cannot be negative");
    assert_eq!(
        e("1GB"),
        "vm.conf:2: vm \"a\": invalid memory size \"1GB\": unknown unit (use K, M, G or T after the number; a plain number is bytes)"
    );
}

// ---- Lexical matters ------------------------------------------------------------------------

#[test]
fn macros() {
    // Expanded in bare words, also in the middle of a statement and for numbers.
    let c = ok("dir=\"/vm\"\nmem=\"2G\"\nn = 2\nsw = uplink\nvm \"a\" {\n disk $dir\n memory $mem\n interfaces $n\n interface { switch $sw }\n}\n");
    let vm = &c.vms[0];
    assert_eq!(vm.disks[0].path, "/vm");
    assert_eq!(vm.memory, Some(2 * G));
    assert_eq!(vm.interfaces.len(), 2);
    assert_eq!(vm.interfaces[0].switch.as_deref(), Some("uplink"));
    // A word continues after the expansion: `$dir/a.img`.
    assert_eq!(one_vm("dir=\"/vm\"\nvm \"a\" {\n disk $dir/a.img\n}").disks[0].path, "/vm/a.img");
    // Not expanded inside quotes, nor in the middle of a word.
    assert_eq!(one_vm("d=x\nvm \"a\" {\n disk \"$d\"\n}").disks[0].path, "$d");
    assert_eq!(one_vm("d=x\nvm \"a\" {\n disk /p/$d\n}").disks[0].path, "/p/$d");
    // The value is read again as input: words in it are separate tokens, and adjacent strings join.
    assert_eq!(one_vm("d=\"/a /b\"\nvm \"a\" {\n disk $d\n}").disks[0].path, "/a/b");
    // A value may hold several tokens, even a whole option.
    let vm = one_vm("opts=\"memory 1G\"\nvm \"a\" {\n $opts\n}");
    assert_eq!(vm.memory, Some(G));
    // Redefinition replaces; a macro may be used in a vm name.
    let c = ok("h=one\nh=two\nvm $h {\n}\n");
    assert_eq!(c.vms[0].name, "two");
    // `$` inside a value is not expanded again: no recursion.
    assert_eq!(
        err("a=\"$a\"\nvm \"x\" {\n disk $a\n}"),
        "vm.conf:3: syntax error: expected a disk image path after 'disk', found '$'"
    );
    // Macros defined in an included file stay defined after it.
    let mut fs = FakeFs::with(&[("m.conf", "kernel=/bsd\n")]);
    let c = parse("vm.conf", "include \"m.conf\"\nvm \"a\" {\n boot $kernel\n}", &mut fs).unwrap();
    assert_eq!(c.vms[0].boot.as_deref(), Some("/bsd"));
}

#[test]
fn macro_errors() {
    assert_eq!(err("vm \"a\" {\n boot $kernel\n}"), "vm.conf:2: macro \"kernel\" not defined");
    assert_eq!(err("\n\nvm \"a\" { memory $ }"), "vm.conf:3: syntax error: '$' must be followed by a macro name");
    assert_eq!(err("memory = 1G\n"), "vm.conf:1: syntax error: expected a statement (vm, switch, include, local, socket, staggered, agentx or name = value), found 'memory'");
    assert_eq!(err("\"vm\" = x\n"), "vm.conf:1: invalid macro name \"vm\": it is a reserved word");
    assert_eq!(err("\"a b\" = x\n"), "vm.conf:1: invalid macro name \"a b\": use only letters, digits and '_'");
    assert_eq!(err("a-b = x\n"), "vm.conf:1: invalid macro name \"a-b\": use only letters, digits and '_'");
    assert_eq!(err("a = {\n"), "vm.conf:1: syntax error: expected a value after '\"a\" =', found '{'");
    assert_eq!(err("a = x y\n"), "vm.conf:1: syntax error: expected end of line after macro definition, found \"y\"");
    // Expansion output is bounded.
    let big = " ".repeat(4000);
    let uses = "$m ".repeat(300);
    assert_eq!(
        err(&format!("m=\"{big}\"\n{uses}\n")),
        format!("vm.conf:2: macro expansion too large (over {MAX_MACRO_EXPANSION} bytes in all)")
    );
}

#[test]
fn comments() {
    let text = "# header\nvm \"a\" { # trailing\n # whole line\n memory 1G # after option\n disk \"/a#b\" # '#' in quotes is literal\n}\n";
    let vm = one_vm(text);
    assert_eq!(vm.memory, Some(G));
    assert_eq!(vm.disks[0].path, "/a#b");
    // A word ends at '#', which then starts a comment.
    assert_eq!(one_vm("vm \"a\" {\n disk /a#b\n}").disks[0].path, "/a");
}

#[test]
fn line_continuation() {
    let vm = one_vm("vm \"a\" {\n memory \\\n 1G\n disk /very/long/\\\npath\n}");
    assert_eq!(vm.memory, Some(G));
    assert_eq!(vm.disks[0].path, "/very/long/path");
    // A continued comment swallows the next line (vm.conf(5): "the comment is effective until the
    // end of the entire block").
    let vm = one_vm("vm \"a\" {\n # memory 2G \\\n memory 4G\n memory 1G\n}");
    assert_eq!(vm.memory, Some(G));
    // A continued statement at top level; lines after it are still counted right.
    let c = ok("socket \\\n owner \\\n joe\nvm \"a\" {\n}\n");
    assert_eq!(c.globals.socket_owner.unwrap().user.as_deref(), Some("joe"));
    assert_eq!(c.vms[0].line, 4);
    assert_eq!(err("socket \\\n owner \\\n joe\nvm \"a\" {\n bogus\n}\n"), "vm.conf:5: syntax error: unknown vm option \"bogus\" (expected allow, boot, cdrom, cmdline, disable, disk, enable, initrd, interface, interfaces, local, memory, owner, sev, seves)");
    // Outside quotes a backslash before another character just drops the backslash.
    assert_eq!(one_vm("vm \"a\" {\n disk /a\\b\n}").disks[0].path, "/ab");
}

#[test]
fn quoting() {
    let vm =
        one_vm("vm 'a' {\n disk \"/with space\"\n cdrom '/it''s'\n boot \"/q\\\"uote\"\n initrd \"/long\\\n/name\"\n}");
    assert_eq!(vm.name, "a");
    assert_eq!(vm.disks[0].path, "/with space");
    assert_eq!(vm.cdrom.as_deref(), Some("/its")); // adjacent strings join
    assert_eq!(vm.boot.as_deref(), Some("/q\"uote"));
    assert_eq!(vm.initrd.as_deref(), Some("/long/name"));
    // A newline inside quotes is dropped (and counted).
    let c = ok("vm \"multi\nline\" {\n}\nvm \"b\" {\n}");
    assert_eq!(c.vms[0].name, "multiline");
    assert_eq!(c.vms[1].line, 4);
    // Other backslashes are kept.
    assert_eq!(one_vm("vm \"a\" {\n disk \"/a\\nb\"\n}").disks[0].path, "/a\\nb");
    // Names that are not plain words need quotes; quoted keywords are plain strings.
    assert_eq!(one_vm("vm \"a\" {\n disk \"memory\"\n}").disks[0].path, "memory");
    assert_eq!(
        one_vm("vm \"a\" {\n cmdline \"console=ttyS0\" \"quiet\"\n}").cmdline.as_deref(),
        Some("console=ttyS0 quiet")
    );
    assert_eq!(one_vm("vm \"a\" {\n cmdline \"\"\n}").cmdline.as_deref(), Some(""));
}

#[test]
fn numbers_and_words() {
    // `1G` is a word, `1073741824` a number; both work for memory.
    assert_eq!(one_vm("vm a {\n memory 1073741824\n}").memory, Some(G));
    // A number where a path is expected is a syntax error, as in vmd.
    assert_eq!(
        err("vm a {\n disk 123\n}"),
        "vm.conf:2: syntax error: expected a disk image path after 'disk', found number 123"
    );
    // But a word starting with digits is a word.
    assert_eq!(one_vm("vm a {\n disk 123abc\n}").disks[0].path, "123abc");
    // A leading '-' that is not a number is its own token.
    assert_eq!(err("vm -a {\n}"), "vm.conf:1: syntax error: expected a vm name after 'vm', found '-'");
    assert_eq!(
        err("vm a {\n memory 99999999999999999999\n}"),
        "vm.conf:2: syntax error: invalid number \"99999999999999999999\": out of range"
    );
    // Keywords are case-sensitive.
    assert_eq!(err("VM a {\n}"), "vm.conf:1: syntax error: unknown statement \"VM\"");
}

#[test]
fn crlf_and_missing_final_newline() {
    let vm = one_vm("vm \"a\" {\r\n memory 1G\r\n}\r\n");
    assert_eq!(vm.memory, Some(G));
    let vm = one_vm("vm \"a\" {\n memory 1G\n}");
    assert_eq!(vm.memory, Some(G));
    let c = ok("socket owner joe");
    assert!(c.globals.socket_owner.is_some());
}

#[test]
fn one_line_blocks_and_blank_lines() {
    let c = ok("\n\nvm a { memory 1G }\nswitch s { interface bridge0 }\nvm b {\n\n memory 1G\n\n\n disable\n\n}\nvm c {}\nswitch d {\n}\n");
    assert_eq!(c.vms.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(c.switches.len(), 2);
    assert!(!c.vms[1].enabled);
}

// ---- Includes -------------------------------------------------------------------------------

#[test]
fn includes() {
    let mut fs = FakeFs::with(&[
        ("/etc/vm.d/a.conf", "switch \"sw\" {\n interface bridge0\n}\ninclude \"/etc/vm.d/b.conf\"\n"),
        ("/etc/vm.d/b.conf", "vm \"b\" {\n memory 1G\n}"),
    ]);
    let c = parse("/etc/vm.conf", "vm \"a\" {\n}\ninclude \"/etc/vm.d/a.conf\"\nvm \"c\" {\n}\n", &mut fs).unwrap();
    assert_eq!(
        c.vms.iter().map(|v| (v.name.as_str(), v.file.as_str(), v.line)).collect::<Vec<_>>(),
        [("a", "/etc/vm.conf", 1), ("b", "/etc/vm.d/b.conf", 1), ("c", "/etc/vm.conf", 4)]
    );
    assert_eq!(c.switches[0].file, "/etc/vm.d/a.conf");
    // The same file may be included twice (it is not a loop).
    let mut fs = FakeFs::with(&[("s.conf", "x = 1\n")]);
    assert!(parse("vm.conf", "include \"s.conf\"\ninclude \"s.conf\"\n", &mut fs).is_ok());
    // Adjacent strings join for the path too, and a macro can name it.
    let mut fs = FakeFs::with(&[("/etc/x.conf", "")]);
    assert!(parse("vm.conf", "d=\"/etc\"\ninclude $d \"/x.conf\"\n", &mut fs).is_ok());
    assert_eq!(fs.reads, ["/etc/x.conf"]);
}

#[test]
fn include_errors() {
    assert_eq!(
        err("\ninclude \"/etc/other.conf\"\n"),
        "vm.conf:2: failed to include file \"/etc/other.conf\": include is not supported here"
    );
    let mut fs = FakeFs::default();
    assert_eq!(
        parse("vm.conf", "include \"/nope\"", &mut fs).unwrap_err().to_string(),
        "vm.conf:1: failed to include file \"/nope\": No such file or directory"
    );
    // An error inside an included file names that file and its line.
    let mut fs = FakeFs::with(&[("inc.conf", "\n\nvm \"x\" {\n memory 0\n}\n")]);
    let e = parse("vm.conf", "include \"inc.conf\"\n", &mut fs).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("inc.conf", 4));
    assert_eq!(e.to_string(), "inc.conf:4: vm \"x\": memory size must be at least 1M");
    // Loops.
    let mut fs = FakeFs::with(&[("a.conf", "include \"b.conf\"\n"), ("b.conf", "\ninclude \"a.conf\"\n")]);
    assert_eq!(
        parse("a.conf", "include \"b.conf\"\n", &mut fs).unwrap_err().to_string(),
        "b.conf:2: include loop: \"a.conf\" -> \"b.conf\" -> \"a.conf\""
    );
    let mut fs = FakeFs::default();
    assert_eq!(
        parse("vm.conf", "include \"vm.conf\"\n", &mut fs).unwrap_err().to_string(),
        "vm.conf:1: include loop: \"vm.conf\" -> \"vm.conf\""
    );
    // Ten levels of nesting are fine, eleven are not.
    let chain = |levels: usize| -> FakeFs {
        let files: Vec<(String, String)> = (1..=levels)
            .map(|i| {
                let body =
                    if i < levels { format!("include \"f{}\"\n", i + 1) } else { String::from("vm deep {\n}\n") };
                (format!("f{i}"), body)
            })
            .collect();
        FakeFs { files: files.into_iter().collect(), reads: Vec::new() }
    };
    let c = parse("main", "include \"f1\"\n", &mut chain(MAX_INCLUDE_DEPTH)).unwrap();
    assert_eq!(c.vms[0].file, "f10");
    assert_eq!(
        parse("main", "include \"f1\"\n", &mut chain(MAX_INCLUDE_DEPTH + 1)).unwrap_err().to_string(),
        "f10:1: includes nested too deeply (max 10 levels)"
    );
    // An include statement must end its line; a block cannot span files.
    assert_eq!(err("include \"a\" vm\n"), "vm.conf:1: syntax error: expected end of line after include, found 'vm'");
    let mut fs = FakeFs::with(&[("open.conf", "vm \"x\" {\n")]);
    assert_eq!(
        parse("vm.conf", "include \"open.conf\"\n}\n", &mut fs).unwrap_err().to_string(),
        "open.conf:1: syntax error: missing '}' to close vm \"x\" opened at line 1"
    );
    assert_eq!(err("include\n"), "vm.conf:1: syntax error: expected a file name after 'include', found end of line");
    // Too many or too large included files.
    let mut fs = FakeFs::with(&[("big", "")]);
    fs.files.insert("big".into(), " ".repeat(MAX_FILE_SIZE + 1));
    assert_eq!(
        parse("vm.conf", "include big\n", &mut fs).unwrap_err().to_string(),
        format!("vm.conf:1: included file \"big\" too large ({} bytes, max {MAX_FILE_SIZE})", MAX_FILE_SIZE + 1)
    );
    let mut fs = FakeFs::with(&[("e", "")]);
    let many = "include e\n".repeat(MAX_INCLUDED_FILES + 1);
    assert_eq!(
        parse("vm.conf", &many, &mut fs).unwrap_err().to_string(),
        format!("vm.conf:{}: too many included files (max {MAX_INCLUDED_FILES})", MAX_INCLUDED_FILES + 1)
    );
}

// ---- Errors ---------------------------------------------------------------------------------

#[test]
fn syntax_errors() {
    let cases: &[(&str, &str)] = &[
        // The brief's example, on line 12.
        (
            "# 1\n# 2\n# 3\n# 4\n# 5\n# 6\n# 7\n# 8\n# 9\n# 10\n# 11\nvm \"web\" memory 1G {\n}\n",
            "vm.conf:12: syntax error: expected '{' after vm name, found 'memory'",
        ),
        ("vm \"a\"\n{\n}\n", "vm.conf:1: syntax error: expected '{' after vm name, found end of line"),
        ("vm {\n}\n", "vm.conf:1: syntax error: expected a vm name after 'vm', found '{'"),
        ("vm \"a\" {\n memory 1G\n", "vm.conf:2: syntax error: missing '}' to close vm \"a\" opened at line 1"),
        (
            "vm \"a\" {\n memory 1G\nvm \"b\" {\n}\n",
            "vm.conf:3: syntax error: missing '}' to close vm \"a\" opened at line 1",
        ),
        ("switch \"s\" {\n up\n\n", "vm.conf:3: syntax error: missing '}' to close switch \"s\" opened at line 1"),
        (
            "vm \"a\" {\n interface {\n  up\n}\n",
            "vm.conf:4: syntax error: missing '}' to close vm \"a\" opened at line 1",
        ),
        (
            "vm \"a\" {\n interface {\n  up\n",
            "vm.conf:3: syntax error: missing '}' to close interface options opened at line 2",
        ),
        ("vm \"a {\n}\n", "vm.conf:1: syntax error: unterminated quoted string"),
        ("\nvm 'a {\n", "vm.conf:2: syntax error: unterminated quoted string"),
        ("vm \"a\\", "vm.conf:1: syntax error: unterminated quoted string"),
        ("vm \"a\0b\" {\n}\n", "vm.conf:1: syntax error: NUL character in quoted string"),
        ("frobnicate 1\n", "vm.conf:1: syntax error: unknown statement \"frobnicate\""),
        ("}\n", "vm.conf:1: syntax error: expected a statement (vm, switch, include, local, socket, staggered, agentx or name = value), found '}'"),
        ("memory 1G\n", "vm.conf:1: syntax error: expected a statement (vm, switch, include, local, socket, staggered, agentx or name = value), found 'memory'"),
        (
            "vm \"a\" {\n frobnicate 1\n}\n",
            "vm.conf:2: syntax error: unknown vm option \"frobnicate\" (expected allow, boot, cdrom, cmdline, disable, disk, enable, initrd, interface, interfaces, local, memory, owner, sev, seves)",
        ),
        (
            "vm \"a\" {\n prefix 1\n}\n",
            "vm.conf:2: syntax error: 'prefix' is not a vm option (expected allow, boot, cdrom, cmdline, disable, disk, enable, initrd, interface, interfaces, local, memory, owner, sev, seves)",
        ),
        ("vm \"a\" {\n (\n}\n", "vm.conf:2: syntax error: expected a vm option or '}', found '('"),
        (
            "switch \"s\" {\n memory 1G\n}\n",
            "vm.conf:2: syntax error: expected a switch option or '}', found 'memory'",
        ),
        (
            "switch \"s\" {\n bogus\n}\n",
            "vm.conf:2: syntax error: unknown switch option \"bogus\" (expected disable, enable, group, interface, locked lladdr, rdomain, up, down)",
        ),
        ("switch \"s\" {\n locked\n}\n", "vm.conf:2: syntax error: expected 'lladdr' after 'locked', found end of line"),
        (
            "vm \"a\" { memory 1G disable }\n",
            "vm.conf:1: syntax error: expected end of line or '}' after 'memory', found 'disable'",
        ),
        ("vm \"a\" { }  vm \"b\" { }\n", "vm.conf:1: syntax error: expected end of line after vm block, found 'vm'"),
        ("switch s { up } x\n", "vm.conf:1: syntax error: expected end of line after switch block, found \"x\""),
        ("local interface\n", "vm.conf:1: syntax error: 'local interface' is only valid inside a vm block"),
        ("local foo\n", "vm.conf:1: syntax error: expected 'prefix' or 'inet6' after 'local', found \"foo\""),
        ("vm \"a\" {\n local disk\n}\n", "vm.conf:2: syntax error: expected 'interface' after 'local' in a vm block, found 'disk'"),
        (
            "vm \"a\" {\n interface { frob }\n}\n",
            "vm.conf:2: syntax error: unknown interface option \"frob\" (expected switch, group, lladdr, locked lladdr, rdomain, up, down)",
        ),
        ("vm \"a\" {\n interface { memory 1G }\n}\n", "vm.conf:2: syntax error: expected an interface option or '}', found 'memory'"),
        ("vm \"a\" {\n interface tap0 tap1\n}\n", "vm.conf:2: syntax error: expected end of line or '}' after 'interface', found \"tap1\""),
        ("vm \"a\" {\n interface switch\n}\n", "vm.conf:2: syntax error: expected a switch name after 'switch', found end of line"),
        ("vm \"a\" {\n interface locked up\n}\n", "vm.conf:2: syntax error: expected 'lladdr' after 'locked', found 'up'"),
        ("vm \"a\" {\n interfaces two\n}\n", "vm.conf:2: syntax error: expected a count after 'interfaces', found \"two\""),
        ("vm \"a\" {\n memory\n}\n", "vm.conf:2: syntax error: expected a size (e.g. 512M or 1G) after 'memory', found end of line"),
        ("vm \"a\" {\n disk /a format\n}\n", "vm.conf:2: syntax error: expected a disk format (qcow2 or raw) after 'format', found end of line"),
        ("vm \"a\" {\n cmdline\n}\n", "vm.conf:2: syntax error: expected a quoted kernel command line after 'cmdline', found end of line"),
        ("vm \"a\" {\n boot\n}\n", "vm.conf:2: syntax error: expected a kernel path or 'device' after 'boot', found end of line"),
        ("staggered start 4 delay 10\n", "vm.conf:1: syntax error: expected 'parallel' after 'staggered start', found number 4"),
        ("staggered start parallel 4\n", "vm.conf:1: syntax error: expected 'delay' after 'staggered start parallel N', found end of line"),
        ("socket joe\n", "vm.conf:1: syntax error: expected 'owner' after 'socket', found \"joe\""),
        ("agentx path\n", "vm.conf:1: syntax error: expected a socket path after 'path', found end of line"),
        ("vm \"a\" instance {\n}\n", "vm.conf:1: syntax error: expected an instance name after 'instance', found '{'"),
        ("vm \"a\" {\n disk /a\x01\n}\n", "vm.conf:2: syntax error: expected end of line or '}' after 'disk', found character '\\u{1}'"),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "input: {text:?}");
    }
}

#[test]
fn semantic_errors() {
    let cases: &[(&str, &str)] = &[
        ("vm \"a\" {\n}\n\nvm \"a\" {\n}\n", "vm.conf:4: vm \"a\" is already defined at vm.conf:1"),
        ("vm \"a\" {\n}\nvm \"b\" instance \"a\" {\n}\n", "vm.conf:3: vm \"a\" is already defined at vm.conf:1"),
        ("switch \"s\" {\n}\nswitch \"s\" {\n}\n", "vm.conf:3: switch \"s\" is already defined at vm.conf:1"),
        ("vm \"p\" instance \"i\" {\n}\n", "vm.conf:1: vm \"i\": instance parent \"p\" is not defined above"),
        ("vm \"a\" {\n memory 0\n}\n", "vm.conf:2: vm \"a\": memory size must be at least 1M"),
        ("vm \"a\" {\n memory -5\n}\n", "vm.conf:2: vm \"a\": invalid memory size \"-5\": a size cannot be negative"),
        ("vm \"a\" {\n memory 512\n}\n", "vm.conf:2: vm \"a\": memory size must be at least 1M"),
        ("vm \"a\" {\n memory 2T\n}\n", "vm.conf:2: vm \"a\": memory size too large (limit is 128G)"),
        ("vm \"a\" {\n memory 12X\n}\n", "vm.conf:2: vm \"a\": invalid memory size \"12X\": unknown unit (use K, M, G or T after the number; a plain number is bytes)"),
        ("vm \"a\" {\n memory lots\n}\n", "vm.conf:2: vm \"a\": invalid memory size \"lots\": expected a number, e.g. 512M or 1.5G"),
        ("vm \"a\" {\n memory 1G\n memory 2G\n}\n", "vm.conf:3: vm \"a\": memory specified more than once"),
        ("vm \"a\" {\n interfaces 5\n}\n", "vm.conf:2: vm \"a\": invalid interfaces count 5 (must be 0 to 4)"),
        ("vm \"a\" {\n interfaces -1\n}\n", "vm.conf:2: vm \"a\": invalid interfaces count -1 (must be 0 to 4)"),
        ("vm \"a\" {\n interfaces 1\n interfaces 2\n}\n", "vm.conf:3: vm \"a\": interfaces specified more than once"),
        (
            "vm \"a\" {\n interface\n interface\n local interface\n interface\n interface\n}\n",
            "vm.conf:6: vm \"a\": too many interfaces (max 4)",
        ),
        ("vm \"\" {\n}\n", "vm.conf:1: VM name must not be empty"),
        (
            "vm aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {\n}\n",
            "vm.conf:1: invalid VM name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": it is 64 bytes long (at most 63)",
        ),
        ("vm \"1abc\" {\n}\n", "vm.conf:1: invalid VM name \"1abc\": it must start with a letter"),
        ("vm \"a b\" {\n}\n", "vm.conf:1: invalid VM name \"a b\": it may contain only letters, digits, '.', '-' and '_', not ' '"),
        ("vm \"_a\" {\n}\n", "vm.conf:1: invalid VM name \"_a\": it must start with a letter"),
        ("switch \"\" {\n}\n", "vm.conf:1: switch name must not be empty"),
        (
            "vm \"a\" {\n disk /1\n disk /2\n disk /3\n disk /4\n disk /5\n}\n",
            "vm.conf:6: vm \"a\": too many disks (max 4)",
        ),
        ("vm \"a\" {\n disk /a format vmdk\n}\n", "vm.conf:2: vm \"a\": unrecognized disk format \"vmdk\" (expected qcow2 or raw)"),
        ("vm \"a\" {\n disk \"\"\n}\n", "vm.conf:2: vm \"a\": disk path must not be empty"),
        ("vm \"a\" {\n boot /a\n boot /b\n}\n", "vm.conf:3: vm \"a\": boot specified more than once"),
        ("vm \"a\" {\n cdrom /a\n cdrom /b\n}\n", "vm.conf:3: vm \"a\": cdrom specified more than once"),
        ("vm \"a\" {\n initrd /a\n initrd /b\n}\n", "vm.conf:3: vm \"a\": initrd specified more than once"),
        ("vm \"a\" {\n cmdline \"a\"\n cmdline \"b\"\n}\n", "vm.conf:3: vm \"a\": cmdline specified more than once"),
        (
            "vm \"a\" {\n interface { lladdr 00:11:22:33:44 }\n}\n",
            "vm.conf:2: invalid lladdr \"00:11:22:33:44\": expected six hex octets like fe:e1:ba:d0:00:01",
        ),
        (
            "vm \"a\" {\n interface lladdr 0g:11:22:33:44:55\n}\n",
            "vm.conf:2: invalid lladdr \"0g:11:22:33:44:55\": expected six hex octets like fe:e1:ba:d0:00:01",
        ),
        (
            "vm \"a\" {\n interface group vm0\n}\n",
            "vm.conf:2: invalid group name \"vm0\": it must be 1 to 15 bytes and not end with a digit",
        ),
        (
            "switch s {\n group abcdefghijklmnop\n}\n",
            "vm.conf:2: invalid group name \"abcdefghijklmnop\": it must be 1 to 15 bytes and not end with a digit",
        ),
        ("vm \"a\" {\n interface { rdomain 256 }\n}\n", "vm.conf:2: invalid rdomain 256 (must be 0 to 255)"),
        ("switch s {\n rdomain -1\n}\n", "vm.conf:2: invalid rdomain -1 (must be 0 to 255)"),
        (
            "vm \"a\" {\n interface tap0123456789abcde\n}\n",
            "vm.conf:2: interface name \"tap0123456789abcde\" too long (max 15 bytes)",
        ),
        (
            "switch s {\n interface bridge0123456789ab\n}\n",
            "vm.conf:2: switch interface: interface name \"bridge0123456789ab\" too long (max 15 bytes)",
        ),
        ("local prefix 10.0.0.1/8\n", "vm.conf:1: invalid local prefix \"10.0.0.1/8\": address has bits set outside the prefix length"),
        ("local prefix 10.0.0.0/24\n", "vm.conf:1: invalid local prefix \"10.0.0.0/24\": prefix length must be 1 to 16"),
        ("local prefix 300.0.0.0/8\n", "vm.conf:1: invalid local prefix \"300.0.0.0/8\": not an IPv4 address"),
        ("local prefix fd00::/8\n", "vm.conf:1: invalid local prefix \"fd00::/8\": not an IPv4 address"),
        ("local inet6 prefix fd00::/96\n", "vm.conf:1: invalid local inet6 prefix \"fd00::/96\": prefix length must be 0 to 64"),
        ("local inet6 prefix 10.0.0.0/8\n", "vm.conf:1: invalid local inet6 prefix \"10.0.0.0/8\": not an IPv6 address"),
        ("local inet6 prefix fd00::1/64\n", "vm.conf:1: invalid local inet6 prefix \"fd00::1/64\": address has bits set outside the prefix length"),
        ("staggered start parallel 0 delay 1\n", "vm.conf:1: invalid staggered start parallelism 0: must be at least 1"),
        ("staggered start parallel 1 delay -1\n", "vm.conf:1: invalid staggered start delay -1: must be 0 or more seconds"),
        ("agentx path relative\n", "vm.conf:1: agentx path \"relative\" is not absolute"),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "input: {text:?}");
    }
}

#[test]
fn undefined_switch_is_accepted() {
    // vm.conf(5): "This option is ignored if a switch with a matching name cannot be found."
    let c = ok("vm \"a\" {\n interface { switch \"nowhere\" }\n}\n");
    assert_eq!(c.unknown_switch_refs(), [(String::from("a"), String::from("nowhere"))]);
}

#[test]
fn limits() {
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(
        err(&format!("vm \"a\" {{\n disk /{long}\n}}")),
        format!("vm.conf:2: syntax error: string too long (max {MAX_TOKEN_LEN} bytes)")
    );
    assert_eq!(
        err(&format!("vm \"a\" {{\n disk \"{long}\"\n}}")),
        format!("vm.conf:2: syntax error: string too long (max {MAX_TOKEN_LEN} bytes)")
    );
    let half = "a".repeat(MAX_TOKEN_LEN / 2 + 1);
    assert_eq!(
        err(&format!("vm \"a\" {{\n disk \"{half}\" \"{half}\"\n}}")),
        format!("vm.conf:2: syntax error: string too long (max {MAX_TOKEN_LEN} bytes)")
    );
    assert_eq!(
        err(&format!("vm \"a\" {{\n memory {}\n}}", "1".repeat(MAX_TOKEN_LEN + 1))),
        format!("vm.conf:2: syntax error: string too long (max {MAX_TOKEN_LEN} bytes)")
    );
    assert_eq!(
        err(&format!("vm \"a\" {{\n cmdline \"{}\"\n}}", "x".repeat(CMDLINE_MAX + 1))),
        "vm.conf:2: vm \"a\": cmdline too long (max 2047 bytes)"
    );
    let big = "#".repeat(MAX_FILE_SIZE + 1);
    assert_eq!(err(&big), format!("vm.conf:1: file too large ({} bytes, max {MAX_FILE_SIZE})", MAX_FILE_SIZE + 1));
    let mut text = String::new();
    for i in 0..MAX_VMS {
        text.push_str(&format!("vm v{i} {{}}\n"));
    }
    assert_eq!(ok(&text).vms.len(), MAX_VMS);
    text.push_str("vm last {}\n");
    assert_eq!(err(&text), format!("vm.conf:{}: too many vms (max {MAX_VMS})", MAX_VMS + 1));
    let mut text = String::new();
    for i in 0..=MAX_SWITCHES {
        text.push_str(&format!("switch s{i} {{}}\n"));
    }
    assert_eq!(err(&text), format!("vm.conf:{}: too many switches (max {MAX_SWITCHES})", MAX_SWITCHES + 1));
    let mut text = String::new();
    for i in 0..=MAX_MACROS {
        text.push_str(&format!("m{i}=x\n"));
    }
    assert_eq!(err(&text), format!("vm.conf:{}: too many macros (max {MAX_MACROS})", MAX_MACROS + 1));
}

#[test]
fn hostile_input_does_not_panic() {
    let inputs = [
        "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
        "vm a { interface { interface { interface {",
        "vm a { allow instance { owner",
        "$$$$$$$$",
        "\\",
        "\\\\\\\n\\",
        "'",
        "-",
        "--5",
        "vm a { memory -",
        "vm\u{0} a",
        "vm \u{1F600} {}",
        "vm \"\u{1F600}\" {}",
        "x=\"$\"\nvm $x {}",
        "x=\"{\"\nvm a $x }",
        "x=\"\\\"\"\nvm $x",
        "vm a { interface lladdr",
        "vm a { interface locked",
        "staggered start parallel 99999999999 delay 99999999999",
        "local prefix /",
        "local prefix 1.2.3.4/",
        "local inet6 prefix ::/0",
    ];
    for text in inputs {
        let _ = parse("vm.conf", text, &mut NoIncludes);
        let mut fs = FakeFs::default();
        let _ = parse("vm.conf", text, &mut fs);
    }
    // Every prefix of a real file.
    let text = "ramdisk=\"/bsd.rd\"\nlocal prefix 10.0.0.0/8\nswitch \"uplink\" {\n interface bridge0\n}\nvm \"vm2\" {\n memory 1G\n disk \"/a\" format qcow2\n interface tap0 { switch \"uplink\"\n lladdr fe:e1:ba:d0:00:01 }\n allow instance { boot, owner :staff }\n boot $ramdisk\n}\n";
    for end in 0..=text.len() {
        if text.is_char_boundary(end) {
            let _ = parse("vm.conf", &text[..end], &mut NoIncludes);
        }
    }
    // Valid IPv6 edge cases.
    assert!(ok("local inet6 prefix ::/0\n").globals.local_inet6);
    assert_eq!(
        err("local prefix 1.2.3.4/\n"),
        "vm.conf:1: invalid local prefix \"1.2.3.4/\": prefix length must be 1 to 16"
    );
}

// ---- diff -----------------------------------------------------------------------------------

#[test]
fn diff_reports_changes_in_stable_order() {
    let old = ok("switch s1 { up }\nswitch s2 { up }\nvm a { memory 1G }\nvm b { memory 1G }\nvm c { memory 1G }\n");
    // Same content, moved around and with extra blank lines: no changes.
    let same =
        ok("\n\nswitch s2 { up }\n\nswitch s1 { up }\nvm c { memory 1G }\nvm b { memory 1G }\nvm a { memory 1G }\n");
    assert_eq!(diff(&old, &same), []);
    assert_eq!(diff(&old, &old), []);
    let new =
        ok("local inet6\nswitch s2 { down }\nswitch s3 { up }\nvm d { }\nvm c { memory 2G }\nvm a { memory 1G }\n");
    let changes = diff(&old, &new);
    assert_eq!(
        changes,
        [
            Change::GlobalsChanged,
            Change::SwitchRemoved("s1".into()),
            Change::SwitchChanged("s2".into()),
            Change::SwitchAdded("s3".into()),
            Change::VmRemoved("b".into()),
            Change::VmAdded("d".into()),
            Change::VmChanged("c".into()),
        ]
    );
    let shown: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        shown,
        [
            "globals: changed",
            "switch 's1': removed",
            "switch 's2': changed",
            "switch 's3': added",
            "vm 'b': removed",
            "vm 'd': added",
            "vm 'c': changed",
        ]
    );
    assert_eq!(diff(&Config::default(), &old).len(), 5);
    assert_eq!(Change::VmChanged("web".into()).to_string(), "vm 'web': changed");
}

#[test]
fn error_display_and_fields() {
    let e = parse("/etc/vm.conf", "\nvm x 5 {\n}\n", &mut NoIncludes).unwrap_err();
    assert_eq!(e.file, "/etc/vm.conf");
    assert_eq!(e.line, 2);
    assert_eq!(e.message, "syntax error: expected '{' after vm name, found number 5");
    // Adjacent strings join, so `vm x y` is the vm "xy": the error is about what follows.
    let e = parse("/etc/vm.conf", "\nvm x y z\n", &mut NoIncludes).unwrap_err();
    assert_eq!(e.to_string(), "/etc/vm.conf:2: syntax error: expected '{' after vm name, found end of line");
    // Long user text is cut in messages, which stay on one line.
    let e = err(&format!("vm \"a\" {{\n {} \n}}", "z".repeat(200)));
    assert!(e.len() < 300 && !e.contains('\n'), "{e}");
}

/// The fuzz seeds are real configurations and must parse.
#[test]
fn fuzz_seed_corpus_parses() {
    for text in [
        include_str!("../fuzz/corpus/vmconf_parse/faq.conf"),
        include_str!("../fuzz/corpus/vmconf_parse/manpage-examples.conf"),
    ] {
        ok(text);
    }
    let mut fs = FakeFs::with(&[("/etc/vm1.example.com.conf", "")]);
    let c = parse("vm.conf", include_str!("../fuzz/corpus/vmconf_parse/macro-include.conf"), &mut fs).unwrap();
    assert_eq!(c.vms[0].boot.as_deref(), Some("/bsd.rd"));
    let c = ok(include_str!("../fuzz/corpus/vmconf_parse/everything.conf"));
    assert_eq!(c.switches.len(), 2);
    assert!(!c.switches[1].enabled);
    assert_eq!(c.vms.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["openbsd", "openbsd2", "linux"]);
    let obsd = &c.vms[0];
    assert_eq!(obsd.disks[0].path, "/var/vm/openbsd.qcow2");
    assert_eq!(obsd.interfaces.len(), 3);
    assert_eq!(obsd.interfaces[1], Interface { local: true, switch: Some("lan".into()), up: Some(true), ..iface() });
    assert_eq!(c.vms[1].owner, Some(Owner { user: Some("1000".into()), group: None }));
    let linux = &c.vms[2];
    assert_eq!(linux.memory, Some(G));
    assert_eq!(linux.cmdline.as_deref(), Some("console=ttyS0 quiet"));
    assert_eq!(linux.interfaces, [Interface { local: true, ..iface() }]);
    assert!(linux.seves && !linux.enabled);
}
