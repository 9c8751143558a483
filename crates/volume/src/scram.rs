//! SCRAM verifiers (RFC 5802, RFC 7677): what is kept of a token so that a Kafka client can
//! prove it holds it with SCRAM-SHA-256 or SCRAM-SHA-512 without sending it. They are made
//! when the token is (its creation or rotation), since only then is the token known: a
//! verifier is a salted, iterated hash, never the token itself. Tokens made before
//! verifiers were kept have none, and SCRAM refuses them with a message saying to rotate.
//!
//! This module holds the keys and the proof check; the exchange's messages are the Kafka
//! door's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// PBKDF2 rounds: Kafka's minimum, and what its clients expect to be offered.
pub const ITERATIONS: u32 = 4096;

/// A SCRAM mechanism this server verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }
}

/// One mechanism's keys: `H(ClientKey)` and `ServerKey`, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    pub stored_key: String,
    pub server_key: String,
}

/// The verifiers of one token, stored with the user's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifiers {
    /// Base64 of the random salt both mechanisms share.
    pub salt: String,
    pub iterations: u32,
    pub sha256: Keys,
    pub sha512: Keys,
}

impl Verifiers {
    /// The verifiers of `token` under a fresh random salt.
    pub fn new(token: &str) -> Verifiers {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the OS random source works");
        Verifiers::with_salt(token, &salt, ITERATIONS)
    }

    fn with_salt(token: &str, salt: &[u8], iterations: u32) -> Verifiers {
        let keys = |m: Mechanism| {
            let (stored, server) = derive(m, token.as_bytes(), salt, iterations);
            Keys {
                stored_key: STANDARD.encode(stored),
                server_key: STANDARD.encode(server),
            }
        };
        Verifiers {
            salt: STANDARD.encode(salt),
            iterations,
            sha256: keys(Mechanism::Sha256),
            sha512: keys(Mechanism::Sha512),
        }
    }

    fn keys(&self, m: Mechanism) -> &Keys {
        match m {
            Mechanism::Sha256 => &self.sha256,
            Mechanism::Sha512 => &self.sha512,
        }
    }

    /// Checks a client's proof over `auth_message` (client-first-bare, server-first and
    /// client-final-without-proof, comma-joined); the server's signature when it holds.
    pub fn verify(&self, m: Mechanism, auth_message: &[u8], proof: &[u8]) -> Option<Vec<u8>> {
        let keys = self.keys(m);
        let stored = STANDARD.decode(&keys.stored_key).ok()?;
        let server = STANDARD.decode(&keys.server_key).ok()?;
        if proof.len() != m.len() || stored.len() != m.len() {
            return None;
        }
        let signature = hmac::sign(&hmac::Key::new(m.hmac(), &stored), auth_message);
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        let candidate = digest::digest(m.digest(), &client_key);
        if !bool::from(candidate.as_ref().ct_eq(&stored)) {
            return None;
        }
        let server_signature = hmac::sign(&hmac::Key::new(m.hmac(), &server), auth_message);
        Some(server_signature.as_ref().to_vec())
    }
}

/// `(StoredKey, ServerKey)` of a password under `salt`.
fn derive(m: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    let mut salted = vec![0u8; m.len()];
    let rounds = std::num::NonZeroU32::new(iterations).expect("iterations above zero");
    pbkdf2::derive(m.pbkdf2(), rounds, salt, password, &mut salted);
    let key = hmac::Key::new(m.hmac(), &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let server_key = hmac::sign(&key, b"Server Key");
    let stored = digest::digest(m.digest(), client_key.as_ref());
    (stored.as_ref().to_vec(), server_key.as_ref().to_vec())
}

/// What a client computes: the proof for `auth_message`, and the server signature it
/// expects. For tests, here and in the Kafka door.
#[doc(hidden)]
pub fn client_proof(
    m: Mechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
    auth_message: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut salted = vec![0u8; m.len()];
    let rounds = std::num::NonZeroU32::new(iterations).expect("iterations above zero");
    pbkdf2::derive(m.pbkdf2(), rounds, salt, password.as_bytes(), &mut salted);
    let key = hmac::Key::new(m.hmac(), &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored = digest::digest(m.digest(), client_key.as_ref());
    let signature = hmac::sign(&hmac::Key::new(m.hmac(), stored.as_ref()), auth_message);
    let proof = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac::sign(&key, b"Server Key");
    let server_signature = hmac::sign(&hmac::Key::new(m.hmac(), server_key.as_ref()), auth_message);
    (proof, server_signature.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user `user`, password `pencil`.
    #[test]
    fn rfc_7677_example_verifies() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = Verifiers::with_salt("pencil", &salt, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = STANDARD
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let server = v
            .verify(Mechanism::Sha256, auth.as_bytes(), &proof)
            .unwrap();
        assert_eq!(
            STANDARD.encode(server),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(
            v.verify(Mechanism::Sha256, auth.as_bytes(), &wrong)
                .is_none()
        );
        assert!(
            v.verify(Mechanism::Sha512, auth.as_bytes(), &proof)
                .is_none()
        );
    }

    #[test]
    fn both_mechanisms_verify_their_clients_and_keep_no_token() {
        let token = "trb_0123456789abcdef.secret-secret-secret";
        let v = Verifiers::new(token);
        let salt = STANDARD.decode(&v.salt).unwrap();
        for m in [Mechanism::Sha256, Mechanism::Sha512] {
            let (proof, expected) = client_proof(m, token, &salt, v.iterations, b"auth");
            assert_eq!(v.verify(m, b"auth", &proof), Some(expected));
            let (other, _) = client_proof(m, "trb_other", &salt, v.iterations, b"auth");
            assert_eq!(v.verify(m, b"auth", &other), None);
        }
        let stored = serde_json::to_string(&v).unwrap();
        assert!(!stored.contains("secret"), "{stored}");
        assert_ne!(Verifiers::new(token).salt, v.salt, "a fresh salt each time");
    }
}
