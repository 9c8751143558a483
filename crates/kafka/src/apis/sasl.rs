//! SASL, as Kafka clients speak it: SaslHandshake picks a mechanism, then SaslAuthenticate
//! carries its messages. Every mechanism proves a Tributary token: PLAIN sends it as the
//! password (the user name must be the token's user), SCRAM-SHA-256 and SCRAM-SHA-512
//! prove it against the verifiers made with it (`crate::scram`), OAUTHBEARER carries it as
//! the bearer token. A failed authentication is answered with SASL_AUTHENTICATION_FAILED,
//! then the connection closes, as Kafka does. After the handshake's version 0 (which old
//! librdkafka, kcat on Debian among them, insists is advertised) the tokens travel bare,
//! each in a size-prefixed frame, and a failure closes the connection unanswered.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tributary_volume::Credential;

use crate::frame::{self, Request};
use crate::session::Session;
use crate::{Door, Result, scram};

/// The mechanisms offered, in the order a client is told them.
pub(crate) const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// A failed exchange: the code and the message the client is shown.
pub(crate) type Failure = (ResponseError, String);

fn failed(why: &str) -> Failure {
    (
        ResponseError::SaslAuthenticationFailed,
        format!("Authentication failed: {why}"),
    )
}

pub(super) fn handshake(session: &mut Session, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: SaslHandshakeRequest = super::decode(&mut req)?;
    let mechanism = request.mechanism.as_str();
    let code = if session.authenticated {
        ResponseError::IllegalSaslState.code()
    } else if let Some(m) = MECHANISMS.iter().find(|m| **m == mechanism) {
        session.mechanism = Some(m);
        // Version 0: the exchange's tokens follow bare, outside Kafka's messages.
        session.raw_sasl = version == 0;
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
    let outcome = step(door, session, &request.auth_bytes);
    let mut body = SaslAuthenticateResponse::default();
    match outcome {
        Ok(reply) => body = body.with_auth_bytes(Bytes::from(reply)),
        Err((code, message)) => {
            // Answered, then closed.
            session.close = true;
            session.scram = None;
            body = body
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)));
        }
    }
    let hv = ApiKey::SaslAuthenticate.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

/// A bare token of the legacy exchange (after SaslHandshake v0): the framed answer, or
/// `None` and a closed connection when authentication failed.
pub(super) fn raw_token(door: &Door, session: &mut Session, token: &[u8]) -> Option<Bytes> {
    match step(door, session, token) {
        Ok(reply) => {
            if session.authenticated {
                session.raw_sasl = false;
            }
            Some(frame::raw(&reply))
        }
        Err((_, message)) => {
            tracing::debug!(%message, "kafka: legacy SASL exchange failed; closing");
            session.close = true;
            None
        }
    }
}

/// One SaslAuthenticate round of the chosen mechanism: the bytes to answer with.
pub(crate) fn step(
    door: &Door,
    session: &mut Session,
    message: &[u8],
) -> std::result::Result<Vec<u8>, Failure> {
    let out_of_turn = || {
        (
            ResponseError::IllegalSaslState,
            "SaslAuthenticate must follow a successful SaslHandshake, once".to_string(),
        )
    };
    if session.authenticated {
        return Err(out_of_turn());
    }
    let mechanism = session.mechanism.ok_or_else(out_of_turn)?;
    let mut scram_salt = None;
    let (caller, credential, reply) = match mechanism {
        "PLAIN" => {
            let (caller, token) = plain(door, message)?;
            (caller, Credential::Token(token), Vec::new())
        }
        "OAUTHBEARER" => {
            let token = oauth_bearer(message)?;
            let caller = door
                .ns
                .authenticate(&token)
                .map_err(|_| failed("invalid or revoked token"))?;
            (caller, Credential::Token(token), Vec::new())
        }
        name => {
            let m = scram::mechanism(name).ok_or_else(out_of_turn)?;
            match session.scram.take() {
                None => {
                    let (exchange, reply) =
                        scram::first(&door.ns, m, message).map_err(|why| failed(&why))?;
                    session.scram = Some(exchange);
                    return Ok(reply);
                }
                Some(exchange) => {
                    scram_salt = Some(exchange.salt().to_owned());
                    let (caller, reply) = exchange.last(message).map_err(|why| failed(&why))?;
                    let name = caller.name().to_owned();
                    (caller, Credential::User(name), reply)
                }
            }
        }
    };
    session.caller = Some(caller);
    session.credential = Some(credential);
    session.scram_salt = scram_salt;
    session.authenticated = true;
    Ok(reply)
}

/// OAUTHBEARER's initial response (RFC 7628): a GS2 header, then `key=value` pairs each
/// ended by 0x01, one of them `auth=Bearer TOKEN`; the token is a Tributary token.
fn oauth_bearer(message: &[u8]) -> std::result::Result<String, Failure> {
    let text = std::str::from_utf8(message).map_err(|_| failed("the message is not UTF-8"))?;
    let mut parts = text.split('\x01');
    let gs2 = parts.next().unwrap_or_default();
    if !(gs2.starts_with("n,") || gs2.starts_with("y,")) {
        return Err(failed(
            "an OAUTHBEARER message starts with a GS2 header (n,,)",
        ));
    }
    parts
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(|a| {
            let (scheme, token) = a.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| failed("the message carries no `auth=Bearer TOKEN`"))
}

/// PLAIN's message, `authzid NUL authcid NUL password` (RFC 4616): the password is a token,
/// the authentication id its user's name, the authorization id empty or the same name.
fn plain(
    door: &Door,
    message: &[u8],
) -> std::result::Result<(tributary_volume::Caller, String), Failure> {
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
