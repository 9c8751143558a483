//! Who is calling: users, their groups, and bearer tokens.
//!
//! A token reads `trb_<id>.<secret>`: the id finds the user's row, and the SHA-256 of the
//! secret is compared in constant time with the stored hash. Secrets are never stored;
//! a token is shown once, when it is made. Users are few and all cached, so authentication
//! is an in-memory lookup cheap enough to run on every request.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tributary_core::acl::Principal;

use crate::{Error, Result};

/// The authenticated caller of a namespace operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// Cluster admins create volumes and users, and pass every permission check.
    pub cluster_admin: bool,
}

/// How a caller proved who it is, kept by long-running calls to check again.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Token(String),
    /// A verified client certificate's subject.
    User(String),
    Anonymous,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Token(..)"), // never print a secret
            Credential::User(u) => write!(f, "User({u})"),
            Credential::Anonymous => f.write_str("Anonymous"),
        }
    }
}

impl Caller {
    /// The caller of requests without credentials, when the server allows them.
    pub fn anonymous() -> Caller {
        Caller {
            principal: Principal {
                name: ANONYMOUS.into(),
                groups: Vec::new(),
            },
            cluster_admin: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.principal.name
    }
}

pub const ANONYMOUS: &str = "anonymous";
/// The cluster admin made at first start.
pub const ADMIN: &str = "admin";
const TOKEN_PREFIX: &str = "trb_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub name: String,
    pub groups: Vec<String>,
    pub cluster_admin: bool,
    pub created_ms: i64,
    /// Public half of the current token.
    pub token_id: String,
    /// Hex SHA-256 of the token's secret half.
    pub token_hash: String,
    /// The token's SCRAM verifiers; `None` for tokens made before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scram: Option<crate::scram::Verifiers>,
    /// Where the Kafka door resolves the user's flat names (design §9); absent in rows
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_default_stream: Option<String>,
}

impl UserRow {
    pub fn caller(&self) -> Caller {
        Caller {
            principal: Principal {
                name: self.name.clone(),
                groups: self.groups.clone(),
            },
            cluster_admin: self.cluster_admin,
        }
    }
}

/// A fresh token and what is stored of it.
pub struct NewToken {
    pub token: String,
    pub id: String,
    pub hash: String,
    pub scram: crate::scram::Verifiers,
}

pub fn new_token() -> NewToken {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).expect("the OS random source works");
    getrandom::fill(&mut secret).expect("the OS random source works");
    let id = hex(&id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let token = format!("{TOKEN_PREFIX}{id}.{secret}");
    NewToken {
        scram: crate::scram::Verifiers::new(&token),
        token,
        hash: hex(&Sha256::digest(secret.as_bytes())),
        id,
    }
}

/// The least secret a given token (`admin_token_file`) may carry: 32 base64url characters,
/// 192 bits (a made token's has 43, 256 bits).
const MIN_GIVEN_SECRET: usize = 32;

/// A token chosen by the operator (e.g. the first admin's, from a file), checked to be as
/// hard to guess as a made one, and what is stored of it.
pub fn given_token(token: &str) -> Result<NewToken> {
    let bad = |why: &str| Error::InvalidArgument {
        field: "admin token".into(),
        message: format!(
            "{why}; a token reads trb_<16 lowercase hex digits>.<secret of at least \
             {MIN_GIVEN_SECRET} base64url characters>, as `tributary user create` prints"
        ),
    };
    let (id, secret) = token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|t| t.split_once('.'))
        .ok_or_else(|| bad("not of the form trb_<id>.<secret>"))?;
    if id.len() != 16 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad("the id is not 16 lowercase hex digits"));
    }
    if secret.len() < MIN_GIVEN_SECRET {
        return Err(bad("the secret is too short"));
    }
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad("the secret has characters outside base64url"));
    }
    Ok(NewToken {
        scram: crate::scram::Verifiers::new(token),
        token: token.to_owned(),
        hash: hex(&Sha256::digest(secret.as_bytes())),
        id: id.to_owned(),
    })
}

/// Splits a token into (id, secret), or says why it is not one.
pub fn split_token(token: &str) -> Result<(&str, &str)> {
    token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|t| t.split_once('.'))
        .filter(|(id, secret)| id.len() == 16 && !secret.is_empty())
        .ok_or_else(|| Error::Unauthenticated("malformed token".into()))
}

/// True when `secret` hashes to `stored_hash`, compared in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let h = hex(&Sha256::digest(secret.as_bytes()));
    h.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// User and group names: `[A-Za-z0-9._@-]{1,255}`.
pub fn check_name(field: &str, what: &str, name: &str) -> Result<()> {
    let ok = (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if !ok {
        return Err(Error::invalid(
            field,
            format!("{what} `{name}` must be 1 to 255 of A-Z a-z 0-9 . _ @ -"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_token_is_checked_and_stored_like_a_made_one() {
        let made = new_token();
        let given = given_token(&made.token).unwrap();
        assert_eq!((given.id, given.hash), (made.id, made.hash));
        let secret = "a".repeat(MIN_GIVEN_SECRET);
        for bad in [
            "",
            "trb_0123456789abcdef",
            &format!("trb_0123456789ABCDEF.{secret}"),
            &format!("trb_0123456789abcde.{secret}"),
            "trb_0123456789abcdef.short",
            &format!("trb_0123456789abcdef.{secret}!"),
            &format!("Bearer trb_0123456789abcdef.{secret}"),
        ] {
            let e = given_token(bad).err().unwrap().to_string();
            assert!(e.contains("trb_<16 lowercase hex digits>"), "{bad}: {e}");
        }
    }

    #[test]
    fn tokens_verify_only_with_their_secret() {
        let t = new_token();
        let (id, secret) = split_token(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert!(secret_matches(secret, &t.hash));
        assert!(!secret_matches("wrong", &t.hash));
        assert!(!t.hash.contains(secret), "the secret is not stored");
        let other = new_token();
        assert_ne!(other.token, t.token);
        assert!(!secret_matches(
            split_token(&other.token).unwrap().1,
            &t.hash
        ));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "trb_",
            "abc",
            "trb_short.x",
            "trb_0123456789abcdef.",
            "Bearer trb_0123456789abcdef.x",
        ] {
            assert!(
                matches!(split_token(bad), Err(Error::Unauthenticated(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_checked() {
        check_name("name", "user", "alice@example.com").unwrap();
        assert!(check_name("name", "user", "").is_err());
        assert!(
            check_name("name", "user", "a b")
                .unwrap_err()
                .to_string()
                .starts_with("name: user `a b`")
        );
    }
}
