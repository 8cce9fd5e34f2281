//! The qcow2 header and its extensions (qcow2 spec, "Header", "Header extensions", "Feature name
//! table"): parsed from the first cluster with every field checked that can be checked without
//! the rest of the file, and written for a new image ([`encode_new`]).
//!
//! Not here: the tables the header points to (their bounds against the file are checked where
//! they are loaded, `qcow2::open`), and snapshots (only counted: an image with any opens read-only).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::format::QCOW2_MAGIC;
use crate::Error;

/// Fixed header lengths: version 2's is 72 bytes; version 3's at least 104 (spec, "Header").
pub const V2_HEADER_LEN: usize = 72;
pub const V3_MIN_HEADER_LEN: usize = 104;
/// The header length this crate writes: 104 plus the compression type byte, padded to 8.
pub const V3_HEADER_LEN: usize = 112;

/// Offsets of the fields rewritten in place.
pub const REFCOUNT_TABLE_FIELD: u64 = 48;
pub const AUTOCLEAR_FIELD: u64 = 88;

/// Cluster sizes: at least 512 bytes (spec), at most 2 MiB (QEMU's limit, so every image QEMU
/// makes opens and nothing larger is trusted).
pub const MIN_CLUSTER_BITS: u32 = 9;
pub const MAX_CLUSTER_BITS: u32 = 21;

/// Incompatible feature bits (spec, "incompatible_features").
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
pub const INCOMPAT_EXTERNAL_DATA: u64 = 1 << 2;
pub const INCOMPAT_COMPRESSION_TYPE: u64 = 1 << 3;
pub const INCOMPAT_EXTENDED_L2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = (1 << 5) - 1;

/// Header extension types (spec, "Header extensions").
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FEATURE_NAMES: u32 = 0x6803_f857;
const EXT_EXTERNAL_DATA_FILE: u32 = 0x4441_5441;

/// Longest backing file name the spec allows.
pub const MAX_BACKING_NAME: usize = 1023;
/// A backing format name longer than this is not one of ours anyway.
const MAX_FORMAT_NAME: usize = 64;
/// A feature name table entry: type, bit, 46 bytes of name.
const FEATURE_ENTRY_LEN: usize = 48;

/// What the header says, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub incompatible: u64,
    pub compatible: u64,
    pub autoclear: u64,
    pub refcount_order: u32,
    pub backing_file: Option<String>,
    pub backing_format: Option<String>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// The cluster size a header claims, from its first bytes (to know how much to read).
pub fn peek_cluster_bits(head: &[u8]) -> Result<u32, Error> {
    if head.len() < V2_HEADER_LEN {
        return Err(Error::corrupt(format!("the file is too short for a qcow2 header ({} bytes)", head.len())));
    }
    if head[..4] != QCOW2_MAGIC {
        return Err(Error::NotQcow2);
    }
    let bits = be32(head, 20);
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&bits) {
        return Err(Error::corrupt(format!(
            "cluster_bits {bits} is outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS} (512 B to 2 MiB clusters)"
        )));
    }
    Ok(bits)
}

