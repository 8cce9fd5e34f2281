//! The kernel's fallback prompt (`keel> `), used only when the image has no `vmd` module: reads
//! COM1 by polling, edits lines with `keel-prompt`, and answers the machine commands.

use keel_abi::InfoKind;
use keel_prompt::{parse, Command, Edit, LineEditor, HELP, PROMPT};

use crate::arch::x86_64::instructions;
use crate::{info, print, println};

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
        Command::Version => print!("{}", info::report(InfoKind::Version)),
        Command::Cpus => print!("{}", info::report(InfoKind::Cpus)),
        Command::Mem => print!("{}", info::report(InfoKind::Memory)),
        Command::Reboot => info::reboot(),
    }
}
