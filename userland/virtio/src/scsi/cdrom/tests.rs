//! Host tests for the CD-ROM's commands, one by one, as Linux's SCSI midlayer, sr and cdrom
//! drivers send them.

use super::*;
use crate::scsi::sense::key;

/// A 1000-block image.
fn cd() -> CdRom {
    CdRom::new(1000 * BLOCK + 100, b"CD0001")
}

fn run(cd: &mut CdRom, cdb: &[u8]) -> (Reply, [u8; REPLY_MAX]) {
    let mut buf = [0xEEu8; REPLY_MAX];
    let r = cd.execute(cdb, &mut buf);
    (r, buf)
}

fn data(cd: &mut CdRom, cdb: &[u8]) -> alloc::vec::Vec<u8> {
    match run(cd, cdb) {
        (Reply::Data(n), buf) => buf[..n].to_vec(),
        (other, _) => panic!("{cdb:02x?}: {other:?}"),
    }
}

fn check(cd: &mut CdRom, cdb: &[u8]) -> Sense {
    match run(cd, cdb).0 {
        Reply::Check(s) => s,
        other => panic!("{cdb:02x?}: {other:?}"),
    }
}

#[test]
fn test_unit_ready_and_request_sense() {
    let mut c = cd();
    assert_eq!(run(&mut c, &[0; 6]).0, Reply::Data(0));
    let sense = data(&mut c, &[0x03, 0, 0, 0, 96, 0]);
    assert_eq!(sense, Sense::NONE.fixed());
    assert_eq!(data(&mut c, &[0x03, 0, 0, 0, 8, 0]).len(), 8, "cut to the allocation length");
    let mut empty = CdRom::new(100, b"");
    assert_eq!(check(&mut empty, &[0; 6]), Sense::NO_MEDIUM);
    assert_eq!(data(&mut empty, &[0x03, 0, 0, 0, 18, 0])[..], Sense::NO_MEDIUM.fixed());
    assert_eq!(check(&mut empty, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Sense::NO_MEDIUM);
    assert_eq!(check(&mut empty, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Sense::NO_MEDIUM);
}

#[test]
fn inquiry_standard_and_vpd() {
    let mut c = cd();
    let d = data(&mut c, &[0x12, 0, 0, 0, 36, 0]);
    assert_eq!(d.len(), 36);
    assert_eq!(d[0], 0x05, "CD/DVD device");
    assert_eq!(d[1], 0x80, "removable");
    assert_eq!(d[4] as usize + 5, 36, "additional length");
    assert_eq!(&d[8..16], b"KEEL    ");
    assert_eq!(&d[16..32], b"Virtual CD-ROM  ");
    assert_eq!(data(&mut c, &[0x12, 0, 0, 0, 5, 0]).len(), 5);
    assert_eq!(data(&mut c, &[0x12, 0, 0, 1, 0, 0]).len(), 36, "16-bit allocation length");
    assert_eq!(check(&mut c, &[0x12, 0, 0x80, 0, 36, 0]), Sense::INVALID_FIELD, "page without EVPD");
    assert_eq!(data(&mut c, &[0x12, 1, 0x00, 0, 255, 0]), [5, 0, 0, 3, 0x00, 0x80, 0x83]);
    assert_eq!(data(&mut c, &[0x12, 1, 0x80, 0, 255, 0]), b"\x05\x80\x00\x06CD0001");
    let d83 = data(&mut c, &[0x12, 1, 0x83, 0, 255, 0]);
    assert_eq!(&d83[..8], [5, 0x83, 0, 18, 2, 1, 0, 14]);
    assert_eq!(&d83[8..], b"KEEL    CD0001");
    assert_eq!(check(&mut c, &[0x12, 1, 0xB0, 0, 255, 0]), Sense::INVALID_FIELD);
}

#[test]
fn read_capacity() {
    let mut c = cd();
    assert_eq!(data(&mut c, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]), [0, 0, 0x03, 0xE7, 0, 0, 0x08, 0]);
    let d = data(&mut c, &[0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
    assert_eq!(d.len(), 32);
    assert_eq!(&d[..12], [0, 0, 0, 0, 0, 0, 0x03, 0xE7, 0, 0, 0x08, 0]);
    assert_eq!(check(&mut c, &[0x9E, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]), Sense::INVALID_OPCODE);
    // More blocks than 32 bits: READ CAPACITY(10) says FFFFFFFFh.
    let mut huge = CdRom::new((1u64 << 33) * BLOCK, b"");
    assert_eq!(data(&mut huge, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0])[..4], [0xFF; 4]);
}

#[test]
fn reads() {
    let mut c = cd();
    assert_eq!(
        run(&mut c, &[0x28, 0, 0, 0, 0, 16, 0, 0, 2, 0]).0,
        Reply::Medium { offset: 16 * BLOCK, len: 2 * BLOCK }
    );
    assert_eq!(
        run(&mut c, &[0xA8, 0, 0, 0, 0x03, 0xE7, 0, 0, 0, 1, 0, 0]).0,
        Reply::Medium { offset: 999 * BLOCK, len: BLOCK }
    );
    let r16 = [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0];
    assert_eq!(run(&mut c, &r16).0, Reply::Medium { offset: 5 * BLOCK, len: 3 * BLOCK });
    assert_eq!(run(&mut c, &[0x28, 0, 0, 0, 0, 16, 0, 0, 0, 0]).0, Reply::Data(0), "zero blocks");
    assert_eq!(check(&mut c, &[0x28, 0, 0, 0, 0x03, 0xE7, 0, 0, 2, 0]), Sense::LBA_OUT_OF_RANGE);
    assert_eq!(
        check(&mut c, &[0xA8, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]),
        Sense::LBA_OUT_OF_RANGE
    );
    let r16 = [0x88, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0];
    assert_eq!(check(&mut c, &r16), Sense::LBA_OUT_OF_RANGE, "LBA + length overflows");
    let mut big = CdRom::new(10_000 * BLOCK, b"");
    assert_eq!(
        check(&mut big, &[0x28, 0, 0, 0, 0, 0, 0, 0x08, 0x01, 0]),
        Sense::INVALID_FIELD,
        "over the transfer limit"
    );
    assert_eq!(check(&mut c, &[0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Sense::WRITE_PROTECTED);
    assert_eq!(Sense::WRITE_PROTECTED.key, key::DATA_PROTECT);
}

#[test]
fn mode_sense_capabilities_page() {
    let mut c = cd();
    let d = data(&mut c, &[0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 128, 0]);
    assert_eq!(d.len(), 30);
    assert_eq!(u16::from_be_bytes([d[0], d[1]]), 28, "mode data length");
    assert_eq!(&d[6..8], [0, 0], "no block descriptors");
    // What Linux's sr get_capabilities reads at n = 8.
    assert_eq!(&d[8..10], [0x2A, 20]);
    assert_eq!(d[8 + 3] & 0x03, 0, "cannot write CD-R/RW");
    assert_ne!(d[8 + 6] & 0x08, 0, "can eject");
    assert_eq!(d[8 + 6] >> 5, 1, "tray");
    assert_eq!(u16::from_be_bytes([d[16], d[17]]) / 176, 32);
    let d6 = data(&mut c, &[0x1A, 0, 0x3F, 0, 255, 0]);
    assert_eq!((d6.len(), d6[0], d6[3], d6[4]), (26, 25, 0, 0x2A), "all pages: the one there is");
    let changeable = data(&mut c, &[0x1A, 0, 0x6A, 0, 255, 0]);
    assert!(changeable[6..].iter().all(|&b| b == 0));
    assert_eq!(check(&mut c, &[0x1A, 0, 0xEA, 0, 255, 0]), Sense::SAVING_NOT_SUPPORTED);
    assert_eq!(check(&mut c, &[0x1A, 0, 0x08, 0, 255, 0]), Sense::INVALID_FIELD, "caching page");
    assert_eq!(check(&mut c, &[0x1A, 0, 0x2A, 1, 255, 0]), Sense::INVALID_FIELD, "a subpage");
    assert_eq!(data(&mut c, &[0x1A, 0, 0x2A, 0, 4, 0]).len(), 4);
}

#[test]
fn read_toc() {
    let mut c = cd();
    let toc = data(&mut c, &[0x43, 0, 0, 0, 0, 0, 0, 0x03, 0x24, 0]);
    assert_eq!(toc, [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xAA, 0, 0, 0, 0x03, 0xE8]);
    // MSF: the lead-out at 1000 + 150 frames = 00:15:25.
    let msf = data(&mut c, &[0x43, 2, 0, 0, 0, 0, 0, 0x03, 0x24, 0]);
    assert_eq!(&msf[8..12], [0, 0, 2, 0]);
    assert_eq!(&msf[16..20], [0, 0, 15, 25]);
    let lead_out_only = data(&mut c, &[0x43, 0, 0, 0, 0, 0, 0xAA, 0, 255, 0]);
    assert_eq!(lead_out_only, [0, 10, 1, 1, 0, 0x14, 0xAA, 0, 0, 0, 0x03, 0xE8]);
    assert_eq!(check(&mut c, &[0x43, 0, 0, 0, 0, 0, 2, 0, 255, 0]), Sense::INVALID_FIELD);
    // Session info, by format 1 or by the old field in byte 9 (Linux's sr_cd_check).
    let session = [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0];
    assert_eq!(data(&mut c, &[0x43, 0, 1, 0, 0, 0, 0, 0, 12, 0]), session);
    assert_eq!(data(&mut c, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40]), session);
    assert_eq!(check(&mut c, &[0x43, 0, 2, 0, 0, 0, 0, 0, 12, 0]), Sense::INVALID_FIELD, "full TOC");
    assert_eq!(data(&mut c, &[0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0]).len(), 4);
}

#[test]
fn get_configuration() {
    let mut c = cd();
    let all = data(&mut c, &[0x46, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    let len = u32::from_be_bytes([all[0], all[1], all[2], all[3]]) as usize;
    assert_eq!(len + 4, all.len());
    assert_eq!(&all[6..8], [0, 8], "current profile CD-ROM");
    assert_eq!(&all[8..12], [0, 0, 0x03, 8], "profile list first");
    assert_eq!(&all[12..20], [0, 0x10, 0, 0, 0, 0x08, 1, 0]);
    let codes: alloc::vec::Vec<u16> = {
        let mut at = 8;
        let mut v = alloc::vec::Vec::new();
        while at + 4 <= all.len() {
            v.push(u16::from_be_bytes([all[at], all[at + 1]]));
            at += 4 + all[at + 3] as usize;
        }
        v
    };
    assert_eq!(codes, [0, 1, 3, 0x10, 0x1E]);
    // RT 2: the one feature asked for.
    let one = data(&mut c, &[0x46, 2, 0, 0x10, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&one[8..12], [0, 0x10, 0x05, 8]);
    assert_eq!(one.len(), 20);
    assert_eq!(data(&mut c, &[0x46, 2, 0, 0x20, 0, 0, 0, 1, 0, 0]).len(), 8, "absent feature: the header");
    assert_eq!(check(&mut c, &[0x46, 3, 0, 0, 0, 0, 0, 1, 0, 0]), Sense::INVALID_FIELD);
    // No medium: no current profile, RT 1 leaves out the medium's features.
    let mut empty = CdRom::new(0, b"");
    let cur = data(&mut empty, &[0x46, 1, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&cur[6..8], [0, 0]);
    assert_eq!(cur.len(), 8 + 12 + 12 + 8);
    let mut dvd = CdRom::new(500_000 * BLOCK, b"");
    assert_eq!(&data(&mut dvd, &[0x46, 0, 0, 0, 0, 0, 0, 0, 8, 0])[6..8], [0, 0x10], "DVD-ROM");
}

#[test]
fn event_status_notification() {
    let mut c = cd();
    let gesn = [0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0];
    assert_eq!(data(&mut c, &gesn), [0, 6, 4, 0x10, 2, 2, 0, 0], "new media once");
    assert_eq!(data(&mut c, &gesn), [0, 6, 4, 0x10, 0, 2, 0, 0]);
    assert_eq!(data(&mut c, &[0x4A, 1, 0, 0, 0x04, 0, 0, 0, 8, 0]), [0, 2, 0x80, 0x10], "no event of that class");
    assert_eq!(check(&mut c, &[0x4A, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]), Sense::INVALID_FIELD, "asynchronous");
}

#[test]
fn disc_information_luns_mechanism() {
    let mut c = cd();
    let di = data(&mut c, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0]);
    assert_eq!(di.len(), 34);
    assert_eq!(&di[..7], [0, 32, 0x0E, 1, 1, 1, 1]);
    assert_eq!(check(&mut c, &[0x51, 1, 0, 0, 0, 0, 0, 0, 34, 0]), Sense::INVALID_FIELD);
    let luns = data(&mut c, &[0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(luns, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(check(&mut c, &[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0]), Sense::INVALID_FIELD);
    assert_eq!(data(&mut c, &[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]), [0; 8]);
}

#[test]
fn prevent_allow_and_start_stop() {
    let mut c = cd();
    assert_eq!(run(&mut c, &[0x1B, 0, 0, 0, 0x01, 0]).0, Reply::Data(0), "start");
    assert_eq!(run(&mut c, &[0x1E, 0, 0, 0, 1, 0]).0, Reply::Data(0));
    assert!(c.removal_prevented());
    assert_eq!(check(&mut c, &[0x1B, 0, 0, 0, 0x02, 0]), Sense::REMOVAL_PREVENTED, "eject refused");
    assert_eq!(run(&mut c, &[0x1E, 0, 0, 0, 0, 0]).0, Reply::Data(0));
    assert_eq!(run(&mut c, &[0x1B, 0, 0, 0, 0x02, 0]).0, Reply::Data(0), "eject allowed (the medium stays)");
    assert_eq!(run(&mut c, &[0; 6]).0, Reply::Data(0));
    c.execute(&[0x1E, 0, 0, 0, 1, 0], &mut [0; REPLY_MAX]);
    c.reset();
    assert!(!c.removal_prevented());
}

#[test]
fn unknown_commands_and_short_cdbs() {
    let mut c = cd();
    for op in [0x01u8, 0x08, 0x15, 0x35, 0x52, 0x55, 0xBB, 0xBE, 0xFF] {
        assert_eq!(check(&mut c, &[op, 0, 0, 0, 0, 0]), Sense::INVALID_OPCODE, "opcode {op:#x}");
    }
    let fixed = Sense::INVALID_OPCODE.fixed();
    assert_eq!((fixed[0], fixed[2], fixed[12], fixed[13]), (0x70, key::ILLEGAL_REQUEST, 0x20, 0));
    // A CDB shorter than its command reads as zero-padded; an empty one is TEST UNIT READY.
    assert_eq!(data(&mut c, &[0x12]).len(), 0, "allocation length 0");
    assert_eq!(run(&mut c, &[]).0, Reply::Data(0));
}
