//! Host tests for the split virtqueue: the normal path, index wrap-around, and every way a driver
//! can break the protocol (loops, bad indices, indirect descriptors, rings outside RAM).

use alloc::vec::Vec;

use super::*;
use crate::testdriver::{Driver, DATA, RAM};

fn queue_for(d: &Driver) -> SplitQueue {
    let mut q = SplitQueue::new(d.size);
    assert!(q.set_size(d.size));
    assert!(q.set_addresses(d.desc, d.avail, d.used));
    q.enable();
    q
}

/// Collects a chain's descriptors.
fn chain(q: &SplitQueue, d: &mut Driver, head: u16) -> Result<Vec<Descriptor>, QueueError> {
    let mut out = Vec::new();
    q.for_each_desc(&mut d.mem, head, |_, desc| {
        out.push(desc);
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn sizes() {
    assert_eq!(SplitQueue::new(256).max_size(), 256);
    assert_eq!(SplitQueue::new(0).max_size(), 1);
    assert_eq!(SplitQueue::new(300).max_size(), 256);
    assert_eq!(SplitQueue::new(u16::MAX).max_size(), 32768);
    let mut q = SplitQueue::new(256);
    assert_eq!(q.size(), 256);
    assert!(!q.set_size(0));
    assert!(!q.set_size(100));
    assert!(!q.set_size(512));
    assert!(q.set_size(64));
    q.enable();
    assert!(!q.set_size(32), "fixed once enabled");
    assert!(!q.set_addresses(Gpa(1), Gpa(2), Gpa(3)));
    q.reset();
    assert_eq!((q.size(), q.enabled(), q.addresses(), q.indices()), (256, false, (Gpa(0), Gpa(0), Gpa(0)), (0, 0)));
}

#[test]
fn pop_walk_push() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    assert_eq!(q.pop(&d.mem), Ok(None));
    let h0 = d.add_chain(&[(DATA, 16, false), (DATA + 16, 32, true)]);
    let h1 = d.add_chain(&[(DATA + 64, 64, true)]);
    assert_eq!(q.pop(&d.mem), Ok(Some(h0)));
    assert_eq!(
        chain(&q, &mut d, h0),
        Ok(vec![
            Descriptor { addr: DATA, len: 16, writable: false },
            Descriptor { addr: DATA + 16, len: 32, writable: true }
        ])
    );
    q.push_used(&mut d.mem, h0, 32).unwrap();
    assert_eq!(q.pop(&d.mem), Ok(Some(h1)));
    q.push_used(&mut d.mem, h1, 64).unwrap();
    assert_eq!(q.pop(&d.mem), Ok(None));
    assert_eq!(d.take_used(), vec![(u32::from(h0), 32), (u32::from(h1), 64)]);
    assert!(q.take_notification(&d.mem));
    assert!(!q.take_notification(&d.mem), "nothing new");
    d.add_chain(&[(DATA, 1, true)]);
    d.set_no_interrupt(true);
    let h = q.pop(&d.mem).unwrap().unwrap();
    q.push_used(&mut d.mem, h, 1).unwrap();
    assert!(!q.take_notification(&d.mem), "suppressed");
}

#[test]
fn indices_wrap_around() {
    let mut d = Driver::new(4);
    let mut q = queue_for(&d);
    for i in 0..70_000u32 {
        let h = d.add_chain(&[(DATA, 4, true)]);
        assert_eq!(q.pop(&d.mem), Ok(Some(h)), "round {i}");
        q.push_used(&mut d.mem, h, i).unwrap();
        assert_eq!(d.take_used(), vec![(u32::from(h), i)]);
    }
    assert_eq!(q.indices(), ((70_000 % 65_536) as u16, (70_000 % 65_536) as u16));
}

#[test]
fn avail_index_too_far_ahead() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    d.set_avail_idx(9);
    assert_eq!(q.pop(&d.mem), Err(QueueError::AvailIndex));
    d.set_avail_idx(8);
    assert!(q.pop(&d.mem).is_ok(), "exactly a full ring is fine");
    d.set_avail_idx(0xFFFF);
    assert_eq!(q.pop(&d.mem), Err(QueueError::AvailIndex), "behind the device");
}

#[test]
fn bad_head_and_next_indices() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    d.publish(8);
    assert_eq!(q.pop(&d.mem), Err(QueueError::DescIndex));
    let mut d = Driver::new(8);
    let q = queue_for(&d);
    d.write_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 200);
    assert_eq!(chain(&q, &mut d, 0), Err(QueueError::DescIndex));
    assert_eq!(chain(&q, &mut d, 9), Err(QueueError::DescIndex));
}

