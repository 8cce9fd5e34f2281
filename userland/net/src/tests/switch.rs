//! The learning switch: learning, ageing, flooding, the table bound, locked lladdr, ports and
//! the switch going down, counters, fair queueing and the snapshot.

use crate::ethernet;
use crate::switch::{
    DropReason, FairQueue, Forward, MacTable, PortId, PortSet, Switch, SwitchConfig, SwitchError, DEFAULT_AGEING_NS,
    MAX_PORTS,
};
use crate::MacAddr;

const SECOND: u64 = 1_000_000_000;

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

/// A 64-byte frame from `src` to `dst`.
fn frame(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = Vec::new();
    ethernet::write_header(&mut f, dst, src, 0x0800);
    f.resize(64, 0xab);
    f
}

fn set(ports: &[PortId]) -> PortSet {
    let mut s = PortSet::EMPTY;
    for &p in ports {
        s.insert(p);
    }
    s
}

/// A switch with `n` unlocked ports, 0..n.
fn switch(n: usize, config: SwitchConfig) -> (Switch, Vec<PortId>) {
    let mut sw = Switch::new(config);
    let ports = (0..n).map(|_| sw.add_port(None, 0).unwrap()).collect();
    (sw, ports)
}

#[test]
fn learns_then_forwards_unicast() {
    let (mut sw, p) = switch(3, SwitchConfig::default());
    // Unknown destination: flooded to the others.
    assert_eq!(sw.forward(p[0], &frame(mac(2), mac(1)), 0), Forward::Flood(set(&[p[1], p[2]])));
    assert_eq!(sw.lookup(mac(1), 0), Some(p[0]));
    // The reply is unicast back to port 0 only, and teaches port 1.
    assert_eq!(sw.forward(p[1], &frame(mac(1), mac(2)), 1), Forward::Unicast(p[0]));
    assert_eq!(sw.forward(p[0], &frame(mac(2), mac(1)), 2), Forward::Unicast(p[1]));
    // Never back where it came from.
    assert_eq!(sw.forward(p[0], &frame(mac(1), mac(9)), 3), Forward::Drop(DropReason::SameSegment));
}

#[test]
fn broadcast_and_multicast_flood() {
    let (mut sw, p) = switch(4, SwitchConfig::default());
    sw.forward(p[1], &frame(MacAddr::BROADCAST, mac(2)), 0);
    let all_but_1 = set(&[p[0], p[2], p[3]]);
    assert_eq!(sw.forward(p[1], &frame(MacAddr::BROADCAST, mac(2)), 0), Forward::Flood(all_but_1));
    assert_eq!(sw.forward(p[1], &frame(MacAddr([0x01, 0, 0x5e, 0, 0, 1]), mac(2)), 0), Forward::Flood(all_but_1));
    let ipv6_all_nodes = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(sw.forward(p[0], &frame(ipv6_all_nodes, mac(1)), 0), Forward::Flood(set(&[p[1], p[2], p[3]])));
}

#[test]
fn moves_when_seen_elsewhere() {
    let (mut sw, p) = switch(3, SwitchConfig::default());
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), 0);
    sw.forward(p[2], &frame(MacAddr::BROADCAST, mac(1)), 1);
    assert_eq!(sw.lookup(mac(1), 1), Some(p[2]));
    assert_eq!(sw.forward(p[1], &frame(mac(1), mac(2)), 2), Forward::Unicast(p[2]));
}

