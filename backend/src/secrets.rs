//! Random tokens, their hashes, and password hashing.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new secret token (256 random bits, URL-safe).
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a token: its SHA-256. Tokens are random, so a fast hash is enough.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short reference for an error report.
pub fn reference() -> String {
    let mut bytes = [0u8; 5];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn argon2() -> Argon2<'static> {
    // OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Argon2 runs at most this many at once (each takes 19 MiB and a core for tens of milliseconds),
/// so a burst of logins queues instead of exhausting memory.
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Hashes a password with argon2id on a blocking thread (it takes tens of milliseconds on purpose).
pub async fn hash_password(password: String) -> Result<String, String> {
    let _slot = argon2_slots().acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Checks a password against a stored hash. With no hash (unknown account, pending invite) it still
/// spends the same time on a dummy hash, so the answer's timing does not tell which accounts exist.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    let Ok(_slot) = argon2_slots().acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        let dummy = dummy_hash();
        let (hash, real) = match stored.as_deref() {
            Some(hash) => (hash, true),
            None => (dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else { return false };
        argon2().verify_password(password.as_bytes(), &parsed).is_ok() && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"balas-dummy-salt").expect("salt");
        argon2().hash_password(b"not a password", &salt).expect("hash").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        assert!(!verify_password("not a password".into(), None).await, "no account never verifies");
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