#[test]
fn loops_are_bounded() {
    let mut d = Driver::new(8);
    let q = queue_for(&d);
    // 0 -> 1 -> 0 -> ...
    d.write_desc(0, DATA, 4, VIRTQ_DESC_F_NEXT, 1);
    d.write_desc(1, DATA, 4, VIRTQ_DESC_F_NEXT, 0);
    let mut calls = 0;
    let r = q.for_each_desc(&mut d.mem, 0, |_, _| {
        calls += 1;
        Ok(())
    });
    assert_eq!(r, Err(QueueError::ChainTooLong));
    assert_eq!(calls, 8, "never more descriptors than the queue has");
    // Self-loop.
    d.write_desc(2, DATA, 4, VIRTQ_DESC_F_NEXT, 2);
    assert_eq!(chain(&q, &mut d, 2), Err(QueueError::ChainTooLong));
    // A chain using every descriptor once is fine.
    for i in 0..8 {
        d.write_desc(i, DATA, 1, if i < 7 { VIRTQ_DESC_F_NEXT } else { 0 }, i + 1);
    }
    assert_eq!(chain(&q, &mut d, 0).unwrap().len(), 8);
}

#[test]
fn indirect_is_refused() {
    let mut d = Driver::new(8);
    let q = queue_for(&d);
    d.write_desc(0, DATA, 64, VIRTQ_DESC_F_INDIRECT, 0);
    assert_eq!(chain(&q, &mut d, 0), Err(QueueError::Indirect));
}

#[test]
fn callback_errors_stop_the_walk() {
    let mut d = Driver::new(8);
    let q = queue_for(&d);
    let h = d.add_chain(&[(DATA, 4, true), (DATA + 4, 4, true)]);
    let mut calls = 0;
    let r = q.for_each_desc(&mut d.mem, h, |_, _| {
        calls += 1;
        Err(QueueError::Memory)
    });
    assert_eq!((r, calls), (Err(QueueError::Memory), 1));
}

#[test]
fn rings_outside_memory_or_misaligned() {
    let d = Driver::new(8);
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc, Gpa(1 << 40), d.used);
    q.enable();
    assert_eq!(q.pop(&d.mem), Err(QueueError::Memory));
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc, Gpa(u64::MAX - 1), d.used);
    q.enable();
    assert_eq!(q.pop(&d.mem), Err(QueueError::Memory), "wraps");
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc + 8, d.avail, d.used);
    q.enable();
    assert_eq!(q.pop(&d.mem), Err(QueueError::Memory), "descriptor table misaligned");
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc, d.avail, d.used + 2);
    q.enable();
    let mut mem = d.mem.clone();
    assert_eq!(q.push_used(&mut mem, 0, 0), Err(QueueError::Memory), "used ring misaligned");
    let mut q = SplitQueue::new(8);
    q.set_addresses(Gpa(!15), d.avail, Gpa(!3));
    q.enable();
    assert_eq!(q.push_used(&mut mem, 0, 0), Err(QueueError::Memory));
    assert_eq!(q.for_each_desc(&mut mem, 1, |_, _| Ok(())), Err(QueueError::Memory));
    // A disabled queue has nothing to pop.
    let mut q = SplitQueue::new(8);
    assert_eq!(q.pop(&d.mem), Ok(None));
    // The flags word unreadable: an interrupt is sent.
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc, Gpa(1 << 40), d.used);
    q.enable();
    q.push_used(&mut mem, 0, 0).unwrap();
    assert!(q.take_notification(&mem));
}

/// The used index in RAM is the device's again after `publish_used`, whatever the driver (or a
/// device write the driver asked for) left there; a disabled or misplaced ring is not written.
#[test]
fn publish_used_restores_the_index() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    let h = d.add_chain(&[(DATA, 4, true)]);
    assert_eq!(q.pop(&d.mem), Ok(Some(h)));
    q.push_used(&mut d.mem, h, 4).unwrap();
    assert!(d.mem.write(d.used + 2, &0xBEEFu16.to_le_bytes()), "the driver scribbles its used index");
    q.publish_used(&mut d.mem).unwrap();
    assert_eq!(read_u16(&d.mem, d.used + 2), Some(1));
    assert_eq!(d.take_used(), vec![(u32::from(h), 4)]);

    let mut disabled = SplitQueue::new(8);
    disabled.set_addresses(d.desc, d.avail, d.used);
    assert!(d.mem.write(d.used + 2, &7u16.to_le_bytes()));
    disabled.publish_used(&mut d.mem).unwrap();
    assert_eq!(read_u16(&d.mem, d.used + 2), Some(7), "a disabled queue writes nothing");
    let mut outside = SplitQueue::new(8);
    outside.set_addresses(d.desc, d.avail, Gpa(1 << 40));
    outside.enable();
    assert_eq!(outside.publish_used(&mut d.mem), Err(QueueError::Memory));
    let mut misaligned = SplitQueue::new(8);
    misaligned.set_addresses(d.desc, d.avail, d.used + 2);
    misaligned.enable();
    assert_eq!(misaligned.publish_used(&mut d.mem), Err(QueueError::Memory));
}