/// Parses the header in `first` (the first cluster, or as much of it as the file holds).
pub fn parse(first: &[u8]) -> Result<Header, Error> {
    let cluster_bits = peek_cluster_bits(first)?;
    let version = be32(first, 4);
    if version != 2 && version != 3 {
        return Err(Error::UnsupportedVersion(version));
    }
    let cluster_size = 1usize << cluster_bits;
    let (incompatible, compatible, autoclear, refcount_order, header_len) = if version == 3 {
        if first.len() < V3_MIN_HEADER_LEN {
            return Err(Error::corrupt("the file is too short for a qcow2 v3 header".into()));
        }
        let header_len = be32(first, 100) as usize;
        if header_len < V3_MIN_HEADER_LEN || !header_len.is_multiple_of(8) || header_len > cluster_size {
            return Err(Error::corrupt(format!(
                "header_length {header_len} is not a multiple of 8 in 104..=cluster size"
            )));
        }
        (be64(first, 72), be64(first, 80), be64(first, 88), be32(first, 96), header_len)
    } else {
        // Version 2: no feature bits, 16-bit refcounts, a 72-byte header (spec, "Header").
        (0, 0, 0, 4, V2_HEADER_LEN)
    };
    if refcount_order > 6 {
        return Err(Error::corrupt(format!("refcount_order {refcount_order} is above 6 (64-bit refcounts)")));
    }

    let backing_offset = be64(first, 8);
    let backing_len = be32(first, 16) as usize;
    // The extensions sit between the header and the backing file name, inside the first cluster.
    let ext_end = if backing_offset != 0 { backing_offset.min(cluster_size as u64) as usize } else { cluster_size };
    let ext = parse_extensions(first, header_len, ext_end)?;

    let unknown = incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        return Err(Error::UnknownIncompatibleFeatures { bits: unknown, names: ext.names_of(0, unknown) });
    }
    if incompatible & INCOMPAT_EXTERNAL_DATA != 0 || ext.external_data_file {
        return Err(Error::Unsupported("external data file"));
    }
    if incompatible & INCOMPAT_EXTENDED_L2 != 0 {
        return Err(Error::Unsupported("extended L2 entries (subclusters)"));
    }
    let compression_type = if version == 3 && header_len > 104 { first.get(104).copied().unwrap_or(0) } else { 0 };
    if incompatible & INCOMPAT_COMPRESSION_TYPE != 0 || compression_type != 0 {
        return Err(Error::Unsupported("compression type other than zlib (zstd)"));
    }
    if be32(first, 32) != 0 {
        return Err(Error::Unsupported("encryption"));
    }

    let backing_file = if backing_offset != 0 && backing_len != 0 {
        if backing_len > MAX_BACKING_NAME {
            return Err(Error::corrupt(format!("backing file name of {backing_len} bytes (at most 1023)")));
        }
        let end = backing_offset.checked_add(backing_len as u64).filter(|&end| end <= cluster_size as u64);
        let Some(end) = end else {
            return Err(Error::corrupt(format!(
                "backing file name at {backing_offset:#x} lies outside the first cluster"
            )));
        };
        let Some(bytes) = first.get(backing_offset as usize..end as usize) else {
            return Err(Error::corrupt("backing file name lies past the end of the file".into()));
        };
        let name = core::str::from_utf8(bytes).map_err(|_| Error::corrupt("backing file name is not UTF-8".into()))?;
        if name.is_empty() || name.contains('\0') {
            return Err(Error::corrupt("backing file name holds a NUL byte".into()));
        }
        Some(String::from(name))
    } else {
        None
    };

    Ok(Header {
        version,
        cluster_bits,
        size: be64(first, 24),
        l1_size: be32(first, 36),
        l1_table_offset: be64(first, 40),
        refcount_table_offset: be64(first, 48),
        refcount_table_clusters: be32(first, 56),
        nb_snapshots: be32(first, 60),
        incompatible,
        compatible,
        autoclear,
        refcount_order,
        backing_file,
        backing_format: ext.backing_format,
    })
}

/// What the header extensions said.
#[derive(Default)]
struct Extensions {
    backing_format: Option<String>,
    external_data_file: bool,
    /// (feature type, bit, name) from the feature name table.
    feature_names: Vec<(u8, u8, String)>,
}

impl Extensions {
    /// "name, name" for the set bits of `bits` in feature table `kind` that the image names.
    fn names_of(&self, kind: u8, bits: u64) -> String {
        let mut out = String::new();
        for (k, bit, name) in &self.feature_names {
            if *k == kind && *bit < 64 && bits & (1u64 << bit) != 0 {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(name);
            }
        }
        out
    }
}

