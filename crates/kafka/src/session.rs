//! What a connection knows of its client: who it is, how it proved it, and where its SASL
//! exchange stands. Shared by the connection loop (`conn`) and the handlers (`apis`), so
//! neither imports the other for it.
//!
//! A Kafka connection authenticates once, where gRPC sends its token with every call; so
//! before each request the session's proof is checked again against the users the
//! namespace holds in memory (the lookup gRPC makes per call): a token revoked or rotated
//! away, or a user deleted, ends the connection ([`Session::recheck`]).

use tributary_volume::{Caller, Credential, Namespace};

use crate::scram;
use crate::{Error, Result};

pub(crate) struct Session {
    /// Who the requests act as: anonymous until authenticated when the listener allows
    /// it, the user a verified client certificate names, else nobody.
    pub caller: Option<Caller>,
    /// How the caller proved who it is, for long-running calls to check again.
    pub credential: Option<Credential>,
    /// The salt of the SCRAM verifiers a SCRAM exchange proved (its credential names the
    /// user only): a rotated token has new verifiers, with a new salt.
    pub scram_salt: Option<String>,
    /// The mechanism SaslHandshake chose.
    pub mechanism: Option<&'static str>,
    /// A SCRAM exchange between its first and its final message.
    pub scram: Option<scram::Exchange>,
    pub authenticated: bool,
    /// SaslHandshake v0 succeeded: the next frames are bare SASL tokens until the
    /// exchange ends.
    pub raw_sasl: bool,
    /// Close once the response being written is out (a failed authentication).
    pub close: bool,
    /// The peer's address as Kafka shows it (`/127.0.0.1`), for DescribeGroups.
    pub client_host: String,
}

impl Session {
    pub(crate) fn new(allow_anonymous: bool) -> Session {
        Session {
            caller: allow_anonymous.then(Caller::anonymous),
            credential: allow_anonymous.then_some(Credential::Anonymous),
            scram_salt: None,
            mechanism: None,
            scram: None,
            authenticated: false,
            raw_sasl: false,
            close: false,
            client_host: String::new(),
        }
    }

    /// A connection whose TLS client certificate names a user acts as that user until
    /// SASL (if any) says otherwise.
    pub(crate) fn with_certificate(caller: Caller) -> Session {
        let name = caller.name().to_owned();
        Session {
            caller: Some(caller),
            credential: Some(Credential::User(name)),
            ..Session::new(false)
        }
    }

    /// Checks the session's proof again, and takes the caller it stands for now (its
    /// groups may have changed); a proof that no longer holds is
    /// [`Error::SessionExpired`].
    pub(crate) fn recheck(&mut self, ns: &Namespace) -> Result<()> {
        let Some(credential) = &self.credential else {
            return Ok(());
        };
        let expired = |e: tributary_volume::Error| Error::SessionExpired(e.to_string());
        let caller = ns.reauthenticate(credential).map_err(expired)?;
        if let Some(salt) = &self.scram_salt {
            let (_, verifiers) = ns.scram_verifiers(caller.name()).map_err(expired)?;
            if verifiers.is_none_or(|v| v.salt != *salt) {
                return Err(Error::SessionExpired(
                    "the token SCRAM proved was rotated away".into(),
                ));
            }
        }
        self.caller = Some(caller);
        Ok(())
    }
}