/// The `vring_need_event` rule in wrapping arithmetic: `event` in `[old, new)`.
#[test]
fn need_event_rule() {
    assert!(need_event(0, 1, 0), "the first entry, used_event 0");
    assert!(!need_event(1, 1, 0), "entry 1 not placed yet");
    assert!(need_event(5, 8, 3));
    assert!(need_event(3, 8, 3));
    assert!(!need_event(8, 8, 3));
    assert!(!need_event(2, 8, 3), "already past");
    assert!(!need_event(7, 7, 7), "nothing placed");
    // Across the wrap: entries 0xFFFE, 0xFFFF, 0, 1 placed.
    assert!(need_event(0xFFFF, 2, 0xFFFE));
    assert!(need_event(1, 2, 0xFFFE));
    assert!(!need_event(2, 2, 0xFFFE));
    assert!(!need_event(0xFFFD, 2, 0xFFFE));
    // Against a plain reading of the rule, for every event around a window.
    for old in [0u16, 100, 0xFFF0] {
        for n in 0..20u16 {
            let new = old.wrapping_add(n);
            for d in 0..40u16 {
                let event = old.wrapping_add(d).wrapping_sub(10);
                let placed = (0..n).any(|i| old.wrapping_add(i) == event);
                assert_eq!(need_event(event, new, old), placed, "event {event} old {old} new {new}");
            }
        }
    }
}

fn returned(q: &mut SplitQueue, d: &mut Driver, count: usize) {
    for _ in 0..count {
        let h = d.add_chain(&[(DATA, 1, true)]);
        assert_eq!(q.pop(&d.mem), Ok(Some(h)));
        q.push_used(&mut d.mem, h, 1).unwrap();
    }
}

/// With EVENT_IDX the device interrupts only when it places the entry `used_event` names, and
/// ignores VIRTQ_AVAIL_F_NO_INTERRUPT (2.7.7).
#[test]
fn event_idx_used_event() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    q.set_event_idx(true);
    d.set_no_interrupt(true);
    d.set_used_event(0);
    returned(&mut q, &mut d, 1);
    assert!(q.take_notification(&d.mem), "entry 0 placed, used_event 0; the flag is ignored");
    d.set_used_event(3);
    returned(&mut q, &mut d, 2);
    assert!(!q.take_notification(&d.mem), "entries 1 and 2: not yet");
    returned(&mut q, &mut d, 2);
    assert!(q.take_notification(&d.mem), "entry 3 placed in this batch");
    returned(&mut q, &mut d, 3);
    assert!(!q.take_notification(&d.mem), "used_event 3 is behind: suppressed");
    assert!(!q.take_notification(&d.mem), "nothing new");
    d.set_used_event(q.indices().1);
    assert!(!q.take_notification(&d.mem), "nothing returned since");
    returned(&mut q, &mut d, 1);
    assert!(q.take_notification(&d.mem));
    d.take_used();

    // Across the 16-bit wrap of the used index.
    let mut d = Driver::new(4);
    let mut q = queue_for(&d);
    q.set_event_idx(true);
    for _ in 0..0xFFFE {
        d.set_used_event(q.indices().1.wrapping_sub(1));
        returned(&mut q, &mut d, 1);
        assert!(!q.take_notification(&d.mem));
        d.take_used();
    }
    assert_eq!(q.indices().1, 0xFFFE);
    d.set_used_event(0);
    returned(&mut q, &mut d, 2);
    assert!(!q.take_notification(&d.mem), "0xFFFE and 0xFFFF placed");
    returned(&mut q, &mut d, 1);
    assert!(q.take_notification(&d.mem), "0 placed after the wrap");

    // Without EVENT_IDX, used_event is ignored and the flag counts.
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    d.set_used_event(5);
    returned(&mut q, &mut d, 1);
    assert!(q.take_notification(&d.mem));
    d.set_no_interrupt(true);
    returned(&mut q, &mut d, 1);
    assert!(!q.take_notification(&d.mem));
}

