//! Parses arbitrary bytes (lossy UTF-8) as vm.conf. Every include reads the same bytes again, up
//! to a few times, so include nesting, loops and macros across files are exercised too.
//! Checks: no panic, errors stay on one line, and a configuration differs from itself in nothing.
#![no_main]

use keel_vmconf::{diff, parse, Includer};
use libfuzzer_sys::fuzz_target;

struct SameData<'a> {
    text: &'a str,
    reads_left: usize,
}

impl Includer for SameData<'_> {
    fn read(&mut self, path: &str) -> Result<String, String> {
        if self.reads_left == 0 {
            return Err(format!("no more includes ({} bytes of path)", path.len()));
        }
        self.reads_left -= 1;
        Ok(self.text.to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut inc = SameData { text: &text, reads_left: 12 };
    match parse("vm.conf", &text, &mut inc) {
        Ok(config) => {
            assert!(diff(&config, &config).is_empty());
            for change in diff(&config, &keel_vmconf::Config::default()) {
                let _ = change.to_string();
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                !shown.chars().any(|c| c.is_control() || (c.is_whitespace() && c != ' ')),
                "error not on one clean line: {shown:?}"
            );
        }
    }
});
