//! Diffie-Hellman parameters (docs/configuration.md): safe primes `p = 2q + 1` with
//! generator 2, generated natively or taken from RFC 7919, written as PKCS #3
//! `DH PARAMETERS` PEM (what `openssl dhparam` writes and servers read).
//!
//! Generation follows OpenSSL's choice of modulus (`p ≡ 23 mod 24`, so 2 is a
//! quadratic residue and generates the subgroup of prime order q) but sieves
//! far deeper: candidates `q = q0 + 12k` are sieved in windows against every
//! prime below a bound of about `4·bits²` (2^24 for 2048 bits, OpenSSL stops at
//! 2657), striking out both `q ≡ 0` and `2q + 1 ≡ 0`. A survivor then costs one
//! modular exponentiation (`2^q mod p`, Euler's criterion), and the deeper
//! sieve leaves about four times fewer survivors than OpenSSL tests, which more
//! than makes up for a portable bignum library being slower than OpenSSL's
//! assembly. When `2^q ≡ 1 (mod p)`, q gets a Baillie-PSW test with extra
//! Miller-Rabin rounds; p is then prime by Pocklington's theorem (p − 1 = 2q
//! with q prime and greater than √p, `2^(p−1) ≡ 1` and `gcd(2² − 1, p) = 1`).

use base64::Engine;
use num_bigint_dig::BigUint;
use num_bigint_dig::prime::probably_prime;
use num_traits::{One, ToPrimitive};
use rand_core::RngCore;

use super::ffdhe;

/// The generator of every group here.
pub(crate) const GENERATOR: u32 = 2;
/// The smallest size generated (tests use 512; servers want 2048 or more).
pub(crate) const MIN_BITS: usize = 512;
/// The largest size generated (8192 bits already takes many minutes).
pub(crate) const MAX_BITS: usize = 8192;
/// The sizes of the RFC 7919 groups.
pub(crate) const FFDHE_SIZES: [usize; 5] = [2048, 3072, 4096, 6144, 8192];

/// Candidates per sieve window (a bitmap of 128 KiB, which stays in cache).
const WINDOW: usize = 1 << 20;
/// Miller-Rabin rounds for q on top of Baillie-PSW: far beyond need for
/// random candidates, and cheap, since only the one final q gets them all.
const MR_ROUNDS: usize = 16;

/// A DH group: prime modulus and generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhParams {
    pub p: BigUint,
    pub g: u32,
}

/// Why parameters could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DhError {
    #[error("DH parameter size {bits} is out of range ({MIN_BITS} to {MAX_BITS} bits)")]
    SizeOutOfRange { bits: usize },
    #[error("there is no RFC 7919 group of {bits} bits (there are 2048, 3072, 4096, 6144, 8192)")]
    NoFfdheGroup { bits: usize },
}

impl DhParams {
    /// The size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.p.bits()
    }

    /// DER: `DHParameter ::= SEQUENCE { prime INTEGER, base INTEGER }` (PKCS #3).
    pub fn to_der(&self) -> Vec<u8> {
        let mut body = der_integer(&self.p.to_bytes_be());
        body.extend(der_integer(&self.g.to_be_bytes()));
        let mut der = vec![0x30];
        der.extend(der_length(body.len()));
        der.extend(body);
        der
    }

    /// PEM with the `DH PARAMETERS` label, 64 characters a line.
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.to_der());
        let mut pem = String::from("-----BEGIN DH PARAMETERS-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END DH PARAMETERS-----\n");
        pem
    }
}

/// The RFC 7919 group `ffdhe<bits>`.
///
/// # Errors
/// [`DhError::NoFfdheGroup`] for a size without a group.
pub(crate) fn ffdhe(bits: usize) -> Result<DhParams, DhError> {
    let hex = match bits {
        2048 => ffdhe::FFDHE2048,
        3072 => ffdhe::FFDHE3072,
        4096 => ffdhe::FFDHE4096,
        6144 => ffdhe::FFDHE6144,
        8192 => ffdhe::FFDHE8192,
        _ => return Err(DhError::NoFfdheGroup { bits }),
    };
    let p = BigUint::parse_bytes(hex.as_bytes(), 16).ok_or(DhError::NoFfdheGroup { bits })?;
    Ok(DhParams { p, g: GENERATOR })
}

