//! Crash consistency: the image's file records every write and flush this crate issues while a
//! guest's random writes, discards, write-zeroes and flushes run. The file is then rebuilt as a
//! crash would leave it: at each flush point, and with random subsets of the writes after it,
//! some of them torn (only some of their 512-byte sectors written). Each such file must pass
//! `qemu-img check` with nothing worse than leaks (exit 0 or 3), open through this crate, and
//! hold every write acknowledged by a guest flush before the crash.

mod common;

use std::path::Path;

use common::*;
use keel_diskimage::{create, CreateOptions, Format, HostOpener, Image, OpenOptions};

const SIZE: u64 = 4 * 1024 * 1024;

/// A guest operation's effect on the disk, as the guest saw it.
struct Op {
    /// The log length when the operation returned.
    end: usize,
    /// The bytes it set (none for a flush).
    effect: Option<(u64, Vec<u8>)>,
    flush: bool,
}

fn apply(bytes: &mut Vec<u8>, event: &Event, sectors: Option<&mut Rng>) {
    match event {
        Event::Write(offset, data) => {
            let end = *offset as usize + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            match sectors {
                None => bytes[*offset as usize..end].copy_from_slice(data),
                Some(rng) => {
                    // Torn: each piece between 512-byte boundaries of the file lands or not.
                    let mut at = *offset as usize;
                    while at < end {
                        let piece_end = ((at / 512 + 1) * 512).min(end);
                        if rng.below(2) == 0 {
                            let from = at - *offset as usize;
                            bytes[at..piece_end].copy_from_slice(&data[from..from + piece_end - at]);
                        }
                        at = piece_end;
                    }
                }
            }
        }
        Event::SetLen(len) => bytes.resize(*len as usize, 0),
        Event::Flush => {}
    }
}

