//! Physical Region Page entries for a transfer out of the driver's bounce buffer (NVMe 1.4 4.3):
//! one page needs PRP1 only, two pages PRP1 and PRP2, more a PRP list that PRP2 points to. The
//! bounce buffer is contiguous and page aligned, so its list never changes: it is written once,
//! at bring-up, and each command only picks PRP2.
//!
//! What it does not do: chain list pages (the bounce buffer is kept within what one list page
//! describes), or describe caller memory (every transfer goes through the bounce buffer).

/// The most pages one transfer can span with a single list page: PRP1's page and one entry per
/// 8 bytes of the list page (the last entry is a data page when no list page follows).
/// See: NVMe 1.4 4.3 (Figure 108)
pub fn max_pages(page_size: usize) -> usize {
    1 + page_size / 8
}

/// PRP1 and PRP2 for the first `len` bytes of the bounce buffer at `buffer` (page aligned),
/// whose list is at `list`.
pub fn data_pointers(buffer: u64, len: usize, page_size: usize, list: u64) -> (u64, u64) {
    match len.div_ceil(page_size) {
        0 | 1 => (buffer, 0),
        2 => (buffer, buffer + page_size as u64),
        _ => (buffer, list),
    }
}

/// The list's entries for a bounce buffer of `buffer_len` bytes at `buffer`: every page after
/// the first, in order.
pub fn list_entries(buffer: u64, buffer_len: usize, page_size: usize) -> impl Iterator<Item = u64> {
    let pages = buffer_len.div_ceil(page_size);
    (1..pages).map(move |page| buffer + (page * page_size) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_by_transfer_length() {
        let (buffer, list) = (0x1_0000_0000, 0x2_0000_0000);
        assert_eq!(data_pointers(buffer, 512, 4096, list), (buffer, 0));
        assert_eq!(data_pointers(buffer, 4096, 4096, list), (buffer, 0));
        assert_eq!(data_pointers(buffer, 4097, 4096, list), (buffer, buffer + 4096));
        assert_eq!(data_pointers(buffer, 3 * 4096, 4096, list), (buffer, list));
        let entries: alloc::vec::Vec<u64> = list_entries(buffer, 3 * 4096, 4096).collect();
        assert_eq!(entries, [buffer + 4096, buffer + 8192]);
        assert_eq!(max_pages(4096), 513);
    }
}
