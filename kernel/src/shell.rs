//! The foundation's serial prompt (`keel> `): reads COM1, edits lines with `keel-prompt`, and runs
//! the few commands that describe the machine. A placeholder until vmd's shell in ring 3.

use keel_prompt::{parse, Command, Edit, LineEditor, HELP, PROMPT};

use crate::arch::x86_64::{apic, instructions, pit};
use crate::{mm, print, println, virt};

pub fn run() -> ! {
    let mut editor = LineEditor::new();
    print!("{PROMPT}");
    loop {
        let Some(byte) = crate::serial::try_read_byte() else {
            // Nothing typed: sleep until the next interrupt (the 100 Hz timer at the latest).
            instructions::enable_interrupts_and_halt();
            continue;
        };
        match editor.feed(byte) {
            Edit::None => {}
            Edit::Echo(bytes) => crate::serial::write_bytes(bytes),
            Edit::Line(line) => {
                print!("\n");
                match parse(line) {
                    Ok(command) => execute(command),
                    Err(e) => println!("{e}"),
                }
                print!("{PROMPT}");
            }
        }
    }
}

fn execute(command: Command) {
    match command {
        Command::Empty => {}
        Command::Help => println!("{HELP}"),
        Command::Version => println!("{}", crate::version_line()),
        Command::Cpus => cpus(),
        Command::Mem => mem(),
        Command::Reboot => reboot(),
    }
}

fn cpus() {
    let count = apic::cpu_count();
    for index in 0..count {
        let state = if apic::is_online(index) { "online" } else { "offline" };
        let role = if index == 0 { ", boot CPU" } else { "" };
        let verdict = virt::verdict_of(index).map_or_else(|| "not checked".into(), |v| alloc::format!("{v}"));
        println!(
            "cpu {index}: APIC id {}, {state}{role}, timer ticks {}; {verdict}",
            apic::apic_id_of(index),
            apic::ticks_of(index)
        );
    }
    println!("{count} CPUs");
}

fn mem() {
    let s = mm::stats();
    println!("physical memory: {} MiB usable, {} MiB free", s.usable_bytes >> 20, s.free_bytes >> 20);
    println!("kernel heap: {} KiB used of {} KiB", s.heap.used / 1024, s.heap.size / 1024);
}

fn reboot() -> ! {
    println!("rebooting");
    // SAFETY: these are the PC's standard reset paths and we mean to reset: the keyboard
    // controller's pulse-reset command (0xfe to port 0x64), then the chipset reset control
    // register (port 0xcf9: full reset). See: Intel PCH datasheet (RST_CNT).
    unsafe {
        instructions::outb(0x64, 0xfe);
        pit::sleep_us(100_000);
        instructions::outb(0xcf9, 0x02);
        instructions::outb(0xcf9, 0x06);
    }
    pit::sleep_us(100_000);
    println!("reboot failed: reset the machine by hand");
    instructions::halt_forever()
}
