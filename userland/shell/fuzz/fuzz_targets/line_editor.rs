//! Fuzz the line editor and the command parser: random serial bytes in, every completed line
//! parsed. Checks the editor's bounds and that nothing panics.
#![no_main]

use keel_shell::editor::{EditorEvent, LineEditor, HISTORY_LEN, MAX_LINE};
use keel_shell::{format_show, parse, Command, VmRow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut editor = LineEditor::new();
    let mut echo = Vec::new();
    for &byte in data {
        echo.clear();
        let event = editor.feed(byte, &mut echo);
        assert!(editor.current().len() <= MAX_LINE);
        // One byte never echoes more than a full line replaced by another.
        assert!(echo.len() <= 4 * MAX_LINE + 4);
        if let Some(EditorEvent::Line(line)) = event {
            assert!(line.len() <= MAX_LINE);
            assert!(line.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            check_line(&line);
        }
    }
    assert!(editor.history().count() <= HISTORY_LEN);
    // The parser also takes any string (not only what the editor lets through).
    if let Ok(text) = std::str::from_utf8(data) {
        check_line(text);
    }
});

fn check_line(line: &str) {
    match parse(line) {
        Ok(Command::Show(_)) => {
            let row = VmRow {
                id: 1,
                pid: None,
                vcpus: 1,
                max_mem: line.len() as u64 * 1_000_003,
                cur_mem: 0,
                tty: None,
                owner: line.into(),
                state: "stopped".into(),
                name: "x".into(),
            };
            let _ = format_show(&[row]);
        }
        Ok(_) => {}
        Err(e) => {
            let text = e.to_string();
            // One line of error, then the usage (start's takes two lines).
            assert!(text.lines().count() <= 3, "{text}");
            assert!(!text.is_empty());
        }
    }
}
