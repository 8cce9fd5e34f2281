//! Submission and completion queue entries: the 64-byte command the driver builds (NVMe 1.4
//! 4.2) and the 16-byte completion it decodes (NVMe 1.4 4.6), with the opcodes it uses. Pure
//! layout: queues and doorbells are `queue.rs`'s.

/// Admin command set opcodes. See: NVMe 1.4 5 (Figure 139)
pub mod admin {
    pub const CREATE_IO_SUBMISSION_QUEUE: u8 = 0x01;
    pub const CREATE_IO_COMPLETION_QUEUE: u8 = 0x05;
    pub const IDENTIFY: u8 = 0x06;
    pub const SET_FEATURES: u8 = 0x09;
}

/// NVM command set opcodes. See: NVMe 1.4 6 (Figure 346)
pub mod nvm {
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const WRITE_ZEROES: u8 = 0x08;
}

/// Identify's CNS values. See: NVMe 1.4 5.15.1 (Figure 244)
pub mod cns {
    pub const NAMESPACE: u32 = 0x00;
    pub const CONTROLLER: u32 = 0x01;
    pub const ACTIVE_NAMESPACES: u32 = 0x02;
}

/// Feature identifier Number of Queues. See: NVMe 1.4 5.21.1.7
pub const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// Bytes in a submission queue entry (CC.IOSQES 6).
pub const COMMAND_BYTES: usize = 64;
/// Bytes in a completion queue entry (CC.IOCQES 4).
pub const COMPLETION_BYTES: usize = 16;

/// A submission queue entry as its sixteen dwords. See: NVMe 1.4 4.2 (Figure 105)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub dwords: [u32; 16],
}

impl Command {
    /// A command with `opcode` for namespace `nsid`, data pointers PRP (PSDT 00b), no fusing.
    pub fn new(opcode: u8, nsid: u32) -> Self {
        let mut dwords = [0; 16];
        dwords[0] = opcode as u32;
        dwords[1] = nsid;
        Command { dwords }
    }

    /// The opcode (CDW0 bits 7:0).
    pub fn opcode(&self) -> u8 {
        self.dwords[0] as u8
    }

    /// Set the command identifier (CDW0 bits 31:16), which the completion echoes.
    pub fn set_id(&mut self, id: u16) {
        self.dwords[0] = (self.dwords[0] & 0xffff) | (id as u32) << 16;
    }

    /// Data Pointer: PRP entry 1 and 2 (dwords 6..10). See: NVMe 1.4 4.3
    pub fn with_data(mut self, prp1: u64, prp2: u64) -> Self {
        self.dwords[6] = prp1 as u32;
        self.dwords[7] = (prp1 >> 32) as u32;
        self.dwords[8] = prp2 as u32;
        self.dwords[9] = (prp2 >> 32) as u32;
        self
    }

    /// Command dwords 10 to 15, in order.
    pub fn with_cdw(mut self, first: usize, values: &[u32]) -> Self {
        for (index, value) in values.iter().enumerate() {
            if let Some(dword) = self.dwords.get_mut(10 + first + index) {
                *dword = *value;
            }
        }
        self
    }

    /// A Read, Write or Write Zeroes of `blocks` (1..=65536) blocks at `lba`: SLBA in CDW10-11,
    /// NLB (0-based) in CDW12. See: NVMe 1.4 6.9, 6.15, 6.16
    pub fn block_range(opcode: u8, nsid: u32, lba: u64, blocks: u32) -> Self {
        let count = blocks.saturating_sub(1) & 0xffff;
        Command::new(opcode, nsid).with_cdw(0, &[lba as u32, (lba >> 32) as u32, count])
    }

    /// The entry's bytes as the controller reads them.
    pub fn to_bytes(self) -> [u8; COMMAND_BYTES] {
        let mut bytes = [0; COMMAND_BYTES];
        for (chunk, dword) in bytes.chunks_exact_mut(4).zip(self.dwords) {
            chunk.copy_from_slice(&dword.to_le_bytes());
        }
        bytes
    }