/// Generates a fresh safe prime of exactly `bits` bits with generator 2.
/// CPU-bound: seconds to a minute for 2048 bits; call it off the async runtime.
///
/// # Errors
/// [`DhError::SizeOutOfRange`] outside [`MIN_BITS`]..=[`MAX_BITS`].
pub fn generate(bits: usize) -> Result<DhParams, DhError> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(DhError::SizeOutOfRange { bits });
    }
    let primes = small_primes(sieve_bound(bits));
    let mut sieve = vec![0u64; WINDOW / 64];
    loop {
        let q0 = random_start(bits);
        let digits = q0.to_bytes_be();
        // For each prime r, the next k (in this window) with r | q and with r | p.
        let mut offsets: Vec<[u32; 2]> =
            primes.iter().map(|&r| start_offsets(&digits, r)).collect();
        for window in 0u64.. {
            sieve.fill(0);
            for (&r, offset) in primes.iter().zip(offsets.iter_mut()) {
                for o in offset.iter_mut() {
                    let mut k = *o as usize;
                    while k < WINDOW {
                        sieve[k >> 6] |= 1 << (k & 63);
                        k += r as usize;
                    }
                    // k < WINDOW + r < 2^32
                    *o = (k - WINDOW) as u32;
                }
            }
            let base = &q0 + BigUint::from(12 * window * WINDOW as u64);
            let mut overflowed = false;
            for (i, word) in sieve.iter().enumerate() {
                let mut free = !word;
                while free != 0 {
                    let k = i * 64 + free.trailing_zeros() as usize;
                    free &= free - 1;
                    let q = &base + BigUint::from(12 * k as u64);
                    let p: BigUint = (&q << 1usize) + 1u32;
                    if p.bits() != bits {
                        overflowed = true;
                        break;
                    }
                    if is_safe_prime(&q, &p) {
                        return Ok(DhParams { p, g: GENERATOR });
                    }
                }
                if overflowed {
                    break;
                }
            }
            if overflowed {
                break;
            }
        }
    }
}

/// `p = 2q + 1` is a safe prime, for q, p that survived the sieve.
fn is_safe_prime(q: &BigUint, p: &BigUint) -> bool {
    // Euler's criterion: p ≡ 7 (mod 8) makes 2 a square, so 2^q ≡ 1 for prime p.
    // Composite p almost never pass, so this one exponentiation rejects nearly
    // every survivor.
    if BigUint::from(GENERATOR).modpow(q, p) != BigUint::one() {
        return false;
    }
    probably_prime(q, MR_ROUNDS)
}

/// Sieve primes up to about `4·bits²`, at most 2^26 (the cost of the sieve's
/// setup grows with the bound; the saving in exponentiations only with its log).
fn sieve_bound(bits: usize) -> u32 {
    let bound = 4 * (bits as u64) * (bits as u64);
    bound.clamp(1 << 12, 1 << 26) as u32
}

/// The odd primes from 5 below `bound` (2 and 3 are handled by `q ≡ 11 mod 12`).
fn small_primes(bound: u32) -> Vec<u32> {
    // composite[i] is whether 2i + 1 is composite.
    let half = (bound / 2) as usize;
    let mut composite = vec![false; half];
    let mut i = 1;
    while (2 * i + 1) * (2 * i + 1) < bound as usize {
        if !composite[i] {
            let step = 2 * i + 1;
            let mut j = (step * step) / 2;
            while j < half {
                composite[j] = true;
                j += step;
            }
        }
        i += 1;
    }
    (2..half)
        .filter(|&i| !composite[i])
        .map(|i| (2 * i + 1) as u32)
        .collect()
}

/// A random q0 of `bits − 1` bits (top bit set, so p has `bits` bits) with
/// `q0 ≡ 11 (mod 12)`: then q and p = 2q + 1 are odd and not divisible by 3,
/// and p ≡ 23 (mod 24).
fn random_start(bits: usize) -> BigUint {
    let mut bytes = vec![0u8; (bits - 1).div_ceil(8)];
    rand_core::OsRng.fill_bytes(&mut bytes);
    // Keep bits − 1 bits and set the highest of them.
    let extra = bytes.len() * 8 - (bits - 1);
    bytes[0] &= 0xff >> extra;
    bytes[0] |= 0x80 >> extra;
    let q = BigUint::from_bytes_be(&bytes);
    let rem = (&q % 12u32).to_u32().unwrap_or(0);
    // Adding 11 − rem (mod 12) keeps the top bit; a carry past it is caught
    // by the bit-length check on every candidate.
    q + (11 + 12 - rem) % 12
}