#[test]
fn entries_age_out() {
    let (mut sw, p) = switch(2, SwitchConfig::default());
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), 10 * SECOND);
    assert_eq!(sw.lookup(mac(1), 10 * SECOND + DEFAULT_AGEING_NS - 1), Some(p[0]));
    assert_eq!(sw.lookup(mac(1), 10 * SECOND + DEFAULT_AGEING_NS), None);
    // Aged: flooded again.
    let later = 10 * SECOND + DEFAULT_AGEING_NS;
    assert_eq!(sw.forward(p[1], &frame(mac(1), mac(2)), later), Forward::Flood(set(&[p[0]])));
    // Refreshing keeps it.
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), later);
    assert_eq!(sw.lookup(mac(1), later + DEFAULT_AGEING_NS / 2), Some(p[0]));
    // A clock stepping back does not age anything.
    assert_eq!(sw.lookup(mac(1), 0), Some(p[0]));
    // expire() frees the room.
    sw.expire(later + 2 * DEFAULT_AGEING_NS);
    assert!(sw.snapshot(later + 2 * DEFAULT_AGEING_NS).table.is_empty());
    // Ageing 0: never.
    let (mut sw, p) = switch(2, SwitchConfig { ageing_ns: 0, ..SwitchConfig::default() });
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), 0);
    assert_eq!(sw.lookup(mac(1), u64::MAX), Some(p[0]));
}

#[test]
fn table_bound_displaces_the_largest_holder() {
    let config = SwitchConfig { max_addresses: 10, ..SwitchConfig::default() };
    let (mut sw, p) = switch(3, config);
    // Two honest guests, one address each.
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), 0);
    sw.forward(p[1], &frame(MacAddr::BROADCAST, mac(2)), 0);
    // Port 2 floods from a thousand source addresses.
    for i in 0..1000u32 {
        let src = MacAddr([0x02, 0xff, 0, 0, (i >> 8) as u8, i as u8]);
        sw.forward(p[2], &frame(MacAddr::BROADCAST, src), u64::from(i) + 1);
        let snap = sw.snapshot(u64::from(i) + 1);
        assert!(snap.table.len() <= 10);
    }
    // The honest guests are still known; the flooder holds the other 8 entries, its newest.
    assert_eq!(sw.lookup(mac(1), 2000), Some(p[0]));
    assert_eq!(sw.lookup(mac(2), 2000), Some(p[1]));
    let table = sw.snapshot(2000).table;
    assert_eq!(table.iter().filter(|e| e.port == p[2]).count(), 8);
    assert!(sw.lookup(MacAddr([0x02, 0xff, 0, 0, 3, 231]), 2000).is_some(), "the last one learned");
    // An honest guest's new address gets in, displacing the flooder's oldest.
    sw.forward(p[1], &frame(MacAddr::BROADCAST, mac(3)), 3000);
    assert_eq!(sw.lookup(mac(3), 3000), Some(p[1]));
    assert_eq!(sw.snapshot(3000).table.iter().filter(|e| e.port == p[2]).count(), 7);
}

#[test]
fn table_bound_ties_prefer_the_learner() {
    let mut table = MacTable::new(2, 0);
    let (a, b) = (PortId::new(0).unwrap(), PortId::new(1).unwrap());
    table.learn(mac(1), a, 0);
    table.learn(mac(2), b, 1);
    // Full, both hold one: b's new address displaces b's own.
    table.learn(mac(3), b, 2);
    assert_eq!(table.lookup(mac(1), 3), Some(a));
    assert_eq!(table.lookup(mac(2), 3), None);
    assert_eq!(table.lookup(mac(3), 3), Some(b));
    // Capacity 0 learns nothing.
    let mut none = MacTable::new(0, 0);
    assert_eq!(none.learn(mac(1), a, 0), crate::switch::Learned::NoRoom);
    assert!(none.is_empty());
}

