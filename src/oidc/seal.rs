//! Sealing of cookie values with XChaCha20-Poly1305 under a key ring: the first key seals,
//! every key opens, so keys rotate without logging anyone out.
//!
//! Each configured secret gives, with HKDF-SHA256, one key per purpose (`session`, `flow`), so a
//! flow cookie can never be opened as a session, and a 4-byte key id. The associated data binds
//! the purpose, the provider's name and the cookie's name: a value moved to another cookie or
//! another provider does not open. A sealed value is `v1.` and the base64url of
//! `key id ‖ nonce (24 random bytes) ‖ ciphertext ‖ tag`: cookie-safe and versioned.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;

use crate::oidc::random::Random;

const VERSION: &str = "v1.";
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Sealed values longer than this are not even decoded (cookies are capped far below it).
pub const MAX_SEALED_LEN: usize = 64 * 1024;
/// Configured secrets must have at least this many bytes.
pub const MIN_SECRET_LEN: usize = 32;
const SALT: &[u8] = b"envoy-jwt-authz/oidc/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Session,
    Flow,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"session",
            Purpose::Flow => b"flow",
        }
    }
}

struct RingKey {
    id: [u8; KEY_ID_LEN],
    session: XChaCha20Poly1305,
    flow: XChaCha20Poly1305,
}

impl RingKey {
    fn derive(secret: &[u8]) -> Option<Self> {
        let hk = Hkdf::<Sha256>::new(Some(SALT), secret);
        let mut id = [0u8; KEY_ID_LEN];
        let mut session = [0u8; 32];
        let mut flow = [0u8; 32];
        hk.expand(b"key id", &mut id).ok()?;
        hk.expand(b"purpose session", &mut session).ok()?;
        hk.expand(b"purpose flow", &mut flow).ok()?;
        Some(Self {
            id,
            session: XChaCha20Poly1305::new(&session.into()),
            flow: XChaCha20Poly1305::new(&flow.into()),
        })
    }

    fn cipher(&self, purpose: Purpose) -> &XChaCha20Poly1305 {
        match purpose {
            Purpose::Session => &self.session,
            Purpose::Flow => &self.flow,
        }
    }
}

/// The keys derived from `session.keys`, in order; never shows them in `Debug`.
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({} keys)", self.keys.len())
    }
}

