//! SASL, as Kafka clients speak it: SaslHandshake picks a mechanism, then SaslAuthenticate
//! carries its messages. PLAIN's password is a Tributary token, and the user name must be
//! the token's user. A failed authentication is answered with SASL_AUTHENTICATION_FAILED,
//! then the connection closes, as Kafka does. Only the handshake's version 1 is served: the
//! legacy version 0 sends SASL's bytes outside Kafka's framing.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tributary_volume::Credential;

use crate::conn::Session;
use crate::frame::{self, Request};
use crate::{Door, Result};

/// The mechanisms offered, in the order a client is told them.
pub(crate) const MECHANISMS: &[&str] = &["PLAIN"];

pub(super) fn handshake(session: &mut Session, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: SaslHandshakeRequest = super::decode(&mut req)?;
    let mechanism = request.mechanism.as_str();
    let code = if session.authenticated {
        ResponseError::IllegalSaslState.code()
    } else if let Some(m) = MECHANISMS.iter().find(|m| **m == mechanism) {
        session.mechanism = Some(m);
        0
    } else {
        ResponseError::UnsupportedSaslMechanism.code()
    };
    let body = SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(
            MECHANISMS
                .iter()
                .map(|m| StrBytes::from_static_str(m))
                .collect(),
        );
    let hv = ApiKey::SaslHandshake.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) fn authenticate(door: &Door, session: &mut Session, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: SaslAuthenticateRequest = super::decode(&mut req)?;
    let outcome = match (session.mechanism, session.authenticated) {
        (Some("PLAIN"), false) => plain(door, &request.auth_bytes).map(|(caller, token)| {
            session.caller = Some(caller);
            session.credential = Some(Credential::Token(token));
            session.authenticated = true;
        }),
        _ => Err((
            ResponseError::IllegalSaslState,
            "SaslAuthenticate must follow a successful SaslHandshake, once".to_string(),
        )),
    };
    let mut body = SaslAuthenticateResponse::default();
    if let Err((code, message)) = outcome {
        // Answered, then closed.
        session.close = true;
        body = body
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let hv = ApiKey::SaslAuthenticate.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

/// PLAIN's message, `authzid NUL authcid NUL password` (RFC 4616): the password is a token,
/// the authentication id its user's name, the authorization id empty or the same name.
fn plain(
    door: &Door,
    message: &[u8],
) -> std::result::Result<(tributary_volume::Caller, String), (ResponseError, String)> {
    let failed = |why: &str| {
        (
            ResponseError::SaslAuthenticationFailed,
            format!("Authentication failed: {why}"),
        )
    };
    let parts: Vec<&[u8]> = message.split(|b| *b == 0).collect();
    let [authzid, authcid, password] = parts[..] else {
        return Err(failed("a PLAIN message is authzid NUL user NUL token"));
    };
    let (Ok(user), Ok(token), Ok(authzid)) = (
        std::str::from_utf8(authcid),
        std::str::from_utf8(password),
        std::str::from_utf8(authzid),
    ) else {
        return Err(failed("the user name and token must be UTF-8"));
    };
    if !authzid.is_empty() && authzid != user {
        return Err(failed(
            "the authorization id must be empty or the user name",
        ));
    }
    match door.ns.authenticate(token) {
        Ok(caller) if caller.name() == user => Ok((caller, token.to_owned())),
        _ => Err(failed("invalid user name or token")),
    }
}
