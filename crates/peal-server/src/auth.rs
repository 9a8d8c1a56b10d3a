//! Password hashing (Argon2id; checks run in [`crate::passwords`]), bearer
//! tokens (random, stored as SHA-256) and the request extractor that turns a
//! token into a user and device.

use crate::error::ApiError;
use crate::store::TokenOwner;
use crate::AppState;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password into a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })
}

/// A new bearer token: 32 random bytes, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex(&b)
}

/// A random id with `bytes` bytes of entropy, hex.
pub fn random_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    OsRng.fill_bytes(&mut b);
    hex(&b)
}

pub fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// What is stored for a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Tokens seen recently, so a request costs no database round trip for its
/// token. Entries live [`TOKEN_CACHE_MS`]; logout removes its entry at once.
/// (A token revoked by another server node stays usable here for at most that long.)
#[derive(Default)]
pub struct TokenCache {
    map: std::sync::Mutex<std::collections::HashMap<Vec<u8>, (TokenOwner, peal_proto::Millis)>>,
}

pub const TOKEN_CACHE_MS: i64 = 60_000;
/// How long a bearer token is accepted after sign-in (90 days).
pub const TOKEN_TTL_MS: i64 = 90 * 24 * 3_600_000;
const TOKEN_CACHE_MAX: usize = 100_000;

impl TokenCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<Vec<u8>, (TokenOwner, peal_proto::Millis)>,
    > {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, hash: &[u8], now: peal_proto::Millis) -> Option<TokenOwner> {
        self.lock()
            .get(hash)
            .filter(|(_, at)| now.since(*at) < TOKEN_CACHE_MS)
            .map(|(o, _)| o.clone())
    }

    pub fn put(&self, hash: Vec<u8>, owner: TokenOwner, now: peal_proto::Millis) {
        let mut map = self.lock();
        if map.len() >= TOKEN_CACHE_MAX {
            map.retain(|_, (_, at)| now.since(*at) < TOKEN_CACHE_MS);
            if map.len() >= TOKEN_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(hash, (owner, now));
    }

    pub fn forget(&self, hash: &[u8]) {
        self.lock().remove(hash);
    }
}

/// The bearer of a valid token; also enforces the per-device request rate.
#[derive(Clone, Debug)]
pub struct Auth {
    pub owner: TokenOwner,
    pub token_hash: Vec<u8>,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?;
        let hash = token_hash(token);
        let now = state.clock.now();
        let owner = match state.tokens.get(&hash, now) {
            Some(o) => o,
            None => {
                let o = state
                    .store
                    .token_owner(hash.clone())
                    .await?
                    .ok_or_else(ApiError::unauthorized)?;
                state.tokens.put(hash.clone(), o.clone(), now);
                o
            }
        };
        // A token lives a fixed time from sign-in; then the device signs in again.
        if now.since(owner.issued_at) >= state.token_ttl_ms {
            state.tokens.forget(&hash);
            return Err(ApiError::unauthorized());
        }
        if !state
            .limits
            .allow_request(&owner.device_id, state.clock.now())
        {
            return Err(ApiError::rate_limited(
                "too many requests from this device; slow down",
                1,
            ));
        }
        Ok(Auth {
            owner,
            token_hash: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
