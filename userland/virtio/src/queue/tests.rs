//! Host tests for the split virtqueue: the normal path, index wrap-around, and every way a driver
//! can break the protocol (loops, bad indices, indirect descriptors, rings outside RAM).

use alloc::vec::Vec;

use super::*;
use crate::testdriver::{Driver, DATA};

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