    /// Decode an entry (the fake controller's side).
    #[cfg(test)]
    pub fn from_bytes(bytes: &[u8; COMMAND_BYTES]) -> Self {
        let mut dwords = [0; 16];
        for (dword, chunk) in dwords.iter_mut().zip(bytes.chunks_exact(4)) {
            *dword = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Command { dwords }
    }
}

/// A completion queue entry. See: NVMe 1.4 4.6 (Figure 124)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Dword 0, command specific (Set Features Number of Queues returns the counts here).
    pub result: u32,
    /// The submission queue head the controller has consumed up to (SQHD).
    pub submission_head: u16,
    /// Which submission queue the command came from (SQID).
    pub submission_queue: u16,
    /// The command identifier (CID).
    pub command_id: u16,
    /// The Phase Tag.
    pub phase: bool,
    /// The Status Field without the phase: SC bits 7:0, SCT bits 10:8, CRD, M, DNR above.
    pub status: u16,
}

impl Completion {
    /// Decode dwords 0, 2 and 3.
    pub fn decode(dw0: u32, dw2: u32, dw3: u32) -> Self {
        Completion {
            result: dw0,
            submission_head: dw2 as u16,
            submission_queue: (dw2 >> 16) as u16,
            command_id: dw3 as u16,
            phase: dw3 & 1 << 16 != 0,
            status: (dw3 >> 17) as u16,
        }
    }

    /// The entry's bytes (the fake controller's side).
    #[cfg(test)]
    pub fn to_bytes(self) -> [u8; COMPLETION_BYTES] {
        let dw2 = self.submission_head as u32 | (self.submission_queue as u32) << 16;
        let dw3 = self.command_id as u32 | (self.phase as u32) << 16 | (self.status as u32) << 17;
        let mut bytes = [0; COMPLETION_BYTES];
        bytes[0..4].copy_from_slice(&self.result.to_le_bytes());
        bytes[8..12].copy_from_slice(&dw2.to_le_bytes());
        bytes[12..16].copy_from_slice(&dw3.to_le_bytes());
        bytes
    }

    /// The error as Status Code Type and Status Code, `SCT << 8 | SC` (0x281: media error,
    /// unrecovered read), or `None` for success. See: NVMe 1.4 4.6.1.1
    pub fn error(&self) -> Option<u16> {
        let code = self.status & 0x7ff;
        (code != 0).then_some(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_their_fields() {
        let mut read = Command::block_range(nvm::READ, 1, 0x1_2345_6789, 8).with_data(0x1000, 0x2_0000_3000);
        read.set_id(0xbeef);
        let bytes = read.to_bytes();
        assert_eq!(&bytes[0..4], &[0x02, 0, 0xef, 0xbe]);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), 0x1000);
        assert_eq!(u64::from_le_bytes(bytes[32..40].try_into().unwrap()), 0x2_0000_3000);
        assert_eq!(u64::from_le_bytes(bytes[40..48].try_into().unwrap()), 0x1_2345_6789);
        assert_eq!(u32::from_le_bytes(bytes[48..52].try_into().unwrap()), 7);
        assert_eq!(Command::from_bytes(&bytes), read);
        assert_eq!(Command::block_range(nvm::WRITE, 1, 0, 65536).dwords[12], 0xffff);
    }

    #[test]
    fn completions_decode_phase_and_status() {
        let done = Completion::decode(5, 0x0001_0007, 0x0503_0042);
        assert_eq!((done.result, done.submission_head, done.submission_queue), (5, 7, 1));
        assert_eq!(done.command_id, 0x42);
        assert!(done.phase);
        assert_eq!(done.error(), Some(0x281));
        let bytes = done.to_bytes();
        let again = Completion::decode(5, u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 0x0503_0042);
        assert_eq!(again, done);
        assert_eq!(Completion::decode(0, 0, 1 << 16).error(), None);
        // Do Not Retry alone is not an error; with a status code it is.
        assert_eq!(Completion::decode(0, 0, 1 << 31 | 1 << 16).error(), None);
    }
}
