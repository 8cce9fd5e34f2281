//! vmd (bring-up version).
#![no_std]
#![no_main]

extern crate alloc;

use keel_abi::{InfoKind, HANDLE_CONSOLE, HANDLE_MODULES};
use keel_prompt::{Edit, LineEditor};
use keel_rt::{print, println, sys};

#[no_mangle]
fn keel_main() -> i32 {
    let n = sys::notify_create().expect("notification");
    sys::console_bind(HANDLE_CONSOLE, n, 0).expect("bind");
    sys::klog_bind(HANDLE_CONSOLE, n, 1).expect("klog bind");
    sys::console_claim(HANDLE_CONSOLE).expect("claim");
    let mut klog_pos = u64::MAX;
    let mut ed = LineEditor::new();
    let mut buf = [0u8; 256];
    let mut children = alloc::vec::Vec::new();
    println!("vmd: ready");
    print!("keel> ");
    loop {
        let bits = sys::notify_wait(n, None).unwrap_or(0);
        if bits & 2 != 0 {
            let mut lb = [0u8; 1024];
            if klog_pos == u64::MAX {
                klog_pos = sys::klog_read(HANDLE_CONSOLE, u64::MAX, &mut lb).map(|(_, e)| e).unwrap_or(0);
            } else if let Ok((k, end)) = sys::klog_read(HANDLE_CONSOLE, klog_pos, &mut lb) {
                klog_pos = end;
                if k > 0 {
                    print!("\r{}", core::str::from_utf8(&lb[..k]).unwrap_or("?"));
                    print!("keel> ");
                }
            }
        }
        if bits & 4 != 0 {
            for &h in &children {
                if let Ok(st) = sys::process_wait(h) {
                    println!("child exited: {st:?}");
                }
            }
        }
        let count = sys::console_read(HANDLE_CONSOLE, &mut buf).unwrap_or(0);
        for &b in &buf[..count] {
            match ed.feed(b) {
                Edit::None => {}
                Edit::Echo(e) => {
                    let _ = sys::console_write(HANDLE_CONSOLE, e);
                }
                Edit::Line(line) => {
                    println!();
                    let mut out = [0u8; 4096];
                    match line {
                        "cpus" => {
                            let k = sys::kernel_info(InfoKind::Cpus, &mut out).unwrap_or(0);
                            print!("{}", core::str::from_utf8(&out[..k]).unwrap_or(""));
                        }
                        "ps" => {
                            let k = sys::kernel_info(InfoKind::Processes, &mut out).unwrap_or(0);
                            print!("{}", core::str::from_utf8(&out[..k]).unwrap_or(""));
                        }
                        "crash" => match sys::process_spawn(HANDLE_MODULES, "crashtest", n, 2) {
                            Ok((h, pid)) => {
                                children.push(h);
                                println!("started {pid}");
                            }
                            Err(e) => println!("spawn: {e}"),
                        },
                        other => println!("unknown command '{other}' (try help)"),
                    }
                    print!("keel> ");
                }
            }
        }
    }
}