/// Length-prefixed parts, so that no two (provider, cookie) pairs give the same bytes.
fn associated_data(purpose: Purpose, provider: &str, cookie: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SALT.len() + 24 + provider.len() + cookie.len());
    for part in [
        SALT,
        purpose.label(),
        provider.as_bytes(),
        cookie.as_bytes(),
    ] {
        aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

impl KeyRing {
    /// A ring from the configured secrets, first one sealing. None when there is none or one is
    /// shorter than [`MIN_SECRET_LEN`] (the configuration checks this first, with a path).
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Option<Self> {
        if secrets.is_empty() || secrets.iter().any(|s| s.as_ref().len() < MIN_SECRET_LEN) {
            return None;
        }
        let keys = secrets
            .iter()
            .map(|s| RingKey::derive(s.as_ref()))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { keys })
    }

    /// Seals `plaintext` for the cookie `cookie` of provider `provider` with the first key.
    /// None only when the random source fails.
    pub fn seal(
        &self,
        purpose: Purpose,
        provider: &str,
        cookie: &str,
        plaintext: &[u8],
        rng: &mut dyn Random,
    ) -> Option<String> {
        let key = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        if !rng.fill(&mut nonce) {
            return None;
        }
        let aad = associated_data(purpose, provider, cookie);
        let sealed = key
            .cipher(purpose)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .ok()?;
        let mut raw = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + sealed.len());
        raw.extend_from_slice(&key.id);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        Some(format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Opens a sealed value with whichever key of the ring sealed it. None for anything that
    /// is not an intact value sealed here for this purpose, provider and cookie.
    pub fn open(
        &self,
        purpose: Purpose,
        provider: &str,
        cookie: &str,
        value: &str,
    ) -> Option<Vec<u8>> {
        if value.len() > MAX_SEALED_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(value.strip_prefix(VERSION)?).ok()?;
        if raw.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (id, rest) = raw.split_at(KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let aad = associated_data(purpose, provider, cookie);
        // Ids are 4 derived bytes: two keys may share one, so every match gets its try.
        self.keys.iter().filter(|k| k.id == id).find_map(|k| {
            k.cipher(purpose)
                .decrypt(
                    &nonce,
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .ok()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::oidc::random::testing::{Broken, Counter};
    use crate::oidc::random::HostRandom;

    const OLD: &str = "an old secret of at least thirty-two bytes";
    const NEW: &str = "the new secret, also at least thirty-two bytes";

    fn ring(secrets: &[&str]) -> KeyRing {
        KeyRing::new(secrets).unwrap()
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let r = ring(&[NEW]);
        let [a, b] = [(); 2].map(|_| {
            r.seal(
                Purpose::Session,
                "web",
                "__Host-web",
                b"hello",
                &mut HostRandom,
            )
            .unwrap()
        });
        assert_ne!(a, b);
        for v in [&a, &b] {
            assert!(v.starts_with("v1."));
            assert!(v[3..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(
                r.open(Purpose::Session, "web", "__Host-web", v).unwrap(),
                b"hello"
            );
        }
    }

    #[test]
    fn rotation_opens_old_cookies_and_seals_with_the_first_key() {
        let before = ring(&[OLD]);
        let after = ring(&[NEW, OLD]);
        let old_cookie = before
            .seal(Purpose::Session, "web", "c", b"s", &mut HostRandom)
            .unwrap();
        assert_eq!(
            after
                .open(Purpose::Session, "web", "c", &old_cookie)
                .unwrap(),
            b"s"
        );
        let new_cookie = after
            .seal(Purpose::Session, "web", "c", b"s", &mut HostRandom)
            .unwrap();
        assert_eq!(before.open(Purpose::Session, "web", "c", &new_cookie), None);
        assert_eq!(
            ring(&[NEW])
                .open(Purpose::Session, "web", "c", &new_cookie)
                .unwrap(),
            b"s"
        );
        // Once the old key is dropped, its cookies no longer open.
        assert_eq!(
            ring(&[NEW]).open(Purpose::Session, "web", "c", &old_cookie),
            None
        );
    }

    #[test]
    fn bound_to_purpose_provider_and_cookie() {
        let r = ring(&[NEW]);
        let v = r
            .seal(Purpose::Session, "web", "c", b"x", &mut HostRandom)
            .unwrap();
        assert_eq!(r.open(Purpose::Flow, "web", "c", &v), None);
        assert_eq!(r.open(Purpose::Session, "web2", "c", &v), None);
        assert_eq!(r.open(Purpose::Session, "web", "c.0-2", &v), None);
        // Length prefixes: moving a byte between provider and cookie changes the data.
        let v = r
            .seal(Purpose::Flow, "ab", "c", b"x", &mut HostRandom)
            .unwrap();
        assert_eq!(r.open(Purpose::Flow, "a", "bc", &v), None);
        assert!(r.open(Purpose::Flow, "ab", "c", &v).is_some());
    }

    #[test]
    fn tampered_truncated_and_foreign_values_do_not_open() {
        let r = ring(&[NEW]);
        let v = r
            .seal(Purpose::Session, "web", "c", b"payload", &mut HostRandom)
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&v[3..]).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            let forged = format!("v1.{}", URL_SAFE_NO_PAD.encode(&t));
            assert_eq!(
                r.open(Purpose::Session, "web", "c", &forged),
                None,
                "byte {i}"
            );
        }
        for cut in 0..v.len() {
            assert_eq!(
                r.open(Purpose::Session, "web", "c", &v[..cut]),
                None,
                "cut {cut}"
            );
        }
        let other = ring(&[OLD])
            .seal(Purpose::Session, "web", "c", b"p", &mut HostRandom)
            .unwrap();
        assert_eq!(r.open(Purpose::Session, "web", "c", &other), None);
        for junk in [
            "",
            "v1.",
            "v2.AAAA",
            "v1.!!!!",
            "v1.AAAA=",
            &"v1.A".repeat(30_000),
        ] {
            assert_eq!(r.open(Purpose::Session, "web", "c", junk), None);
        }
        // Same bytes under another version tag.
        assert_eq!(
            r.open(Purpose::Session, "web", "c", &format!("v2.{}", &v[3..])),
            None
        );
    }

    #[test]
    fn refuses_short_or_missing_secrets_and_a_dead_random_source() {
        assert!(KeyRing::new::<&str>(&[]).is_none());
        assert!(KeyRing::new(&["short"]).is_none());
        assert!(KeyRing::new(&[NEW, "x".repeat(31).as_str()]).is_none());
        let r = ring(&[NEW]);
        assert_eq!(r.seal(Purpose::Flow, "w", "c", b"x", &mut Broken), None);
        // The nonce comes from the source given.
        let v = r
            .seal(Purpose::Flow, "w", "c", b"x", &mut Counter(0))
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&v[3..]).unwrap();
        assert_eq!(&raw[4..28], &(1..=24).collect::<Vec<u8>>()[..]);
        assert_eq!(format!("{r:?}"), "KeyRing(1 keys)");
    }
}
