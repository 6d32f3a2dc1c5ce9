//! Small cryptographic helpers: random tokens and codes, keyed hashes, argon2id.

use std::path::Path;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Security;

/// A random 256-bit token, URL-safe base64 encoded (for cookies and links).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random public id (96 bits), safe to show in URLs.
pub fn random_id() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A six-digit access code from the operating system's CSPRNG.
pub fn random_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// SHA-256 of a token; what the database keeps instead of the token itself.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The server's secret key (32 random bytes under `keys/`), used for keyed hashes.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Reads the key file, creating it (readable by the owner only) on first start.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        Ok(SecretKey(crate::infra::fsutil::load_or_create_key(path)?))
    }

    #[cfg(test)]
    pub fn for_tests() -> Self {
        SecretKey([7; 32])
    }

    /// HMAC-SHA256 over the parts, each prefixed with its length so they cannot run together.
    pub fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        // HMAC pads a key shorter than the hash's block to the block with zeros;
        // doing so here makes the construction infallible.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    pub fn mac_b64(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(parts))
    }
}

/// argon2id with the configured cost. Hashing is slow on purpose: call it from
/// `spawn_blocking`, never on the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random secret, verified against when an account does not exist so
    /// that a wrong email costs the same time as a wrong PIN.
    decoy: String,
}

impl PasswordHasher {
    pub fn new(cfg: &Security) -> anyhow::Result<Self> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let mut hasher = PasswordHasher {
            params,
            decoy: String::new(),
        };
        hasher.decoy = hasher.hash(&random_token())?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash(&self, secret: &str) -> anyhow::Result<String> {
        let hash = self
            .argon2()
            .hash_password(secret.as_bytes())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(hash.to_string())
    }

    /// True when `secret` matches `stored`; a missing or corrupt hash never matches.
    pub fn verify(&self, secret: &str, stored: Option<&str>) -> bool {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (self.decoy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let ok = self
            .argon2()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok();
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_match_hmac_keyed_with_the_32_byte_key() {
        let key = SecretKey::for_tests();
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).unwrap();
        reference.update(&3u64.to_be_bytes());
        reference.update(b"abc");
        assert_eq!(
            key.mac(&[b"abc"]),
            reference.finalize().into_bytes().to_vec()
        );
    }

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(&Security {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let h = cheap();
        let stored = h.hash("123456").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify("123456", Some(&stored)));
        assert!(!h.verify("654321", Some(&stored)));
        assert!(!h.verify("123456", None));
        assert!(!h.verify("123456", Some("not a hash")));
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = random_code();
            assert_eq!(c.len(), 6);
            assert!(c.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn mac_parts_do_not_run_together() {
        let k = SecretKey::for_tests();
        assert_ne!(k.mac(&[b"ab", b"c"]), k.mac(&[b"a", b"bc"]));
    }
}
