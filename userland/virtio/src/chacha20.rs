//! ChaCha20 (RFC 8439) and a random byte stream built on it, [`ChaCha20Rng`], to feed
//! virtio-rng.
//!
//! [`block`] is the RFC 8439 section 2.3 block function (256-bit key, 32-bit block counter,
//! 96-bit nonce), tested with the RFC's vectors. [`ChaCha20Rng`] is the ChaCha20 keystream under a
//! 256-bit seed with a 64-bit block counter (the counter's high word in the first nonce word, as
//! in the original ChaCha), rekeyed after every [`Entropy::fill`] call from one further block
//! ("fast key erasure": the state left behind cannot recompute what was already handed out).
//!
//! Quality: the output is as unpredictable as the seed and no more. Seeded from a real source
//! (the host CPU's RDSEED/RDRAND, a hardware RNG) it is a cryptographically strong generator, in
//! the same way as the stream ciphers behind Linux's and OpenBSD's random devices; seeded from
//! something guessable (a constant, the time) it is only a deterministic pseudo-random stream,
//! which is what the tests use. It never reseeds by itself: the monitor may call
//! [`ChaCha20Rng::reseed`] with fresh entropy.
//!
//! Does not: encrypt or authenticate messages (no Poly1305), or keep output buffered between calls.

use crate::rng::Entropy;

/// "expand 32-byte k" (RFC 8439 2.3).
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The quarter round on four state words (RFC 8439 2.1, 2.2).
fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// The ChaCha20 block function (RFC 8439 2.3): 64 bytes of keystream for `key`, block `counter`
/// and `nonce` (each as little-endian words).
pub fn block(key: &[u32; 8], counter: u32, nonce: &[u32; 3]) -> [u8; 64] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&SIGMA);
    state[4..12].copy_from_slice(key);
    state[12] = counter;
    state[13..].copy_from_slice(nonce);
    let mut working = state;
    for _ in 0..10 {
        // Column rounds, then diagonal rounds (RFC 8439 2.3 "inner_block").
        quarter_round(&mut working, 0, 4, 8, 12);
        quarter_round(&mut working, 1, 5, 9, 13);
        quarter_round(&mut working, 2, 6, 10, 14);
        quarter_round(&mut working, 3, 7, 11, 15);
        quarter_round(&mut working, 0, 5, 10, 15);
        quarter_round(&mut working, 1, 6, 11, 12);
        quarter_round(&mut working, 2, 7, 8, 13);
        quarter_round(&mut working, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&working[i].wrapping_add(state[i]).to_le_bytes());
    }
    out
}

/// Little-endian words of a 32-byte key.
pub fn key_words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut key = [0u32; 8];
    for (word, chunk) in key.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    key
}

/// The ChaCha20 keystream under a seed, rekeyed after each fill. See the module docs for what it
/// is and is not.
#[derive(Clone)]
pub struct ChaCha20Rng {
    key: [u32; 8],
    counter: u64,
}

impl core::fmt::Debug for ChaCha20Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the key.
        f.write_str("ChaCha20Rng { .. }")
    }
}

impl ChaCha20Rng {
    /// The stream for `seed` (its first block is ChaCha20 with key = seed, counter 0, nonce 0).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { key: key_words(&seed), counter: 0 }
    }

    /// Mixes `seed` into the key: the new key is the next block's first half XORed with `seed`,
    /// so the result is at least as unpredictable as either.
    pub fn reseed(&mut self, seed: [u8; 32]) {
        let next = self.next_block();
        let mut mixed = [0u8; 32];
        for (m, (a, b)) in mixed.iter_mut().zip(next[..32].iter().zip(seed.iter())) {
            *m = a ^ b;
        }
        self.key = key_words(&mixed);
        self.counter = 0;
    }

    fn next_block(&mut self) -> [u8; 64] {
        let nonce = [(self.counter >> 32) as u32, 0, 0];
        let out = block(&self.key, self.counter as u32, &nonce);
        self.counter = self.counter.wrapping_add(1);
        out
    }

    /// Replaces the key with 32 bytes of the next block, forgetting the old one.
    fn rekey(&mut self) {
        let next = self.next_block();
        let mut key = [0u8; 32];
        key.copy_from_slice(&next[..32]);
        self.key = key_words(&key);
        self.counter = 0;
    }
}

impl Entropy for ChaCha20Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(64) {
            let block = self.next_block();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        self.rekey();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> alloc::vec::Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn rfc_key() -> [u32; 8] {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        key_words(&k)
    }

