//! What a connection knows of its client: who it is, and where its SASL exchange stands.
//! Shared by the connection loop (`conn`) and the handlers (`apis`), so neither imports
//! the other for it.

use tributary_volume::{Caller, Credential};

use crate::scram;

pub(crate) struct Session {
    /// Who the requests act as: anonymous until authenticated when the listener allows
    /// it, the user a verified client certificate names, else nobody.
    pub caller: Option<Caller>,
    /// How the caller proved who it is, for long-running calls to check again.
    pub credential: Option<Credential>,
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
}
