//! FNV-1a (64-bit): the one non-cryptographic hash the program stores in files, for the corpus
//! fingerprint in a checkpoint ([`crate::corpus::fingerprint`]) and the checkpoint's checksums
//! ([`crate::checkpoint`]). It catches accidental change, not tampering.

/// The FNV-1a offset basis: the hash of no bytes.
pub const FNV1A_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continued from the hash `h` of what came before.
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_of_the_published_function() {
        // Test vectors of 64-bit FNV-1a: "" and "a" (from the function's published reference).
        assert_eq!(fnv1a(FNV1A_START, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV1A_START, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(fnv1a(FNV1A_START, b"fo"), b"obar"), fnv1a(FNV1A_START, b"foobar"));
    }
}