    /// RFC 8439 2.1.1.
    #[test]
    fn quarter_round_vector() {
        let mut s = [0u32; 16];
        s[0] = 0x1111_1111;
        s[1] = 0x0102_0304;
        s[2] = 0x9b8d_6f43;
        s[3] = 0x0123_4567;
        quarter_round(&mut s, 0, 1, 2, 3);
        assert_eq!(&s[..4], &[0xea2a_92f4, 0xcb1c_f8ce, 0x4581_472e, 0x5881_c4bb]);
    }

    /// RFC 8439 2.3.2.
    #[test]
    fn block_vector() {
        let out = block(&rfc_key(), 1, &[0x0900_0000, 0x4a00_0000, 0]);
        let expect = hex("10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
             d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
        assert_eq!(&out[..], &expect[..]);
    }

    /// RFC 8439 2.4.2: the "sunscreen" encryption, counter 1.
    #[test]
    fn encryption_vector() {
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let expect = hex("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b\
             f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8\
             07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736\
             5af90bbf74a35be6b40b8eedf2785e42874d");
        let nonce = [0, 0x4a00_0000, 0];
        let mut out = alloc::vec::Vec::new();
        for (i, chunk) in plaintext.chunks(64).enumerate() {
            let ks = block(&rfc_key(), 1 + i as u32, &nonce);
            out.extend(chunk.iter().zip(ks.iter()).map(|(p, k)| p ^ k));
        }
        assert_eq!(out, expect);
    }

    #[test]
    fn stream_is_the_keystream_then_rekeys() {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut out = [0u8; 130];
        rng.fill(&mut out);
        // ChaCha20 keystream, key 00..1f, counter 0, nonce 0 (computed independently).
        let expect = hex("39fd2b7dd9c5196a8dbd0377b8dc4a498a35d86fbcde6accb2cc7d4cd8ea2492\
             2b23cce7a26023ab3f0eef693ac87f64258235eab1f7a32dc22762a0485b410c\
             18b84231ade6a6d113615c61af434e27f8b1f3f5e1ad5b5cecf8fc122a35755c\
             7208086dd1ee3c5d9d815824640e003c9ba0f65ede5d59ce0d2a4a7f31955acd\
             42f2");
        assert_eq!(&out[..], &expect[..]);
        // Rekeyed from block 3: the next output is not the continuation of the old stream.
        let mut old = ChaCha20Rng::from_seed(seed);
        let mut cont = [0u8; 256];
        old.fill(&mut cont);
        let mut next = [0u8; 64];
        rng.fill(&mut next);
        assert_ne!(&next[..], &cont[192..]);
        let mut new_key = [0u8; 32];
        new_key.copy_from_slice(&cont[192..224]);
        assert_eq!(next, block(&key_words(&new_key), 0, &[0, 0, 0]));
        // Deterministic for a seed; different seeds differ.
        let mut a = ChaCha20Rng::from_seed([7; 32]);
        let mut b = ChaCha20Rng::from_seed([7; 32]);
        let mut c = ChaCha20Rng::from_seed([8; 32]);
        let (mut x, mut y, mut z) = ([0u8; 100], [0u8; 100], [0u8; 100]);
        for _ in 0..3 {
            a.fill(&mut x);
            b.fill(&mut y);
            c.fill(&mut z);
            assert_eq!(x, y);
            assert_ne!(x, z);
        }
        a.fill(&mut []);
        assert_eq!(format!("{a:?}"), "ChaCha20Rng { .. }");
    }

    #[test]
    fn counter_carries_into_the_nonce_word() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        rng.key = rfc_key();
        rng.counter = 0xFFFF_FFFF;
        let expect_a = hex("1ce0deb8925fccea2d5587e850054559edcbbeb1a6c8e1c02c1e89abba08b01c\
             ad6048fe5ab5242ed6befbef6b4040fcb666a5f3858d942a912c4e8800301a42");
        let expect_b = hex("d838fb09536e2e3a10e8f23f486273a69f42d8e640d781ede384793c34c32564\
             fc4361e5d5c5b620583b0528192f4c6109f23a0e14398ee6537cdcf2cd610ea2");
        assert_eq!(&rng.next_block()[..], &expect_a[..]);
        assert_eq!(&rng.next_block()[..], &expect_b[..]);
    }

    #[test]
    fn reseed_changes_the_stream() {
        let mut a = ChaCha20Rng::from_seed([1; 32]);
        let mut b = a.clone();
        b.reseed([0; 32]);
        let (mut x, mut y) = ([0u8; 64], [0u8; 64]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y);
    }
}