/// Runs the guest, then replays crashes; `name` is the image's path (its backing file, if any,
/// resolves next to it).
fn crash_test(name: &Path, initial: Vec<u8>, seed: u64, ops: usize, max_points: usize) {
    let recorder = Recorder::new(initial.clone());
    let options = OpenOptions { read_only: false, format: Some(Format::Qcow2) };
    let mut image = Image::open(Box::new(recorder.clone()), name.to_str().unwrap(), options, &mut HostOpener).unwrap();
    let size = image.size();
    let mut shadow0 = vec![0u8; size as usize];
    image.read(0, &mut shadow0).unwrap();

    let mut rng = Rng::new(seed);
    let mut log_ops = Vec::new();
    for _ in 0..ops {
        let len = 512 * (1 + rng.below(48));
        let offset = rng.below((size - len) / 512 + 1) * 512;
        let (effect, flush) = match rng.below(8) {
            0..=3 => {
                let data = rng.bytes(len as usize);
                image.write(offset, &data).unwrap();
                (Some((offset, data)), false)
            }
            4 => {
                image.discard(offset, len).unwrap();
                let mut now = vec![0u8; len as usize];
                image.read(offset, &mut now).unwrap();
                (Some((offset, now)), false)
            }
            5 => {
                image.write_zeroes(offset, len).unwrap();
                (Some((offset, vec![0u8; len as usize])), false)
            }
            _ => {
                image.flush().unwrap();
                (None, true)
            }
        };
        log_ops.push(Op { end: recorder.log.borrow().len(), effect, flush });
    }
    drop(image);
    let log = recorder.log.borrow().clone();
    let flushes: Vec<usize> =
        log.iter().enumerate().filter(|(_, e)| matches!(e, Event::Flush)).map(|(i, _)| i).collect();
    assert!(flushes.len() > 10, "too few flushes to test: {}", flushes.len());

    let crash_file = name.with_extension("crash.qcow2");
    let crash_name = crash_file.to_str().unwrap().to_string();
    let step = flushes.len().div_ceil(max_points).max(1);
    let mut durable = initial;
    let mut applied = 0usize;
    let mut checked = 0;
    for (n, &flush_at) in flushes.iter().enumerate() {
        while applied <= flush_at {
            apply(&mut durable, &log[applied], None);
            applied += 1;
        }
        if n % step != 0 && n + 1 != flushes.len() {
            continue;
        }
        let next_flush = flushes.get(n + 1).copied().unwrap_or(log.len());
        // The last guest flush this file flush covers, and what the guest may expect then.
        let acked = log_ops.iter().rposition(|op| op.flush && op.end <= flush_at + 1);
        let mut expect = shadow0.clone();
        let mut unsure = Vec::new();
        for (i, op) in log_ops.iter().enumerate() {
            let Some((offset, data)) = &op.effect else { continue };
            let range = *offset as usize..*offset as usize + data.len();
            let started_before_crash = i == 0 || log_ops[i - 1].end <= next_flush;
            if acked.is_some_and(|a| i < a) {
                expect[range].copy_from_slice(data);
            } else if started_before_crash {
                unsure.push(range);
            }
        }
        for variant in 0..3 {
            let mut state = durable.clone();
            if variant > 0 {
                let mut pick = Rng::new(seed ^ (n as u64 * 31 + variant));
                for event in &log[flush_at + 1..next_flush] {
                    match pick.below(4) {
                        0 | 1 => apply(&mut state, event, None),
                        2 => apply(&mut state, event, Some(&mut pick)),
                        _ => {}
                    }
                }
            }
            std::fs::write(&crash_file, &state).unwrap();
            let (code, text) = qemu_img(&["check", "-f", "qcow2", &crash_name]);
            assert!(
                code == 0 || code == 3,
                "crash after flush {n} (variant {variant}): qemu-img check exited {code}:\n{text}"
            );
            let file = std::fs::File::open(&crash_file).unwrap();
            let ro = OpenOptions { read_only: true, format: Some(Format::Qcow2) };
            let mut reopened = Image::open(Box::new(file), &crash_name, ro, &mut HostOpener)
                .unwrap_or_else(|e| panic!("crash after flush {n} (variant {variant}): {e}"));
            let mut now = vec![0u8; size as usize];
            reopened.read(0, &mut now).unwrap();
            // Bytes of operations in flight at the crash may be old or new: take them as found.
            let mut want = expect.clone();
            for range in &unsure {
                want[range.clone()].copy_from_slice(&now[range.clone()]);
            }
            if now != want {
                let i = now.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                panic!(
                    "crash after flush {n} (variant {variant}): byte {i:#x} is {:#x}, acknowledged {:#x}",
                    now[i], want[i]
                );
            }
            checked += 1;
        }
    }
    eprintln!("{checked} crash states checked over {} flushes and {} writes", flushes.len(), log.len());
    let _ = std::fs::remove_file(&crash_file);
}

#[test]
fn small_clusters_growing_refcounts() {
    let dir = temp_dir("crash-512");
    let path = dir.join("disk.qcow2");
    // 512-byte clusters and 64-bit refcounts: new refcount blocks and table growth are frequent.
    qemu_img_ok(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "cluster_size=512,refcount_bits=64",
        path.to_str().unwrap(),
        &SIZE.to_string(),
    ]);
    let initial = std::fs::read(&path).unwrap();
    crash_test(&path, initial, 21, 90, 45);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn overlay_copying_on_write_from_a_raw_base() {
    let dir = temp_dir("crash-overlay");
    let base = dir.join("base.raw");
    let mut rng = Rng::new(7);
    std::fs::write(&base, rng.bytes(SIZE as usize)).unwrap();
    let path = dir.join("top.qcow2");
    let file = Shared::default();
    let mut options = CreateOptions::overlay("base.raw");
    options.cluster_bits = 12;
    drop(create(Box::new(file.clone()), path.to_str().unwrap(), options, &mut HostOpener).unwrap());
    crash_test(&path, file.bytes(), 22, 90, 45);
    std::fs::remove_dir_all(dir).unwrap();
}
