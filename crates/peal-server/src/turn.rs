//! ICE servers for clients, with TURN credentials in the TURN REST form
//! (draft-uberti-behave-turn-rest): username `expiry:uid`, password
//! `base64(HMAC-SHA1(secret, username))`. A coturn started with
//! `use-auth-secret` and the same `static-auth-secret` accepts them until
//! `expiry` (Unix seconds), so no TURN account ever has to be created and a
//! leaked credential dies on its own.

use base64::Engine;
use hmac::{Hmac, Mac};
use peal_proto::wire::{IceServer, IceServers};
use peal_proto::{Millis, UserId};
use sha1::Sha1;

/// Which ICE servers clients are told about.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// `stun:host:port` URLs, handed out as they are.
    pub stun_urls: Vec<String>,
    /// `turn:host:port?transport=udp` URLs; only used with `turn_secret`.
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server (`static-auth-secret`).
    pub turn_secret: Option<String>,
    /// How long a TURN credential is accepted.
    pub turn_ttl_secs: u64,
}

/// The TURN REST credential for `uid`, valid until `expiry_secs` (Unix seconds).
pub fn turn_credential(secret: &str, uid: &UserId, expiry_secs: u64) -> (String, String) {
    let username = format!("{expiry_secs}:{uid}");
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return (username, String::new()),
    };
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

impl IceConfig {
    /// The servers `uid` should gather with at `now`.
    pub fn for_user(&self, uid: &UserId, now: Millis) -> IceServers {
        let mut ice_servers = Vec::new();
        if !self.stun_urls.is_empty() {
            ice_servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        let mut expires_at = None;
        if let (Some(secret), false) = (&self.turn_secret, self.turn_urls.is_empty()) {
            let expiry = (now.0.max(0) as u64) / 1000 + self.turn_ttl_secs;
            let (username, credential) = turn_credential(secret, uid, expiry);
            ice_servers.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
            expires_at = Some(Millis((expiry * 1000) as i64));
        }
        IceServers {
            ice_servers,
            expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_rest_credential_matches_an_independent_hmac_sha1() {
        // Computed with: printf '1700000000:alice' | openssl dgst -sha1 -hmac s3cret -binary | base64
        let (user, pass) = turn_credential("s3cret", &UserId::from("alice"), 1_700_000_000);
        assert_eq!(user, "1700000000:alice");
        assert_eq!(pass, EXPECTED);
    }

    const EXPECTED: &str = include_str!("../tests/turn_vector.txt").trim_ascii_end();

    #[test]
    fn no_turn_without_a_secret_and_expiry_follows_the_clock() {
        let mut c = IceConfig {
            stun_urls: vec!["stun:127.0.0.1:3478".into()],
            turn_urls: vec!["turn:127.0.0.1:3478".into()],
            turn_secret: None,
            turn_ttl_secs: 600,
        };
        let alice = UserId::from("alice");
        let s = c.for_user(&alice, Millis(1_000_000));
        assert_eq!(s.ice_servers.len(), 1);
        assert_eq!(s.expires_at, None);
        c.turn_secret = Some("x".into());
        let s = c.for_user(&alice, Millis(1_000_000));
        assert_eq!(s.ice_servers[1].username.as_deref(), Some("1600:alice"));
        assert_eq!(s.expires_at, Some(Millis(1_600_000)));
    }
}