/// Walks the extensions from `start` to `end` (exclusive; both inside `first` or cut to it).
/// Unknown types are skipped; each extension's data must lie inside the area.
fn parse_extensions(first: &[u8], start: usize, end: usize) -> Result<Extensions, Error> {
    let mut ext = Extensions::default();
    let end = end.min(first.len());
    let mut at = start;
    // Each step moves on by at least 8 bytes, so the walk ends within a cluster.
    while at.checked_add(8).is_some_and(|h| h <= end) {
        let kind = be32(first, at);
        let len = be32(first, at + 4) as usize;
        if kind == EXT_END {
            break;
        }
        let data_start = at + 8;
        let Some(data_end) = data_start.checked_add(len).filter(|&e| e <= end) else {
            return Err(Error::corrupt(format!(
                "header extension {kind:#x} at {at:#x} ({len} bytes) overruns the header area"
            )));
        };
        let data = &first[data_start..data_end];
        match kind {
            EXT_BACKING_FORMAT => {
                if len > MAX_FORMAT_NAME {
                    return Err(Error::corrupt(format!("backing format name of {len} bytes")));
                }
                let name = core::str::from_utf8(data)
                    .map_err(|_| Error::corrupt("backing format name is not UTF-8".into()))?;
                ext.backing_format = Some(String::from(name));
            }
            EXT_FEATURE_NAMES => {
                for entry in data.chunks_exact(FEATURE_ENTRY_LEN) {
                    let raw = &entry[2..];
                    let name_len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                    let name = String::from_utf8_lossy(&raw[..name_len]).into_owned();
                    ext.feature_names.push((entry[0], entry[1], name));
                }
            }
            EXT_EXTERNAL_DATA_FILE => ext.external_data_file = true,
            _ => {}
        }
        // Data is padded to a multiple of 8 (spec, "Header extensions").
        at = data_start + len.div_ceil(8) * 8;
    }
    Ok(ext)
}

/// What a new image's header holds.
pub struct NewHeader<'a> {
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub backing: Option<(&'a str, &'a str)>,
}

