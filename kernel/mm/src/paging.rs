//! A generic 4-level page-table builder over an injected table memory and entry format.
//!
//! The kernel uses it for its own address space (x86-64 format, [`X86`]); the nested page tables
//! of later issues (EPT, NPT) plug in their own [`EntryFormat`]. Tables are reached only through
//! [`TableMemory`] (the kernel's direct map, or a fake memory in the host tests), never through
//! references.
//!
//! Does not: flush TLBs, free tables on unmap, or share tables between address spaces.
//! See: SDM Vol 3A 5.5 (4-level paging), APM Vol 2 5.3.

/// Access to page-table frames by physical address.
pub trait TableMemory {
    /// A zeroed 4 KiB frame for a new table, or `None` when memory is exhausted.
    fn alloc_table(&mut self) -> Option<u64>;
    fn read_entry(&self, table: u64, index: usize) -> u64;
    fn write_entry(&mut self, table: u64, index: usize, value: u64);
    /// Give back a table frame that `free_lower_levels` emptied.
    fn free_table(&mut self, table: u64);
}

/// The leaf sizes a 4-level table supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    Size4K,
    Size2M,
    Size1G,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 1 << 12,
            Self::Size2M => 1 << 21,
            Self::Size1G => 1 << 30,
        }
    }

    /// Table level holding the leaf: 1 = page table, 2 = page directory, 3 = PDPT.
    const fn leaf_level(self) -> usize {
        match self {
            Self::Size4K => 1,
            Self::Size2M => 2,
            Self::Size1G => 3,
        }
    }
}

/// What a mapping allows, independent of the entry format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub writable: bool,
    pub executable: bool,
    pub user: bool,
    /// Memory-mapped I/O: caching disabled.
    pub uncached: bool,
}

impl Access {
    pub const KERNEL_DATA: Access = Access { writable: true, executable: false, user: false, uncached: false };
    pub const KERNEL_CODE: Access = Access { writable: false, executable: true, user: false, uncached: false };
    pub const KERNEL_RODATA: Access = Access { writable: false, executable: false, user: false, uncached: false };
    pub const KERNEL_MMIO: Access = Access { writable: true, executable: false, user: false, uncached: true };
}

/// How one kind of page table encodes its entries.
pub trait EntryFormat {
    /// An entry pointing at a next-level table (permissive: leaves decide access).
    fn table(&self, table: u64) -> u64;
    /// A leaf mapping `addr` with `access`; `level` > 1 means a large page.
    fn leaf(&self, addr: u64, access: Access, level: usize) -> u64;
    fn is_present(&self, entry: u64) -> bool;
    /// A present entry at `level` > 1 that maps a large page instead of pointing to a table.
    fn is_large(&self, entry: u64, level: usize) -> bool;
    /// The physical address an entry holds.
    fn address(&self, entry: u64) -> u64;
}

/// The x86-64 (IA-32e) format used by the CPU for its own page tables.
/// See: SDM Vol 3A Tables 5-15 .. 5-20.
pub struct X86 {
    /// Whether EFER.NXE is on; without it, bit 63 is reserved and must stay clear.
    pub nx: bool,
}

pub const X86_PRESENT: u64 = 1 << 0;
pub const X86_WRITABLE: u64 = 1 << 1;
pub const X86_USER: u64 = 1 << 2;
pub const X86_PWT: u64 = 1 << 3;
pub const X86_PCD: u64 = 1 << 4;
pub const X86_LARGE: u64 = 1 << 7;
pub const X86_GLOBAL: u64 = 1 << 8;
pub const X86_NX: u64 = 1 << 63;
const X86_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

impl EntryFormat for X86 {
    fn table(&self, table: u64) -> u64 {
        (table & X86_ADDR_MASK) | X86_PRESENT | X86_WRITABLE | X86_USER
    }

    fn leaf(&self, addr: u64, access: Access, level: usize) -> u64 {
        let mut e = (addr & X86_ADDR_MASK) | X86_PRESENT;
        if access.writable {
            e |= X86_WRITABLE;
        }
        if access.user {
            e |= X86_USER;
        } else {
            e |= X86_GLOBAL;
        }
        if access.uncached {
            e |= X86_PCD | X86_PWT;
        }
        if !access.executable && self.nx {
            e |= X86_NX;
        }
        if level > 1 {
            e |= X86_LARGE;
        }
        e
    }

    fn is_present(&self, entry: u64) -> bool {
        entry & X86_PRESENT != 0
    }