/// With EVENT_IDX `publish_used` writes `avail_event`, the device's next available index
/// (2.7.10); without it, nothing there.
#[test]
fn event_idx_avail_event() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    assert!(d.mem.write(d.used + 4 + 8 * 8, &0x5A5Au16.to_le_bytes()));
    returned(&mut q, &mut d, 3);
    q.publish_used(&mut d.mem).unwrap();
    assert_eq!(d.avail_event(), 0x5A5A, "not negotiated: untouched");
    q.set_event_idx(true);
    q.publish_used(&mut d.mem).unwrap();
    assert_eq!(d.avail_event(), 3);
    // Made available but not taken: avail_event stays at the next one to take, so the driver's
    // next notification is not needed (the device has work it has not seen yet).
    d.add_chain(&[(DATA, 1, true)]);
    d.add_chain(&[(DATA, 1, true)]);
    q.publish_used(&mut d.mem).unwrap();
    assert_eq!(d.avail_event(), 3);
    assert!(q.pop(&d.mem).unwrap().is_some());
    assert!(q.pop(&d.mem).unwrap().is_some());
    q.publish_used(&mut d.mem).unwrap();
    assert_eq!(d.avail_event(), 5, "caught up: notify for the next one");
    // The used ring's end outside RAM is a memory error only with EVENT_IDX.
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc, d.avail, Gpa((RAM - 4 - 8 * 8) as u64));
    q.enable();
    assert_eq!(q.publish_used(&mut d.mem), Ok(()));
    q.set_event_idx(true);
    assert_eq!(q.publish_used(&mut d.mem), Err(QueueError::Memory));
    // An unreadable used_event wants an interrupt.
    let mut q = SplitQueue::new(8);
    q.set_addresses(d.desc, Gpa((RAM - 4 - 2 * 8) as u64), d.used);
    q.enable();
    q.set_event_idx(true);
    q.push_used(&mut d.mem, 0, 0).unwrap();
    assert!(q.take_notification(&d.mem));
}

/// Looking ahead takes nothing; `consume` takes what was looked at; `push_used_all` returns
/// several chains with one index update.
#[test]
fn peek_consume_push_all() {
    let mut d = Driver::new(8);
    let mut q = queue_for(&d);
    assert_eq!(q.available(&d.mem), Ok(0));
    let heads: Vec<u16> = (0..3).map(|i| d.add_chain(&[(DATA + 64 * i, 64, true)])).collect();
    assert_eq!(q.available(&d.mem), Ok(3));
    assert_eq!(q.peek(&d.mem, 0), Ok(heads[0]));
    assert_eq!(q.peek(&d.mem, 2), Ok(heads[2]));
    assert_eq!(q.available(&d.mem), Ok(3), "peeking takes nothing");
    q.consume(2);
    assert_eq!(q.available(&d.mem), Ok(1));
    assert_eq!(q.peek(&d.mem, 0), Ok(heads[2]));
    // A bad head is an error when looked at.
    d.publish(9);
    assert_eq!(q.peek(&d.mem, 1), Err(QueueError::DescIndex));
    d.set_avail_idx(20);
    assert_eq!(q.available(&d.mem), Err(QueueError::AvailIndex));
    let mut disabled = SplitQueue::new(8);
    assert_eq!(disabled.available(&d.mem), Ok(0));
    disabled.consume(100);
    assert_eq!(disabled.indices(), (8, 0), "never more than the queue size at once");

    let before = read_u16(&d.mem, d.used + 2).unwrap();
    q.push_used_all(&mut d.mem, &[]).unwrap();
    assert!(!q.take_notification(&d.mem), "nothing returned");
    q.push_used_all(&mut d.mem, &[(heads[0], 10), (heads[1], 20)]).unwrap();
    assert_eq!(read_u16(&d.mem, d.used + 2), Some(before.wrapping_add(2)));
    assert_eq!(d.take_used(), vec![(u32::from(heads[0]), 10), (u32::from(heads[1]), 20)]);
    assert!(q.take_notification(&d.mem));
    // More than the queue size at once: only the queue size.
    let many = [(0u16, 0u32); 20];
    q.push_used_all(&mut d.mem, &many).unwrap();
    assert_eq!(d.take_used().len(), 8);
}
