//! Random operation sequences on both formats, checked against a model (a map of paths to
//! contents): creates, writes at random offsets (past the end too), truncations up and down,
//! renames across directories, removes, flushes. At the end the volume must pass fsck and hold
//! exactly the model's files.

mod common;

use std::collections::BTreeMap;

use common::*;
use keel_block::MemDisk;
use keel_datastore::{Error, Volume};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const DIRS: [&str; 3] = ["", "/d1", "/d2 with a longer name"];

fn random_path(rng: &mut Rng) -> String {
    let dir = DIRS[rng.below(3) as usize];
    format!("{dir}/file {}", rng.below(6))
}

fn run(image: Vec<u8>, checker: &str, seed: u64, max_offset: u64) {
    let mut vol = Volume::mount(MemDisk::from_bytes(512, image)).unwrap();
    let mut rng = Rng(seed);
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut done = [0u32; 7];
    for dir in &DIRS[1..] {
        vol.mkdir(dir).unwrap();
    }
    for step in 0..500 {
        let path = random_path(&mut rng);
        let op = rng.below(7) as usize;
        done[op] += 1;
        match op {
            0 => match vol.create(&path) {
                Ok(_) => assert!(model.insert(path.clone(), Vec::new()).is_none(), "step {step}: {path} created twice"),
                Err(Error::AlreadyExists) => assert!(model.contains_key(&path)),
                Err(e) => panic!("step {step}: create {path}: {e}"),
            },
            1 | 2 => {
                let Some(data) = model.get_mut(&path) else {
                    done[op] -= 1;
                    continue;
                };
                let mut f = vol.open(&path).unwrap();
                let offset = rng.below(max_offset);
                let bytes = pattern(rng.next(), rng.below(3000) as usize + 1);
                match vol.write(&mut f, offset, &bytes) {
                    Ok(()) => {
                        let end = offset as usize + bytes.len();
                        if data.len() < end {
                            data.resize(end, 0);
                        }
                        data[offset as usize..end].copy_from_slice(&bytes);
                    }
                    Err(Error::NoSpace) => {}
                    Err(e) => panic!("step {step}: write {path}: {e}"),
                }
            }
            3 => {
                let Some(data) = model.get_mut(&path) else {
                    done[op] -= 1;
                    continue;
                };
                let mut f = vol.open(&path).unwrap();
                let len = rng.below(max_offset);
                match vol.truncate(&mut f, len) {
                    Ok(()) => data.resize(len as usize, 0),
                    Err(Error::NoSpace) => {}
                    Err(e) => panic!("step {step}: truncate {path}: {e}"),
                }
            }
            4 => {
                let to = random_path(&mut rng);
                let result = vol.rename(&path, &to);
                match (model.contains_key(&path), model.contains_key(&to)) {
                    (false, _) => assert_eq!(result, Err(Error::NotFound), "step {step}"),
                    (true, true) if path != to => assert_eq!(result, Err(Error::AlreadyExists), "step {step}"),
                    (true, _) => {
                        result.unwrap_or_else(|e| panic!("step {step}: rename {path} {to}: {e}"));
                        let data = model.remove(&path).unwrap();
                        model.insert(to, data);
                    }
                }
            }
            5 => match vol.remove(&path) {
                Ok(()) => assert!(model.remove(&path).is_some()),
                Err(Error::NotFound) => assert!(!model.contains_key(&path)),
                Err(e) => panic!("step {step}: remove {path}: {e}"),
            },
            _ => vol.flush().unwrap(),
        }
    }
    vol.flush().unwrap();
    eprintln!("seed {seed:#x}: operations tried (create, write, write, truncate, rename, remove, flush): {done:?}; {} files at the end", model.len());
    let image = vol.into_device().into_bytes();
    assert_fsck_clean(checker, &image);
    let mut vol = Volume::mount(MemDisk::from_bytes(512, image)).unwrap();
    let mut listed = Vec::new();
    for dir in DIRS {
        for entry in vol.list(if dir.is_empty() { "/" } else { dir }).unwrap() {
            if !entry.metadata.is_dir {
                listed.push(format!("{dir}/{}", entry.name));
            }
        }
    }
    listed.sort();
    assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>());
    for (path, data) in &model {
        let f = vol.open(path).unwrap();
        let mut buf = vec![0u8; data.len()];
        assert_eq!(vol.read(&f, 0, &mut buf).unwrap(), data.len(), "{path}");
        assert!(&buf == data, "{path} differs");
    }
}

#[test]
fn random_operations_on_exfat_match_the_model() {
    for seed in 1..=3u64 {
        let Some(image) = linux_mkfs_exfat(4 << 20, "512") else { return };
        run(image, "fsck.exfat", seed * 0x9E37_79B9, 200_000);
    }
}

#[test]
fn random_operations_on_fat32_match_the_model() {
    for seed in 1..=2u64 {
        let Some(image) = make_image("mkfs.vfat", &["-F", "32", "-s", "1"], 4 << 20) else { return };
        run(image, "fsck.vfat", seed * 0x5851_F42D, 100_000);
    }
}