#[test]
fn locked_lladdr() {
    let mut sw = Switch::new(SwitchConfig::default());
    let locked = sw.add_port(Some(mac(1)), 0).unwrap();
    let open = sw.add_port(None, 0).unwrap();
    let other = sw.add_port(None, 0).unwrap();
    // Its own MAC is pinned from the start: unicast to it goes straight there.
    assert_eq!(sw.lookup(mac(1), 0), Some(locked));
    assert_eq!(sw.forward(open, &frame(mac(1), mac(2)), 0), Forward::Unicast(locked));
    // Frames from another source are dropped (vmd's vionet.c).
    assert_eq!(sw.forward(locked, &frame(mac(2), mac(9)), 0), Forward::Drop(DropReason::LockedSource));
    assert_eq!(sw.counters(locked).unwrap().dropped(DropReason::LockedSource), 1);
    // Its own are forwarded.
    assert_eq!(sw.forward(locked, &frame(mac(2), mac(1)), 0), Forward::Unicast(open));
    // Flooded unknown unicast skips it; broadcast and multicast reach it.
    assert_eq!(sw.forward(open, &frame(mac(7), mac(2)), 0), Forward::Flood(set(&[other])));
    assert_eq!(sw.forward(open, &frame(MacAddr::BROADCAST, mac(2)), 0), Forward::Flood(set(&[locked, other])));
    let multicast = MacAddr([0x01, 0, 0x5e, 0, 0, 0xfb]);
    assert_eq!(sw.forward(open, &frame(multicast, mac(2)), 0), Forward::Flood(set(&[locked, other])));
    // Another port cannot take the locked MAC over.
    assert_eq!(sw.forward(other, &frame(MacAddr::BROADCAST, mac(1)), 0), Forward::Drop(DropReason::SpoofedSource));
    assert_eq!(sw.lookup(mac(1), 0), Some(locked));
    // Pinned entries do not age.
    assert_eq!(sw.lookup(mac(1), 100 * DEFAULT_AGEING_NS), Some(locked));
    // Unlocking forgets the pin; the MAC is learned normally again.
    sw.set_port_locked(locked, None, 0).unwrap();
    assert_eq!(sw.lookup(mac(1), 0), None);
    assert_eq!(sw.forward(other, &frame(MacAddr::BROADCAST, mac(1)), 0), Forward::Flood(set(&[locked, open])));
}

#[test]
fn locked_port_filters_unicast_to_others() {
    // A locked port whose table entry points at it for another MAC cannot happen through
    // learning; force it by locking after learning.
    let mut sw = Switch::new(SwitchConfig::default());
    let a = sw.add_port(None, 0).unwrap();
    let b = sw.add_port(None, 0).unwrap();
    sw.forward(a, &frame(MacAddr::BROADCAST, mac(5)), 0);
    sw.set_port_locked(a, Some(mac(1)), 0).unwrap();
    // mac(5) was forgotten with a's entries: flooded, but not to a (locked to mac(1)).
    assert_eq!(sw.forward(b, &frame(mac(5), mac(2)), 0), Forward::Flood(PortSet::EMPTY));
}

#[test]
fn ports_down_and_switch_disabled() {
    let (mut sw, p) = switch(3, SwitchConfig::default());
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), 0);
    sw.forward(p[1], &frame(MacAddr::BROADCAST, mac(2)), 0);
    sw.set_port_up(p[1], false, 0).unwrap();
    // Its entries are gone and it is left out of floods; its frames are dropped.
    assert_eq!(sw.lookup(mac(2), 0), None);
    assert_eq!(sw.forward(p[0], &frame(mac(2), mac(1)), 0), Forward::Flood(set(&[p[2]])));
    assert_eq!(sw.forward(p[1], &frame(mac(1), mac(2)), 0), Forward::Drop(DropReason::PortDown));
    sw.set_port_up(p[1], true, 0).unwrap();
    assert_eq!(sw.forward(p[1], &frame(mac(1), mac(2)), 0), Forward::Unicast(p[0]));
    // Up again while up: nothing forgotten.
    sw.set_port_up(p[1], true, 0).unwrap();
    assert_eq!(sw.lookup(mac(2), 0), Some(p[1]));
    // A disabled switch drops everything, keeps its table.
    sw.set_enabled(false);
    assert_eq!(sw.forward(p[0], &frame(mac(2), mac(1)), 0), Forward::Drop(DropReason::SwitchDown));
    sw.set_enabled(true);
    assert_eq!(sw.forward(p[0], &frame(mac(2), mac(1)), 0), Forward::Unicast(p[1]));
    // Unknown ports.
    let ghost = PortId::new(40).unwrap();
    assert_eq!(sw.forward(ghost, &frame(mac(2), mac(1)), 0), Forward::Drop(DropReason::PortDown));
    assert_eq!(sw.set_port_up(ghost, true, 0), Err(SwitchError::NoSuchPort(ghost)));
    assert_eq!(sw.remove_port(ghost), Err(SwitchError::NoSuchPort(ghost)));
    // Removing a port forgets it; its index is reused.
    sw.remove_port(p[1]).unwrap();
    assert_eq!(sw.lookup(mac(2), 0), None);
    assert_eq!(sw.add_port(None, 0), Ok(p[1]));
}