    fn is_large(&self, entry: u64, level: usize) -> bool {
        level > 1 && entry & X86_LARGE != 0
    }

    fn address(&self, entry: u64) -> u64 {
        entry & X86_ADDR_MASK
    }
}

/// Intel's EPT format for nested paging: R/W/X bits, write-back memory type on leaves.
/// See: SDM Vol 3C 29.3.2 (EPT translation), Tables 29-1 .. 29-6.
pub struct Ept;

pub const EPT_READ: u64 = 1 << 0;
pub const EPT_WRITE: u64 = 1 << 1;
pub const EPT_EXEC: u64 = 1 << 2;
/// Memory type write-back (6) in bits 3-5 of a leaf.
pub const EPT_WB: u64 = 6 << 3;
pub const EPT_LARGE: u64 = 1 << 7;

impl EntryFormat for Ept {
    fn table(&self, table: u64) -> u64 {
        (table & X86_ADDR_MASK) | EPT_READ | EPT_WRITE | EPT_EXEC
    }

    fn leaf(&self, addr: u64, access: Access, level: usize) -> u64 {
        let mut e = (addr & X86_ADDR_MASK) | EPT_READ | EPT_WB;
        if access.writable {
            e |= EPT_WRITE;
        }
        if access.executable {
            e |= EPT_EXEC;
        }
        if level > 1 {
            e |= EPT_LARGE;
        }
        e
    }

    fn is_present(&self, entry: u64) -> bool {
        entry & (EPT_READ | EPT_WRITE | EPT_EXEC) != 0
    }

    fn is_large(&self, entry: u64, level: usize) -> bool {
        level > 1 && entry & EPT_LARGE != 0
    }

    fn address(&self, entry: u64) -> u64 {
        entry & X86_ADDR_MASK
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The virtual or physical address is not aligned to the page size.
    Misaligned,
    /// Something is already mapped there.
    AlreadyMapped,
    /// A large page covers the place where a table is needed.
    LargePageInTheWay,
    /// No memory for a new table.
    OutOfMemory,
}

fn index(va: u64, level: usize) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// A page table rooted at `root` (the PML4's physical address).
pub struct PageTable<F: EntryFormat> {
    pub root: u64,
    pub format: F,
}

impl<F: EntryFormat> PageTable<F> {
    /// A new, empty address space.
    pub fn new(mem: &mut impl TableMemory, format: F) -> Option<Self> {
        Some(Self { root: mem.alloc_table()?, format })
    }

    /// Map one page of `size` at `va` to `pa`.
    pub fn map(
        &self,
        mem: &mut impl TableMemory,
        va: u64,
        pa: u64,
        size: PageSize,
        access: Access,
    ) -> Result<(), MapError> {
        if !va.is_multiple_of(size.bytes()) || !pa.is_multiple_of(size.bytes()) {
            return Err(MapError::Misaligned);
        }
        let leaf_level = size.leaf_level();
        let mut table = self.root;
        for level in (leaf_level + 1..=4).rev() {
            let i = index(va, level);
            let entry = mem.read_entry(table, i);
            table = if !self.format.is_present(entry) {
                let next = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                mem.write_entry(table, i, self.format.table(next));
                next
            } else if self.format.is_large(entry, level) {
                return Err(MapError::LargePageInTheWay);
            } else {
                self.format.address(entry)
            };
        }
        let i = index(va, leaf_level);
        if self.format.is_present(mem.read_entry(table, i)) {
            return Err(MapError::AlreadyMapped);
        }
        mem.write_entry(table, i, self.format.leaf(pa, access, leaf_level));
        Ok(())
    }

    /// Map `[va, va + len)` to `[pa, pa + len)` with the largest pages that fit (2 MiB where both
    /// addresses allow it, 4 KiB otherwise). 1 GiB pages are left out: not every CPU has them.
    pub fn map_range(
        &self,
        mem: &mut impl TableMemory,
        va: u64,
        pa: u64,
        len: u64,
        access: Access,
    ) -> Result<(), MapError> {
        let mut off = 0;
        while off < len {
            let (v, p, left) = (va + off, pa + off, len - off);
            let size = if v % PageSize::Size2M.bytes() == 0
                && p % PageSize::Size2M.bytes() == 0
                && left >= PageSize::Size2M.bytes()
            {
                PageSize::Size2M
            } else {
                PageSize::Size4K
            };
            self.map(mem, v, p, size, access)?;
            off += size.bytes();
        }
        Ok(())
    }

