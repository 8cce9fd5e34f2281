//! The shell and vm.conf accept exactly the same memory sizes, VM names and switch names, with
//! the same values and the same reasons for a refusal (issue 13: one home per fact), and the
//! same image paths and disk and interface counts.
//!
//! Each case is fed to both front ends as a user would write it: `start -m SIZE web` and
//! `vm "web" { memory SIZE }`, `start -t NAME web` (a template is always a name) and
//! `start NAME` against `vm "NAME" {}`, `start -n SWITCH web` and `interface { switch "SWITCH" }`.
//! Both must accept with the same result or both refuse; for printable ASCII text the message
//! must be keel-vmlimits' own, quoted each front end's way. What this does not test: lexing
//! details that are vm.conf's alone (a bare `99999999999999999999` is a lexer error there;
//! both refuse it, which is all that is checked for unquoted text).

use keel_shell::{parse, Command, StartArgs, Target};
use keel_vmconf::NoIncludes;
use keel_vmlimits::{
    check_path, check_switch_name, check_vm_name, parse_memory, MAX_DISKS_PER_VM, MAX_MEMORY, MAX_NICS_PER_VM,
    MIN_MEMORY, PATH_MAX, VM_NAME_MAX,
};

/// Sizes: every suffix and none, 0, 1M and around it, around the maximum, and garbage.
fn sizes() -> Vec<String> {
    let mut v: Vec<String> = [
        "0",
        "1",
        "512",
        "1023K",
        "1024K",
        "1025K",
        "1048575",
        "1048576",
        "1048577",
        "1M",
        "1m",
        "1.5M",
        "1.9M",
        "512M",
        "512m",
        "1G",
        "1g",
        "1.5G",
        "4.5G",
        "0.5G",
        ".5G",
        "2.",
        "1T",
        "1t",
        "2T",
        "1P",
        "1E",
        "15E",
        "16E",
        "128G",
        "128g",
        "129G",
        "200G",
        "127.999G",
        "128.001G",
        "131071M",
        "131072M",
        "131073M",
        "134217728K",
        "134217729K",
        "137438953471",
        "137438953472",
        "137438953473",
        "1048576B",
        "1048576b",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
        "",
        "G",
        "M",
        ".",
        "..",
        "lots",
        "1GB",
        "1X",
        "1Q",
        "12X",
        "1 G",
        " 1G",
        "1G ",
        "1G.",
        "+1G",
        "++1G",
        "-1G",
        "-0",
        "-",
        "1.2.3G",
        "1..0",
        "5e3",
        "5.0E3",
        "0x10M",
        "1é",
        "é",
        "1G\u{1b}",
    ]
    .iter()
    .map(|s| String::from(*s))
    .collect();
    v.push(MIN_MEMORY.to_string());
    v.push((MIN_MEMORY - 1).to_string());
    v.push(MAX_MEMORY.to_string());
    v.push((MAX_MEMORY + 1).to_string());
    v
}

/// Names: leading digits, dashes, dots, underscores, empty, too long, non-ASCII, odd bytes.
fn names() -> Vec<String> {
    let mut v: Vec<String> = [
        "a",
        "web",
        "Web",
        "WEB",
        "web1",
        "1web",
        "123",
        "0",
        "007",
        "4294967296",
        "web-1",
        "web.example.com",
        "my_vm",
        "a-",
        "a.",
        "a_",
        "a..b",
        "-web",
        ".web",
        "_web",
        "-",
        ".",
        "_",
        "",
        "web!",
        "my vm",
        "we/b",
        "web:1",
        "web@x",
        "wéb",
        "é",
        "日本",
        "web\u{1b}",
        "a\u{2028}b",
        "web~",
        "x+y",
    ]
    .iter()
    .map(|s| String::from(*s))
    .collect();
    for len in [VM_NAME_MAX - 1, VM_NAME_MAX, VM_NAME_MAX + 1, 100] {
        v.push("a".repeat(len));
        v.push(format!("1{}", "a".repeat(len - 1)));
    }
    v
}

/// What a front end made of a case: the value, or the error message (without verb, file or line).
type Outcome<T> = Result<T, String>;

fn printable(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_graphic() || c == ' ') && text.chars().count() <= 40
}

fn shell_start(line: &str) -> Outcome<StartArgs> {
    match parse(line) {
        Ok(Command::Start(args)) => Ok(args),
        Ok(other) => panic!("{line:?} parsed as {other:?}"),
        Err(e) => Err(e.message().to_string()),
    }
}

fn vmconf_vm(text: &str) -> Outcome<keel_vmconf::VmConfig> {
    match keel_vmconf::parse("vm.conf", text, &mut NoIncludes) {
        Ok(config) => Ok(config.vms.into_iter().next().expect("one vm")),
        // The parser puts `vm "web": ` before errors inside the block.
        Err(e) => Err(e.message.strip_prefix("vm \"web\": ").unwrap_or(&e.message).to_string()),
    }
}