/// A version 3 header with 16-bit refcounts, the extensions (backing format, end) and the backing
/// file name after them: the bytes of the start of cluster 0.
pub fn encode_new(h: &NewHeader<'_>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&QCOW2_MAGIC);
    out.extend_from_slice(&3u32.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes()); // backing_file_offset, filled in below
    out.extend_from_slice(&0u32.to_be_bytes()); // backing_file_size
    out.extend_from_slice(&h.cluster_bits.to_be_bytes());
    out.extend_from_slice(&h.size.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // crypt_method: none
    out.extend_from_slice(&h.l1_size.to_be_bytes());
    out.extend_from_slice(&h.l1_table_offset.to_be_bytes());
    out.extend_from_slice(&h.refcount_table_offset.to_be_bytes());
    out.extend_from_slice(&h.refcount_table_clusters.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // nb_snapshots
    out.extend_from_slice(&0u64.to_be_bytes()); // snapshots_offset
    out.extend_from_slice(&0u64.to_be_bytes()); // incompatible_features
    out.extend_from_slice(&0u64.to_be_bytes()); // compatible_features
    out.extend_from_slice(&0u64.to_be_bytes()); // autoclear_features
    out.extend_from_slice(&4u32.to_be_bytes()); // refcount_order: 16-bit refcounts
    out.extend_from_slice(&(V3_HEADER_LEN as u32).to_be_bytes());
    out.resize(V3_HEADER_LEN, 0); // compression_type 0 (zlib) and padding
    if let Some((name, format)) = h.backing {
        if name.is_empty() || name.len() > MAX_BACKING_NAME || name.contains('\0') {
            return Err(Error::InvalidCreate("a backing file name must be 1 to 1023 bytes, without NUL"));
        }
        out.extend_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
        out.extend_from_slice(&(format.len() as u32).to_be_bytes());
        out.extend_from_slice(format.as_bytes());
        out.resize(out.len().div_ceil(8) * 8, 0);
    }
    out.extend_from_slice(&EXT_END.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    if let Some((name, _)) = h.backing {
        let at = out.len() as u64;
        out[8..16].copy_from_slice(&at.to_be_bytes());
        out[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    if out.len() > 1usize << h.cluster_bits {
        return Err(Error::InvalidCreate("the header and backing file name do not fit in the first cluster"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn new_header(backing: Option<(&str, &str)>) -> Vec<u8> {
        let mut bytes = encode_new(&NewHeader {
            cluster_bits: 16,
            size: 1 << 30,
            l1_size: 2,
            l1_table_offset: 0x30000,
            refcount_table_offset: 0x10000,
            refcount_table_clusters: 1,
            backing,
        })
        .unwrap();
        bytes.resize(4096, 0);
        bytes
    }

    #[test]
    fn a_new_header_reads_back() {
        let h = parse(&new_header(Some(("base.img", "raw")))).unwrap();
        assert_eq!((h.version, h.cluster_bits, h.size, h.l1_size), (3, 16, 1 << 30, 2));
        assert_eq!((h.l1_table_offset, h.refcount_table_offset, h.refcount_table_clusters), (0x30000, 0x10000, 1));
        assert_eq!(h.refcount_order, 4);
        assert_eq!(h.backing_file.as_deref(), Some("base.img"));
        assert_eq!(h.backing_format.as_deref(), Some("raw"));
        let h = parse(&new_header(None)).unwrap();
        assert_eq!((h.backing_file, h.backing_format), (None, None));
    }

    #[test]
    fn refuses_unknown_incompatible_features_by_name() {
        let mut b = new_header(None);
        b[72..80].copy_from_slice(&(1u64 << 9 | 1).to_be_bytes());
        // A feature name table naming bit 9 replaces the end marker.
        let mut table = vec![0u8; 48];
        table[1] = 9;
        table[2..8].copy_from_slice(b"frob=1");
        b[112..116].copy_from_slice(&EXT_FEATURE_NAMES.to_be_bytes());
        b[116..120].copy_from_slice(&48u32.to_be_bytes());
        b[120..168].copy_from_slice(&table);
        let e = parse(&b).unwrap_err();
        assert_eq!(e.to_string(), "unknown incompatible qcow2 features 0x200 (frob=1)");
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        for (bit, what) in [(INCOMPAT_EXTERNAL_DATA, "external data"), (INCOMPAT_EXTENDED_L2, "extended L2")] {
            let mut b = new_header(None);
            b[72..80].copy_from_slice(&bit.to_be_bytes());
            assert!(parse(&b).unwrap_err().to_string().contains(what));
        }
        let mut b = new_header(None);
        b[32..36].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(parse(&b).unwrap_err(), Error::Unsupported("encryption"));
        let mut b = new_header(None);
        b[104] = 1;
        assert!(parse(&b).unwrap_err().to_string().contains("zstd"));
    }

    #[test]
    fn rejects_bad_fields() {
        let mut b = new_header(None);
        b[20..24].copy_from_slice(&22u32.to_be_bytes());
        assert!(parse(&b).unwrap_err().to_string().contains("cluster_bits 22"));
        let mut b = new_header(None);
        b[4..8].copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(parse(&b).unwrap_err(), Error::UnsupportedVersion(4));
        let mut b = new_header(None);
        b[100..104].copy_from_slice(&100u32.to_be_bytes());
        assert!(parse(&b).is_err());
        let mut b = new_header(None);
        b[96..100].copy_from_slice(&7u32.to_be_bytes());
        assert!(parse(&b).is_err());
        // A backing name outside the first cluster, and an extension overrunning it.
        let mut b = new_header(None);
        b[8..16].copy_from_slice(&0xfff0u64.to_be_bytes());
        b[16..20].copy_from_slice(&0x20u32.to_be_bytes());
        assert!(parse(&b).unwrap_err().to_string().contains("outside the first cluster"));
        let mut b = new_header(None);
        b[112..116].copy_from_slice(&0x1234u32.to_be_bytes());
        b[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&b).unwrap_err().to_string().contains("overruns"));
        assert!(parse(&[0u8; 10]).unwrap_err().to_string().contains("too short"));
    }

    #[test]
    fn skips_unknown_extensions_and_reads_version_2() {
        let mut b = new_header(None);
        b[112..116].copy_from_slice(&0x1234u32.to_be_bytes());
        b[116..120].copy_from_slice(&3u32.to_be_bytes());
        b[128..132].copy_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
        b[132..136].copy_from_slice(&5u32.to_be_bytes());
        b[136..141].copy_from_slice(b"qcow2");
        assert_eq!(parse(&b).unwrap().backing_format.as_deref(), Some("qcow2"));
        let mut v2 = new_header(None);
        v2[4..8].copy_from_slice(&2u32.to_be_bytes());
        v2[72..].fill(0);
        let h = parse(&v2).unwrap();
        assert_eq!((h.version, h.refcount_order, h.incompatible), (2, 4, 0));
    }
}