    /// The physical address `va` maps to, if any.
    pub fn translate(&self, mem: &impl TableMemory, va: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = mem.read_entry(table, index(va, level));
            if !self.format.is_present(entry) {
                return None;
            }
            let page_bytes = 1u64 << (12 + 9 * (level - 1));
            if level == 1 || self.format.is_large(entry, level) {
                return Some(self.format.address(entry) & !(page_bytes - 1) | (va & (page_bytes - 1)));
            }
            table = self.format.address(entry);
        }
        None
    }

    /// The raw leaf entry mapping `va` (for tests and diagnostics).
    pub fn leaf_entry(&self, mem: &impl TableMemory, va: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = mem.read_entry(table, index(va, level));
            if !self.format.is_present(entry) {
                return None;
            }
            if level == 1 || self.format.is_large(entry, level) {
                return Some(entry);
            }
            table = self.format.address(entry);
        }
        None
    }

    /// Remove the 4 KiB mapping at `va`; returns the frame it mapped. Large pages are not split.
    pub fn unmap(&self, mem: &mut impl TableMemory, va: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (2..=4).rev() {
            let entry = mem.read_entry(table, index(va, level));
            if !self.format.is_present(entry) || self.format.is_large(entry, level) {
                return None;
            }
            table = self.format.address(entry);
        }
        let i = index(va, 1);
        let entry = mem.read_entry(table, i);
        if !self.format.is_present(entry) {
            return None;
        }
        mem.write_entry(table, i, 0);
        Some(self.format.address(entry))
    }

    /// Remove the leaf (4 KiB or large) that maps `va`; returns its frame and size in bytes.
    pub fn unmap_any(&self, mem: &mut impl TableMemory, va: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let i = index(va, level);
            let entry = mem.read_entry(table, i);
            if !self.format.is_present(entry) {
                return None;
            }
            if level == 1 || self.format.is_large(entry, level) {
                mem.write_entry(table, i, 0);
                return Some((self.format.address(entry), 1 << (12 + 9 * (level - 1))));
            }
            table = self.format.address(entry);
        }
        None
    }

    /// Tear down the top-level slots `from..to`: call `on_leaf(frame, bytes)` for every mapped
    /// leaf, free every lower-level table, and clear the slots. The root itself stays.
    pub fn free_lower_levels(
        &self,
        mem: &mut impl TableMemory,
        from: usize,
        to: usize,
        on_leaf: &mut impl FnMut(u64, u64),
    ) {
        for i in from..to.min(512) {
            let entry = mem.read_entry(self.root, i);
            if self.format.is_present(entry) {
                self.free_subtree(mem, self.format.address(entry), 3, on_leaf);
                mem.write_entry(self.root, i, 0);
            }
        }
    }

    fn free_subtree(&self, mem: &mut impl TableMemory, table: u64, level: usize, on_leaf: &mut impl FnMut(u64, u64)) {
        for i in 0..512 {
            let entry = mem.read_entry(table, i);
            if !self.format.is_present(entry) {
                continue;
            }
            if level == 1 || self.format.is_large(entry, level) {
                on_leaf(self.format.address(entry), 1 << (12 + 9 * (level - 1)));
            } else {
                self.free_subtree(mem, self.format.address(entry), level - 1, on_leaf);
            }
        }
        mem.free_table(table);
    }

    /// Copy the top-level entries `from..to` of another table (to share the kernel half).
    pub fn share_top_level(&self, mem: &mut impl TableMemory, other_root: u64, from: usize, to: usize) {
        for i in from..to.min(512) {
            let e = mem.read_entry(other_root, i);
            mem.write_entry(self.root, i, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Page tables in a hash map, at made-up physical addresses.
    #[derive(Default)]
    struct FakeMemory {
        tables: HashMap<u64, [u64; 512]>,
        next: u64,
        limit: usize,
    }

    impl FakeMemory {
        fn with_limit(limit: usize) -> Self {
            Self { tables: HashMap::new(), next: 0x10_0000, limit }
        }
    }

    impl TableMemory for FakeMemory {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let pa = self.next;
            self.next += 0x1000;
            self.tables.insert(pa, [0; 512]);
            Some(pa)
        }
        fn read_entry(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write_entry(&mut self, table: u64, index: usize, value: u64) {
            self.tables.get_mut(&table).unwrap()[index] = value;
        }
        fn free_table(&mut self, table: u64) {
            assert!(self.tables.remove(&table).is_some(), "table {table:#x} freed twice");
        }
    }

    #[test]
    fn ept_entries() {
        let mut mem = FakeMemory::with_limit(10);
        let pt = PageTable::new(&mut mem, Ept).unwrap();
        let ram = Access { writable: true, executable: true, user: true, uncached: false };
        pt.map(&mut mem, 0x20_0000, 0x40_0000, PageSize::Size2M, ram).unwrap();
        let ro = Access { writable: false, executable: false, user: true, uncached: false };
        pt.map(&mut mem, 0x1000, 0x9000, PageSize::Size4K, ro).unwrap();
        assert_eq!(
            pt.leaf_entry(&mem, 0x20_0000),
            Some(0x40_0000 | EPT_READ | EPT_WRITE | EPT_EXEC | EPT_WB | EPT_LARGE)
        );
        assert_eq!(pt.leaf_entry(&mem, 0x1000), Some(0x9000 | EPT_READ | EPT_WB));
        assert_eq!(pt.translate(&mem, 0x20_1234), Some(0x40_1234));
        assert_eq!(mem.read_entry(pt.root, 0) & 7, 7, "tables allow everything; leaves decide");
    }

    #[test]
    fn unmap_and_free_lower_levels() {
        let mut mem = FakeMemory::with_limit(100);
        let pt = PageTable::new(&mut mem, X86 { nx: true }).unwrap();
        let user = Access { writable: true, executable: false, user: true, uncached: false };
        pt.map(&mut mem, 0x40_0000, 0x9000, PageSize::Size4K, user).unwrap();
        pt.map(&mut mem, 0x40_1000, 0xa000, PageSize::Size4K, user).unwrap();
        pt.map(&mut mem, 0x7fff_0000_0000, 0xb000, PageSize::Size4K, user).unwrap();
        pt.map(&mut mem, KERNEL, 0xc000, PageSize::Size4K, Access::KERNEL_DATA).unwrap();
        assert_eq!(pt.unmap(&mut mem, 0x40_1000), Some(0xa000));
        pt.map(&mut mem, 0x60_0000, 0x80_0000, PageSize::Size2M, user).unwrap();
        assert_eq!(pt.unmap(&mut mem, 0x60_0000), None, "unmap does not split large pages");
        assert_eq!(pt.unmap_any(&mut mem, 0x60_0000), Some((0x80_0000, 2 << 20)));
        assert_eq!(pt.unmap_any(&mut mem, 0x60_0000), None);
        assert_eq!(pt.unmap(&mut mem, 0x40_1000), None);
        assert_eq!(pt.translate(&mem, 0x40_1000), None);
        let mut freed = Vec::new();
        pt.free_lower_levels(&mut mem, 0, 256, &mut |frame, bytes| freed.push((frame, bytes)));
        freed.sort();
        assert_eq!(freed, vec![(0x9000, 4096), (0xb000, 4096)]);
        assert_eq!(pt.translate(&mem, 0x40_0000), None);
        assert_eq!(pt.translate(&mem, KERNEL), Some(0xc000), "the kernel half is untouched");
        // Root + kernel PDPT/PD/PT remain.
        assert_eq!(mem.tables.len(), 4);
    }

    const KERNEL: u64 = 0xffff_ffff_8000_0000;

    #[test]
    fn maps_and_translates_4k_and_2m() {
        let mut mem = FakeMemory::with_limit(100);
        let pt = PageTable::new(&mut mem, X86 { nx: true }).unwrap();
        pt.map(&mut mem, KERNEL + 0x1000, 0x5000, PageSize::Size4K, Access::KERNEL_CODE).unwrap();
        pt.map(&mut mem, 0xffff_8000_0020_0000, 0x20_0000, PageSize::Size2M, Access::KERNEL_DATA).unwrap();
        assert_eq!(pt.translate(&mem, KERNEL + 0x1234), Some(0x5234));
        assert_eq!(pt.translate(&mem, 0xffff_8000_0020_0000 + 0x12345), Some(0x21_2345));
        assert_eq!(pt.translate(&mem, KERNEL + 0x2000), None);
        assert_eq!(pt.translate(&mem, 0), None);
        let code = pt.leaf_entry(&mem, KERNEL + 0x1000).unwrap();
        assert_eq!(code & (X86_WRITABLE | X86_NX), 0, "code is read-only and executable");
        let data = pt.leaf_entry(&mem, 0xffff_8000_0020_0000).unwrap();
        assert_eq!(data & (X86_WRITABLE | X86_NX | X86_LARGE), X86_WRITABLE | X86_NX | X86_LARGE);
        // 1 PML4 + 2 * (PDPT + PD) + 1 PT
        assert_eq!(mem.tables.len(), 6);
    }

    #[test]
    fn nx_bit_only_when_enabled() {
        let mut mem = FakeMemory::with_limit(10);
        let pt = PageTable::new(&mut mem, X86 { nx: false }).unwrap();
        pt.map(&mut mem, 0x1000, 0x1000, PageSize::Size4K, Access::KERNEL_DATA).unwrap();
        assert_eq!(pt.leaf_entry(&mem, 0x1000).unwrap() & X86_NX, 0);
    }

    #[test]
    fn errors() {
        let mut mem = FakeMemory::with_limit(4);
        let pt = PageTable::new(&mut mem, X86 { nx: true }).unwrap();
        assert_eq!(pt.map(&mut mem, 0x1001, 0, PageSize::Size4K, Access::KERNEL_DATA), Err(MapError::Misaligned));
        assert_eq!(
            pt.map(&mut mem, 0x20_0000, 0x1000, PageSize::Size2M, Access::KERNEL_DATA),
            Err(MapError::Misaligned)
        );
        pt.map(&mut mem, 0x20_0000, 0x20_0000, PageSize::Size2M, Access::KERNEL_DATA).unwrap();
        assert_eq!(
            pt.map(&mut mem, 0x20_0000, 0x40_0000, PageSize::Size2M, Access::KERNEL_DATA),
            Err(MapError::AlreadyMapped)
        );
        assert_eq!(
            pt.map(&mut mem, 0x20_1000, 0x1000, PageSize::Size4K, Access::KERNEL_DATA),
            Err(MapError::LargePageInTheWay)
        );
        // Root + PDPT + PD used 3 of 4 tables; a new PT fits once, then memory runs out.
        pt.map(&mut mem, 0x40_0000, 0x1000, PageSize::Size4K, Access::KERNEL_DATA).unwrap();
        assert_eq!(
            pt.map(&mut mem, 0x4000_0000, 0x1000, PageSize::Size4K, Access::KERNEL_DATA),
            Err(MapError::OutOfMemory)
        );
    }

    #[test]
    fn map_range_uses_large_pages_where_aligned() {
        let mut mem = FakeMemory::with_limit(100);
        let pt = PageTable::new(&mut mem, X86 { nx: true }).unwrap();
        // 1 MiB .. 5 MiB + 4 KiB: 4K pages up to 2 MiB, one 2M page, then 4K pages again.
        pt.map_range(&mut mem, 0x10_0000, 0x10_0000, 0x40_1000, Access::KERNEL_DATA).unwrap();
        assert_eq!(pt.leaf_entry(&mem, 0x1f_f000).unwrap() & X86_LARGE, 0);
        assert_ne!(pt.leaf_entry(&mem, 0x20_0000).unwrap() & X86_LARGE, 0);
        assert_eq!(pt.leaf_entry(&mem, 0x40_0000).unwrap() & X86_LARGE, 0);
        assert_eq!(pt.leaf_entry(&mem, 0x50_0000).unwrap() & X86_LARGE, 0);
        assert_eq!(pt.translate(&mem, 0x50_0fff), Some(0x50_0fff));
        assert_eq!(pt.translate(&mem, 0x50_1000), None);
        let uc = Access::KERNEL_MMIO;
        pt.map_range(&mut mem, 0xfee0_0000, 0xfee0_0000, 0x1000, uc).unwrap();
        assert_eq!(pt.leaf_entry(&mem, 0xfee0_0000).unwrap() & (X86_PCD | X86_PWT), X86_PCD | X86_PWT);
    }

    #[test]
    fn share_top_level_copies_kernel_half() {
        let mut mem = FakeMemory::with_limit(100);
        let kernel = PageTable::new(&mut mem, X86 { nx: true }).unwrap();
        kernel.map(&mut mem, KERNEL, 0x1000, PageSize::Size4K, Access::KERNEL_DATA).unwrap();
        let user = PageTable::new(&mut mem, X86 { nx: true }).unwrap();
        user.share_top_level(&mut mem, kernel.root, 256, 512);
        assert_eq!(user.translate(&mem, KERNEL), Some(0x1000));
    }
}
