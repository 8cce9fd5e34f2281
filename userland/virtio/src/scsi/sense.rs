//! SCSI status codes and sense data: the sense keys and additional sense codes the CD-ROM
//! reports, and their fixed-format encoding (SPC-4 4.5.3, 18 bytes).
//!
//! Does not: produce descriptor-format sense (SPC-4 4.5.2), or fill the information, command-
//! specific or sense-key-specific fields.

/// SCSI status (SAM-5 5.3.1).
pub const STATUS_GOOD: u8 = 0x00;
pub const STATUS_CHECK_CONDITION: u8 = 0x02;

/// Sense keys (SPC-4 4.5.6).
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const DATA_PROTECT: u8 = 0x7;
}

/// Bytes of fixed-format sense data.
pub const FIXED_LEN: usize = 18;

/// A sense key with its additional sense code and qualifier (SPC-4 4.5.6, Table 28 ff.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

impl Sense {
    pub const NONE: Sense = Sense { key: key::NO_SENSE, asc: 0, ascq: 0 };
    /// ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
    pub const INVALID_OPCODE: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x20, ascq: 0 };
    /// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE.
    pub const LBA_OUT_OF_RANGE: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x21, ascq: 0 };
    /// ILLEGAL REQUEST, INVALID FIELD IN CDB.
    pub const INVALID_FIELD: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x24, ascq: 0 };
    /// ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED.
    pub const SAVING_NOT_SUPPORTED: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x39, ascq: 0 };
    /// ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED.
    pub const REMOVAL_PREVENTED: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x53, ascq: 0x02 };
    /// NOT READY, MEDIUM NOT PRESENT.
    pub const NO_MEDIUM: Sense = Sense { key: key::NOT_READY, asc: 0x3A, ascq: 0 };
    /// MEDIUM ERROR, UNRECOVERED READ ERROR (the backend failed).
    pub const READ_ERROR: Sense = Sense { key: key::MEDIUM_ERROR, asc: 0x11, ascq: 0 };
    /// DATA PROTECT, WRITE PROTECTED.
    pub const WRITE_PROTECTED: Sense = Sense { key: key::DATA_PROTECT, asc: 0x27, ascq: 0 };

    /// Fixed-format sense data (SPC-4 4.5.3): current error, no valid information field.
    pub fn fixed(self) -> [u8; FIXED_LEN] {
        let mut s = [0u8; FIXED_LEN];
        s[0] = 0x70; // response code: current error, fixed format
        s[2] = self.key & 0x0F;
        s[7] = (FIXED_LEN - 8) as u8; // additional sense length
        s[12] = self.asc;
        s[13] = self.ascq;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format() {
        let s = Sense::INVALID_OPCODE.fixed();
        assert_eq!(s, [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0]);
        assert_eq!(Sense::REMOVAL_PREVENTED.fixed()[12..14], [0x53, 0x02]);
    }
}