#[test]
fn bad_frames() {
    let (mut sw, p) = switch(2, SwitchConfig::default());
    assert_eq!(sw.forward(p[0], &[0; 13], 0), Forward::Drop(DropReason::Runt));
    assert_eq!(sw.forward(p[0], &[], 0), Forward::Drop(DropReason::Runt));
    let mut big = frame(mac(2), mac(1));
    big.resize(ethernet::MAX_FRAME_LEN, 0);
    assert!(matches!(sw.forward(p[0], &big, 0), Forward::Flood(_)));
    big.push(0);
    assert_eq!(sw.forward(p[0], &big, 0), Forward::Drop(DropReason::Oversize));
    assert_eq!(sw.forward(p[0], &frame(mac(2), MacAddr::BROADCAST), 0), Forward::Drop(DropReason::GroupSource));
    assert_eq!(
        sw.forward(p[0], &frame(mac(2), MacAddr([0x01, 0, 0x5e, 0, 0, 1])), 0),
        Forward::Drop(DropReason::GroupSource)
    );
    // A header-only frame and a tagged frame are switched by address.
    assert!(matches!(sw.forward(p[0], &frame(mac(2), mac(1))[..14], 0), Forward::Flood(_)));
    let mut tagged = frame(mac(2), mac(1));
    tagged[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    assert!(matches!(sw.forward(p[0], &tagged, 0), Forward::Flood(_)));
}

#[test]
fn counters() {
    let (mut sw, p) = switch(3, SwitchConfig::default());
    sw.forward(p[0], &frame(MacAddr::BROADCAST, mac(1)), 0); // to 1 and 2
    sw.forward(p[1], &frame(mac(1), mac(2)), 0); // to 0
    sw.forward(p[1], &[0; 3], 0); // runt
    let c0 = *sw.counters(p[0]).unwrap();
    let c1 = *sw.counters(p[1]).unwrap();
    let c2 = *sw.counters(p[2]).unwrap();
    assert_eq!((c0.frames_in, c0.bytes_in, c0.frames_out, c0.bytes_out), (1, 64, 1, 64));
    assert_eq!((c1.frames_in, c1.bytes_in, c1.frames_out, c1.dropped(DropReason::Runt)), (2, 67, 1, 1));
    assert_eq!((c2.frames_in, c2.frames_out, c2.dropped_total()), (0, 1, 0));
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert!(DropReason::ALL[..i].iter().all(|r| r.name() != reason.name()));
    }
}