/// `text` inside double quotes for a shell line or vm.conf (both use `\"` and `\\`).
fn dq(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[test]
fn memory_sizes_agree() {
    for size in sizes() {
        let shell = shell_start(&format!("start -m {} web", dq(&size))).map(|a| a.memory.expect("-m given"));
        let conf = vmconf_vm(&format!("vm \"web\" {{\n memory {}\n}}\n", dq(&size))).map(|v| v.memory.unwrap());
        let rule = parse_memory(&size);
        match (&shell, &conf, rule) {
            (Ok(a), Ok(b), Ok(want)) => assert!(*a == want && *b == want, "{size:?}: shell {a}, vm.conf {b}"),
            (Err(a), Err(b), Err(e)) => {
                if printable(&size) {
                    assert_eq!(*a, e.message(&format!("'{size}'")), "shell, {size:?}");
                    assert_eq!(*b, e.message(&format!("\"{size}\"")), "vm.conf, {size:?}");
                }
            }
            _ => panic!("{size:?}: shell {shell:?}, vm.conf {conf:?}, rule {rule:?}"),
        }
        // Unquoted too, where both front ends take the text as one word (vm.conf's words start
        // with a letter or digit: `memory .5G` is a syntax error there, as in vmd).
        let word = size.starts_with(|c: char| c.is_ascii_alphanumeric());
        if word && size.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            let shell = shell_start(&format!("start -m {size} web")).map(|a| a.memory);
            let conf = vmconf_vm(&format!("vm \"web\" {{\n memory {size}\n}}\n")).map(|v| v.memory);
            assert_eq!(shell.is_ok(), conf.is_ok(), "{size:?} unquoted: shell {shell:?}, vm.conf {conf:?}");
            if let (Ok(a), Ok(b)) = (shell, conf) {
                assert_eq!(a, b, "{size:?} unquoted");
            }
        }
    }
}

#[test]
fn vm_names_agree() {
    for name in names() {
        let conf = vmconf_vm(&format!("vm {} {{\n}}\n", dq(&name))).map(|v| v.name);
        let template = shell_start(&format!("start -t {} web", dq(&name))).map(|a| a.template.expect("-t given"));
        // As the VM to start, an all-digit word is an id (as in vmctl), never a name.
        let started = shell_start(&format!("start {}", dq(&name))).map(|a| a.name);
        let rule = check_vm_name(&name);
        match (&template, &conf, rule) {
            (Ok(t), Ok(c), Ok(())) => {
                assert!(*t == name && *c == name, "{name:?}: shell {t:?}, vm.conf {c:?}");
                assert_eq!(started, Ok(Target::Name(name.clone())), "start {name:?}");
            }
            (Err(t), Err(c), Err(e)) => {
                if printable(&name) {
                    assert_eq!(*t, e.message("template name", &format!("'{name}'")), "shell -t, {name:?}");
                    assert_eq!(*c, e.message("VM name", &format!("\"{name}\"")), "vm.conf, {name:?}");
                }
                assert!(!matches!(started, Ok(Target::Name(_))), "start {name:?} took it as a name: {started:?}");
            }
            _ => panic!("{name:?}: shell -t {template:?}, vm.conf {conf:?}, rule {rule:?}"),
        }
    }
}

#[test]
fn switch_names_agree() {
    let mut cases = names();
    cases.push("s".repeat(64));
    cases.push("1 odd/switch".into());
    for name in cases {
        let shell = shell_start(&format!("start -n {} web", dq(&name))).map(|a| a.switches);
        let conf = vmconf_vm(&format!("vm \"web\" {{\n interface {{ switch {} }}\n}}\n", dq(&name)))
            .map(|v| v.interfaces[0].switch.clone());
        match (&shell, &conf, check_switch_name(&name)) {
            (Ok(s), Ok(c), Ok(())) => {
                assert!(s.as_slice() == std::slice::from_ref(&name) && c.as_deref() == Some(&*name), "{name:?}")
            }
            (Err(_), Err(_), Err(_)) => {}
            _ => panic!("{name:?}: shell {shell:?}, vm.conf {conf:?}"),
        }
    }
}

#[test]
fn image_paths_agree() {
    let cases = ["/bsd.rd", "hello", "a b", "é", "", &"p".repeat(PATH_MAX), &"p".repeat(PATH_MAX + 1)];
    for (flag, option) in [("-b", "boot"), ("-d", "disk"), ("-r", "cdrom")] {
        for path in cases {
            let shell = shell_start(&format!("start {flag} {} web", dq(path)));
            let conf = vmconf_vm(&format!("vm \"web\" {{\n {option} {}\n}}\n", dq(path)));
            let rule = check_path(path);
            assert!(
                shell.is_ok() == rule.is_ok() && conf.is_ok() == rule.is_ok(),
                "{option} {path:?}: shell {shell:?}, vm.conf {conf:?}, rule {rule:?}"
            );
        }
    }
}

#[test]
fn disk_and_interface_counts_agree() {
    for n in 0..=MAX_DISKS_PER_VM + 1 {
        let shell = shell_start(&format!("start {} web", "-d disk.img ".repeat(n)));
        let conf = vmconf_vm(&format!("vm \"web\" {{\n{}}}\n", " disk disk.img\n".repeat(n)));
        assert!(shell.is_ok() == (n <= MAX_DISKS_PER_VM) && conf.is_ok() == shell.is_ok(), "{n} disks");
    }
    for n in 1..=MAX_NICS_PER_VM + 1 {
        let shell = shell_start(&format!("start -i {n} web"));
        let conf = vmconf_vm(&format!("vm \"web\" {{\n interfaces {n}\n}}\n"));
        assert!(shell.is_ok() == (n <= MAX_NICS_PER_VM) && conf.is_ok() == shell.is_ok(), "{n} interfaces");
    }
}
