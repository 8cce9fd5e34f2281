//! A learning switch driven by hostile frames and port changes. Bytes 0..4: table size (1 to
//! 32), queue length (1 to 8), ports (1 to 8), which of them are locked (port i to MAC
//! 02:00:00:00:00:0i). Then records of `op arg seconds len` and `len` frame bytes. The low 3
//! bits of `op` pick forward, enqueue, forward_next, port up/down, lock, add/remove port,
//! enable/disable, expire; bit 3 makes the frame's first two bytes pick its destination and
//! source from eight addresses (and broadcast), so that learning, moves and the table bound
//! are reached. `seconds` advances the clock (ageing is 240 s).
//! Checks, against a model of the ports kept here: nothing panics; no frame goes back to its
//! port, to a port that is down or absent, or to a locked port other than unicast to its MAC,
//! broadcast or multicast; a locked port's frames from another source are dropped; the table
//! stays within its bound (plus pinned locked MACs).
#![no_main]

use keel_net::switch::{Forward, PortId, PortSet, Switch, SwitchConfig};
use keel_net::MacAddr;
use libfuzzer_sys::fuzz_target;

const PORTS: usize = 8;

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

#[derive(Clone, Copy)]
struct ModelPort {
    up: bool,
    locked: Option<MacAddr>,
}

fn check(model: &[Option<ModelPort>; PORTS], from: PortId, frame: &[u8], enabled: bool, decision: Forward) {
    let targets = match decision {
        Forward::Drop(_) => return,
        Forward::Unicast(to) => {
            let mut set = PortSet::EMPTY;
            set.insert(to);
            set
        }
        Forward::Flood(set) => set,
    };
    assert!(enabled, "a disabled switch forwarded");
    let sender = model[from.index()].expect("forwarded from an absent port");
    assert!(sender.up, "forwarded from a down port");
    let dst = MacAddr(frame[0..6].try_into().unwrap());
    let src = MacAddr(frame[6..12].try_into().unwrap());
    assert!(!src.is_group());
    if let Some(locked) = sender.locked {
        assert_eq!(src, locked, "a locked port's spoofed frame was forwarded");
    }
    assert!(!targets.contains(from), "sent back to its port");
    for to in targets.iter() {
        let port = model.get(to.index()).copied().flatten().expect("sent to an absent port");
        assert!(port.up, "sent to a down port");
        if let Some(locked) = port.locked {
            assert!(dst.is_group() || dst == locked, "a locked port got another's unicast");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, mut rest)) = data.split_first_chunk::<4>() else { return };
    let config = SwitchConfig {
        max_addresses: 1 + usize::from(head[0] % 32),
        queue_len: 1 + usize::from(head[1] % 8),
        ..SwitchConfig::default()
    };
    let mut sw = Switch::new(config);
    let mut model: [Option<ModelPort>; PORTS] = [None; PORTS];
    let mut locked_count = 0;
    for i in 0..1 + usize::from(head[2]) % PORTS {
        let locked = (head[3] >> i & 1 != 0).then(|| mac(i as u8));
        locked_count += usize::from(locked.is_some());
        let id = sw.add_port(locked, 0).unwrap();
        model[id.index()] = Some(ModelPort { up: true, locked });
    }
    let mut enabled = true;
    let mut now: u64 = 0;

    while let Some((record, tail)) = rest.split_first_chunk::<4>() {
        let [op, arg, seconds, len] = *record;
        let len = usize::from(len).min(tail.len());
        let (frame_bytes, next) = tail.split_at(len);
        rest = next;
        now = now.saturating_add(u64::from(seconds) * 1_000_000_000);
        let port = PortId::new(usize::from(arg) % PORTS).unwrap();

        let mut frame = frame_bytes.to_vec();
        if op & 8 != 0 && frame.len() >= 2 {
            let (d, s) = (frame[0], frame[1]);
            let dst = if d & 0x80 != 0 { MacAddr::BROADCAST } else { mac(d % 8) };
            let mut header = Vec::with_capacity(12 + frame.len());
            header.extend_from_slice(&dst.0);
            header.extend_from_slice(&mac(s % 8).0);
            header.extend_from_slice(&frame[2..]);
            frame = header;
        }

        match op & 7 {
            0 => {
                let decision = sw.forward(port, &frame, now);
                if model[port.index()].is_some() {
                    check(&model, port, &frame, enabled, decision);
                }
            }
            1 => {
                let _ = sw.enqueue(port, frame);
            }
            2 => {
                if let Some((from, frame, decision)) = sw.forward_next(now) {
                    check(&model, from, &frame, enabled, decision);
                }
            }
            3 => {
                let up = arg & 0x80 != 0;
                if sw.set_port_up(port, up, now).is_ok() {
                    model[port.index()].as_mut().unwrap().up = up;
                } else {
                    assert!(model[port.index()].is_none());
                }
            }
            4 => {
                let locked = (arg & 0x80 != 0).then(|| mac((arg >> 4) & 7));
                if sw.set_port_locked(port, locked, now).is_ok() {
                    let p = model[port.index()].as_mut().unwrap();
                    locked_count = locked_count + usize::from(locked.is_some()) - usize::from(p.locked.is_some());
                    p.locked = locked;
                } else {
                    assert!(model[port.index()].is_none());
                }
            }
            5 => {
                if arg & 0x80 != 0 {
                    if model.iter().any(Option::is_none) {
                        let id = sw.add_port(None, now).unwrap();
                        assert!(model[id.index()].is_none(), "port index reused while in use");
                        model[id.index()] = Some(ModelPort { up: true, locked: None });
                    }
                } else if sw.remove_port(port).is_ok() {
                    let p = model[port.index()].take().unwrap();
                    locked_count -= usize::from(p.locked.is_some());
                } else {
                    assert!(model[port.index()].is_none());
                }
            }
            6 => {
                enabled = arg & 1 != 0;
                sw.set_enabled(enabled);
            }
            _ => sw.expire(now),
        }
        let snapshot = sw.snapshot(now);
        assert!(snapshot.table.len() <= config.max_addresses + locked_count, "table over its bound");
        for entry in &snapshot.table {
            let port = model[entry.port.index()].expect("table entry for an absent port");
            assert!(port.up, "table entry for a down port");
        }
    }
});
