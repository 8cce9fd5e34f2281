//! The HBA's registers in ABAR (BAR5): the generic host control registers (AHCI 1.3.1 3.1) and
//! each port's registers (3.3), with the bits the driver uses. Offsets and bits only.

/// Host Capabilities. See: AHCI 1.3.1 3.1.1
pub const CAP: usize = 0x00;
/// Global HBA Control. See: AHCI 1.3.1 3.1.2
pub const GHC: usize = 0x04;
/// Interrupt Status, one bit per port (write 1 to clear). See: AHCI 1.3.1 3.1.3
pub const IS: usize = 0x08;
/// Ports Implemented. See: AHCI 1.3.1 3.1.4
pub const PI: usize = 0x0c;
/// Version. See: AHCI 1.3.1 3.1.5
pub const VS: usize = 0x10;

/// CAP.S64A: 64-bit addressing (else every DMA address must lie below 4 GiB).
pub const CAP_S64A: u32 = 1 << 31;

/// GHC.HR: HBA reset, cleared by the HBA when done (within 1 s). See: AHCI 1.3.1 10.4.3
pub const GHC_RESET: u32 = 1 << 0;
/// GHC.IE: interrupts enabled.
pub const GHC_INTERRUPTS: u32 = 1 << 1;
/// GHC.AE: AHCI enable (software talks AHCI, not legacy IDE).
pub const GHC_AHCI: u32 = 1 << 31;

/// The first port's registers, and the distance between ports.
pub const PORTS: usize = 0x100;
pub const PORT_STRIDE: usize = 0x80;

/// Port registers, from the port's base. See: AHCI 1.3.1 3.3
pub mod port {
    /// Command List Base Address (1 KiB aligned), and its upper half.
    pub const CLB: usize = 0x00;
    pub const CLBU: usize = 0x04;
    /// FIS Base Address (256-byte aligned), and its upper half.
    pub const FB: usize = 0x08;
    pub const FBU: usize = 0x0c;
    /// Interrupt Status (write 1 to clear). See: AHCI 1.3.1 3.3.5
    pub const IS: usize = 0x10;
    /// Interrupt Enable.
    pub const IE: usize = 0x14;
    /// Command and Status. See: AHCI 1.3.1 3.3.7
    pub const CMD: usize = 0x18;
    /// Task File Data: the device's status (bits 7:0) and error (15:8) registers.
    pub const TFD: usize = 0x20;
    /// Signature of the attached device, from its first D2H Register FIS.
    pub const SIG: usize = 0x24;
    /// SATA Status (SStatus). See: AHCI 1.3.1 3.3.10
    pub const SSTS: usize = 0x28;
    /// SATA Control (SControl).
    pub const SCTL: usize = 0x2c;
    /// SATA Error (write 1 to clear).
    pub const SERR: usize = 0x30;
    /// Command Issue: bit n issues command slot n; the HBA clears it when done.
    pub const CI: usize = 0x38;
}

/// PxCMD bits. See: AHCI 1.3.1 3.3.7
pub const CMD_START: u32 = 1 << 0;
pub const CMD_SPIN_UP: u32 = 1 << 1;
pub const CMD_POWER_ON: u32 = 1 << 2;
pub const CMD_FIS_RECEIVE: u32 = 1 << 4;
pub const CMD_FIS_RUNNING: u32 = 1 << 14;
pub const CMD_LIST_RUNNING: u32 = 1 << 15;

/// PxIS error bits: task file error, host bus fatal, host bus data, interface fatal, interface
/// non-fatal, overflow. See: AHCI 1.3.1 3.3.5
pub const IS_TASK_FILE_ERROR: u32 = 1 << 30;
pub const IS_ERRORS: u32 = IS_TASK_FILE_ERROR | 1 << 29 | 1 << 28 | 1 << 27 | 1 << 26 | 1 << 24;
/// The interrupts the driver enables: D2H register, PIO setup, DMA setup and Set Device Bits
/// FISes, port change, and every error above. See: AHCI 1.3.1 3.3.6
pub const IE_WANTED: u32 = IS_ERRORS | 1 << 6 | 0b1111;

/// PxTFD.STS bits (the ATA status register). See: ATA8-ACS 6.1.1 (via AHCI 1.3.1 3.3.8)
pub const TFD_ERR: u32 = 1 << 0;
pub const TFD_DRQ: u32 = 1 << 3;
pub const TFD_BSY: u32 = 1 << 7;

/// PxSSTS.DET: device present and Phy communication established.
pub const DET_PRESENT: u32 = 3;

/// Device signatures in PxSIG. See: AHCI 1.3.1 3.3.9, SATA 3.x 11.3
pub const SIG_ATA: u32 = 0x0000_0101;
pub const SIG_ATAPI: u32 = 0xeb14_0101;

/// The offset of port `port`'s register `register`.
pub fn port_register(port: usize, register: usize) -> usize {
    PORTS + port * PORT_STRIDE + register
}