#[test]
fn port_limits() {
    let mut sw = Switch::new(SwitchConfig::default());
    for i in 0..MAX_PORTS {
        assert_eq!(sw.add_port(None, 0).map(PortId::index), Ok(i));
    }
    assert_eq!(sw.add_port(None, 0), Err(SwitchError::NoFreePort));
    assert_eq!(PortId::new(MAX_PORTS), None);
    // Flooding to 63 ports.
    match sw.forward(PortId::new(5).unwrap(), &frame(MacAddr::BROADCAST, mac(1)), 0) {
        Forward::Flood(s) => {
            assert_eq!(s.len(), 63);
            assert!(!s.contains(PortId::new(5).unwrap()));
            assert_eq!(s.iter().count(), 63);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fair_queue_round_robin_and_bounds() {
    let (a, b, c) = (PortId::new(0).unwrap(), PortId::new(1).unwrap(), PortId::new(9).unwrap());
    let mut q = FairQueue::new(3);
    for i in 0..10 {
        let _ = q.push(a, ("a", i)); // a floods: only 3 fit
    }
    assert_eq!(q.push(a, ("a", 99)), Err(("a", 99)));
    q.push(b, ("b", 0)).unwrap();
    q.push(c, ("c", 0)).unwrap();
    q.push(c, ("c", 1)).unwrap();
    let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(p, item)| (p.index(), item)).collect();
    assert_eq!(order, [(0, ("a", 0)), (1, ("b", 0)), (9, ("c", 0)), (0, ("a", 1)), (9, ("c", 1)), (0, ("a", 2))]);
    assert!(q.is_empty());
    // Round-robin resumes after the last port served, not at 0.
    q.push(a, ("a", 0)).unwrap();
    q.push(b, ("b", 0)).unwrap();
    assert_eq!(q.pop().map(|(p, _)| p), Some(b));
    assert_eq!(q.pop().map(|(p, _)| p), Some(a));
}

#[test]
fn switch_queue_keeps_a_flooder_to_its_share() {
    let config = SwitchConfig { queue_len: 8, ..SwitchConfig::default() };
    let (mut sw, p) = switch(3, config);
    // Port 0 floods 100 frames, port 1 sends 4; only 8 of the flood wait.
    let accepted = (0..100).filter(|_| sw.enqueue(p[0], frame(MacAddr::BROADCAST, mac(1)))).count();
    assert_eq!(accepted, 8);
    for _ in 0..4 {
        assert!(sw.enqueue(p[1], frame(mac(1), mac(2))));
    }
    assert_eq!(sw.counters(p[0]).unwrap().dropped(DropReason::QueueFull), 92);
    let served: Vec<PortId> = std::iter::from_fn(|| sw.forward_next(0)).map(|(from, _, _)| from).collect();
    // Port 1's four frames are among the first eight served.
    assert_eq!(served[..8].iter().filter(|&&from| from == p[1]).count(), 4);
    assert_eq!(served.len(), 12);
    // A down port's frames are not queued, and going down empties its queue.
    sw.set_port_up(p[2], false, 0).unwrap();
    assert!(!sw.enqueue(p[2], frame(mac(1), mac(3))));
    assert!(sw.enqueue(p[1], frame(mac(1), mac(2))));
    sw.set_port_up(p[1], false, 0).unwrap();
    assert!(sw.forward_next(0).is_none());
}

#[test]
fn snapshot_for_the_shell() {
    let mut sw = Switch::new(SwitchConfig::default());
    let locked = sw.add_port(Some(MacAddr([0xfe, 0xe1, 0xba, 0xd0, 0, 1])), 0).unwrap();
    let open = sw.add_port(None, 0).unwrap();
    sw.forward(open, &frame(MacAddr::BROADCAST, mac(2)), SECOND);
    sw.forward(locked, &frame(mac(2), mac(9)), SECOND);
    sw.set_port_up(open, true, SECOND).unwrap();
    sw.forward(open, &frame(MacAddr::BROADCAST, mac(2)), SECOND);
    let snap = sw.snapshot(4 * SECOND);
    assert_eq!(snap.ports.len(), 2);
    assert_eq!(snap.table.len(), 2);
    assert_eq!(
        snap.to_string(),
        "switch enabled, 2 ports, 2 addresses\n\
         port 0 up locked fe:e1:ba:d0:00:01: in 1 frames 64 bytes, out 2 frames 128 bytes, queued 0, dropped 1 (locked-source 1)\n\
         port 1 up: in 2 frames 128 bytes, out 0 frames 0 bytes, queued 0, dropped 0\n\
         02:00:00:00:00:02 port 1 age 3 s\n\
         fe:e1:ba:d0:00:01 port 0 age 4 s locked\n"
    );
}
