//! Compressed clusters (spec, "Compressed Clusters Descriptor"; compression type 0): a raw
//! deflate stream (no zlib header) that inflates to exactly one cluster. The stream may be
//! followed by unrelated bytes up to the end of its last sector, so only a full cluster of output
//! counts, not the end of the input. The last cluster inflated is kept, so a guest reading a
//! compressed cluster 4 KiB at a time inflates it once.
//!
//! Not here: writing compressed clusters (a guest write to one rewrites it uncompressed).

use alloc::boxed::Box;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

use crate::{Error, ImageFile};

#[derive(Default)]
pub(super) struct Inflater {
    state: Option<Box<DecompressorOxide>>,
    /// The host offset of the last cluster inflated, and its data.
    last: Option<(u64, Vec<u8>)>,
}

impl Inflater {
    /// The cluster whose deflated data is `len` bytes at `host`.
    pub(super) fn cluster(
        &mut self,
        file: &mut dyn ImageFile,
        host: u64,
        len: u64,
        cluster_size: usize,
    ) -> Result<&[u8], Error> {
        if self.last.as_ref().is_none_or(|(at, data)| *at != host || data.len() != cluster_size) {
            self.last = None;
            // len is at most 2^(cluster_bits - 8) sectors: twice the cluster size.
            let mut input = vec![0u8; len as usize];
            file.read_at(host, &mut input)?;
            let mut out = vec![0u8; cluster_size];
            let state = self.state.get_or_insert_with(|| Box::new(DecompressorOxide::new()));
            state.init();
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
            let (status, _, written) = decompress(state, &input, &mut out, 0, flags);
            let complete = matches!(status, TINFLStatus::Done | TINFLStatus::HasMoreOutput) && written == cluster_size;
            if !complete {
                return Err(Error::corrupt(format!(
                    "compressed cluster at {host:#x} does not inflate to a cluster ({status:?}, {written} bytes)"
                )));
            }
            self.last = Some((host, out));
        }
        Ok(self.last.as_ref().map_or(&[][..], |(_, data)| data.as_slice()))
    }

    /// Forgets the kept cluster (its host cluster may be reused once freed).
    pub(super) fn forget(&mut self) {
        self.last = None;
    }
}
