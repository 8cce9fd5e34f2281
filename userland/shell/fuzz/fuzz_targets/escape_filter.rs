//! Fuzz the console escape filter and the console backlog: random keystrokes and guest output.
#![no_main]

use keel_shell::{Console, EscapeAction, EscapeFilter, LoopbackStream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The filter alone: at most two bytes out per byte in, and a `~.` never leaks to the guest.
    let mut filter = EscapeFilter::new();
    let mut to_guest = Vec::new();
    let mut forwarded = 0usize;
    for &byte in data {
        to_guest.clear();
        let action = filter.feed(byte, &mut to_guest);
        assert!(to_guest.len() <= 2);
        if action != EscapeAction::Continue {
            assert!(to_guest.is_empty());
        }
        forwarded += to_guest.len();
    }
    let mut rest = Vec::new();
    filter.flush(&mut rest);
    assert!(forwarded + rest.len() <= data.len());

    // A console on a loopback stream: keystrokes go round and come back as guest output.
    let mut console = Console::new(64);
    let mut stream = LoopbackStream::new(32);
    let mut to_user = Vec::new();
    console.attach(&mut to_user);
    let mut buf = [0u8; 16];
    for (i, &byte) in data.iter().enumerate() {
        to_guest.clear();
        if console.user_input(byte, &mut to_guest) == EscapeAction::Detach {
            assert!(!console.is_attached());
            if i % 2 == 0 {
                console.attach(&mut to_user);
            }
        }
        stream.write(&to_guest);
        let n = stream.read(&mut buf[..usize::from(byte) % 16]);
        console.guest_output(&buf[..n], &mut to_user);
        assert!(console.backlog().len() <= 64);
        to_user.clear();
    }
});