/// The first k ≥ 0 with `r | q0 + 12k`, and the first with `r | 2(q0 + 12k) + 1`.
fn start_offsets(q0_be: &[u8], r: u32) -> [u32; 2] {
    let r = u64::from(r);
    let a = residue(q0_be, r);
    let inv12 = inverse_of_12(r);
    let k_q = (r - a) % r * inv12 % r;
    // 2q + 1 ≡ 0  ⇔  q ≡ (r − 1)/2
    let k_p = ((r - 1) / 2 + r - a) % r * inv12 % r;
    [k_q as u32, k_p as u32]
}

/// `x mod r` for a big-endian byte string, r < 2^32.
fn residue(be: &[u8], r: u64) -> u64 {
    let (head, tail) = be.split_at(be.len() % 4);
    let mut rem = head.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)) % r;
    for chunk in tail.chunks_exact(4) {
        let word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        rem = ((rem << 32) | u64::from(word)) % r;
    }
    rem
}

/// 12⁻¹ mod r for a prime r ≥ 5: x = (r·j + 1)/12 where r·j ≡ −1 (mod 12);
/// every unit mod 12 is its own inverse, so j = −r mod 12.
fn inverse_of_12(r: u64) -> u64 {
    let j = 12 - r % 12;
    (r * j + 1) / 12
}

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// A DER INTEGER holding the non-negative big-endian `value`.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|&b| b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    let mut out = vec![0x02];
    out.extend(der_length(content.len()));
    out.extend(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_primes_are_the_primes() {
        assert_eq!(
            small_primes(50),
            [5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
        );
        assert_eq!(small_primes(1 << 16).len(), 6542 - 2);
    }

    #[test]
    fn sieve_offsets_hit_the_right_multiples() {
        let q0 = random_start(512);
        let bytes = q0.to_bytes_be();
        for r in [5u32, 7, 101, 65521] {
            let [k_q, k_p] = start_offsets(&bytes, r);
            let q = &q0 + BigUint::from(12 * u64::from(k_q));
            assert_eq!((q % r).to_u32(), Some(0), "r = {r}");
            let q = &q0 + BigUint::from(12 * u64::from(k_p));
            let p: BigUint = (q << 1usize) + 1u32;
            assert_eq!((p % r).to_u32(), Some(0), "r = {r}");
            assert_eq!(inverse_of_12(u64::from(r)) * 12 % u64::from(r), 1);
        }
    }

    #[test]
    fn generated_modulus_is_a_safe_prime_of_the_size() {
        let params = generate(512).unwrap();
        assert_eq!(params.bits(), 512);
        assert_eq!((&params.p % 24u32).to_u32(), Some(23));
        let q: BigUint = &params.p >> 1usize;
        assert!(probably_prime(&params.p, 20) && probably_prime(&q, 20));
        assert_eq!(generate(100), Err(DhError::SizeOutOfRange { bits: 100 }));
    }

    /// RFC 7919 appendix A defines each group as
    /// p = 2^b − 2^(b−64) + (⌊2^(b−130)·e⌋ + X)·2^64 − 1; derive them again.
    #[test]
    fn ffdhe_groups_follow_the_rfc_formula() {
        let precision = 8400usize;
        // e = Σ 1/k!, in fixed point with `precision` fraction bits.
        let mut term = BigUint::one() << precision;
        let mut e = BigUint::default();
        let mut k = 0u32;
        while term != BigUint::default() {
            e += &term;
            k += 1;
            term /= k;
        }
        for (b, x) in [
            (2048usize, 560_316u32),
            (3072, 2_625_351),
            (4096, 5_736_041),
            (6144, 15_705_020),
            (8192, 10_965_728),
        ] {
            let floor = &e >> (precision - (b - 130));
            let one = BigUint::one();
            let p = (&one << b) - (&one << (b - 64)) + ((floor + x) << 64usize) - &one;
            assert_eq!(ffdhe(b).unwrap().p, p, "ffdhe{b}");
        }
        assert_eq!(ffdhe(1024), Err(DhError::NoFfdheGroup { bits: 1024 }));
    }

    #[test]
    fn der_encoding() {
        let params = DhParams {
            p: BigUint::from(0xC5u32),
            g: 2,
        };
        // The high bit of 0xC5 needs a leading zero byte.
        assert_eq!(params.to_der(), [0x30, 7, 2, 2, 0, 0xC5, 2, 1, 2]);
        assert_eq!(der_length(300), [0x82, 1, 44]);
        let pem = ffdhe(2048).unwrap().to_pem();
        assert!(pem.starts_with("-----BEGIN DH PARAMETERS-----\nMIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"));
        assert!(pem.ends_with("\n-----END DH PARAMETERS-----\n"));
    }
}
