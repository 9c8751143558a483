//! SCRAM's messages (RFC 5802) as a server reads and writes them, in the two SaslAuthenticate
//! rounds Kafka gives them: client-first → server-first, client-final → server-final. The
//! password is a Tributary token; its verifiers (salted keys made when the token was) and
//! the proof check are the namespace's (`tributary_volume::scram`). No channel binding:
//! a client that asks for it (`p=`) is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tributary_volume::scram::{Mechanism, Verifiers};
use tributary_volume::{Caller, Namespace};

/// Bytes of server nonce added to the client's.
const NONCE_BYTES: usize = 18;

/// A SCRAM exchange after the server's first message.
pub(crate) struct Exchange {
    mechanism: Mechanism,
    caller: Caller,
    verifiers: Verifiers,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    client_nonce: String,
    nonce: String,
}

/// Why an exchange failed, as SASL_AUTHENTICATION_FAILED's message says it.
pub(crate) type Refusal = String;

pub(crate) fn mechanism(name: &str) -> Option<Mechanism> {
    [Mechanism::Sha256, Mechanism::Sha512]
        .into_iter()
        .find(|m| m.name() == name)
}

/// Reads client-first (`gs2-header client-first-bare`) and answers server-first.
pub(crate) fn first(
    ns: &Namespace,
    mechanism: Mechanism,
    message: &[u8],
) -> Result<(Exchange, Vec<u8>), Refusal> {
    let text = std::str::from_utf8(message).map_err(|_| "the message is not UTF-8".to_string())?;
    // gs2-header: a channel-binding flag, an optional authzid, then the bare message.
    let (flag, rest) = text
        .split_once(',')
        .ok_or_else(|| "the first message has no GS2 header".to_string())?;
    if flag.starts_with("p=") {
        return Err("channel binding is not supported".into());
    }
    if flag != "n" && flag != "y" {
        return Err(format!("`{flag}` is not a GS2 channel-binding flag"));
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| "the first message has no GS2 header".to_string())?;
    let gs2_header = format!("{flag},{authzid},");
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .map(unescape)
        .ok_or_else(|| "the first message names no user (n=)".to_string())??;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "the first message has no nonce (r=)".to_string())?;
    if let Some(a) = authzid.strip_prefix("a=")
        && unescape(a)? != user
    {
        return Err("the authorization id must be the user name".into());
    }
    let (caller, verifiers) = ns
        .scram_verifiers(&user)
        .map_err(|_| "invalid user name or token".to_string())?;
    let verifiers = verifiers.ok_or_else(|| {
        format!(
            "user {user}'s token was made before SCRAM verifiers were kept; rotate it \
             (`tributary user token rotate`) to use {}, or use PLAIN",
            mechanism.name()
        )
    })?;
    let mut random = [0u8; NONCE_BYTES];
    getrandom::fill(&mut random).expect("the OS random source works");
    // Letters and digits only: every client reads them back unchanged.
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let nonce = format!("{client_nonce}{suffix}");
    let server_first = format!("r={nonce},s={},i={}", verifiers.salt, verifiers.iterations);
    let reply = server_first.clone().into_bytes();
    Ok((
        Exchange {
            mechanism,
            caller,
            verifiers,
            gs2_header,
            client_first_bare: bare.to_owned(),
            server_first,
            client_nonce: client_nonce.to_owned(),
            nonce,
        },
        reply,
    ))
}

impl Exchange {
    /// The salt of the verifiers this exchange proves against, which identifies the token.
    pub(crate) fn salt(&self) -> &str {
        &self.verifiers.salt
    }

    /// Reads client-final (`c=…,r=…,p=…`); on a valid proof, the caller and server-final.
    pub(crate) fn last(self, message: &[u8]) -> Result<(Caller, Vec<u8>), Refusal> {
        let text =
            std::str::from_utf8(message).map_err(|_| "the message is not UTF-8".to_string())?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| "the final message has no proof (p=)".to_string())?;
        let mut attrs = without_proof.split(',');
        let binding = attrs.next().and_then(|a| a.strip_prefix("c="));
        if binding != Some(STANDARD.encode(&self.gs2_header).as_str()) {
            return Err("the channel binding does not match the first message".into());
        }
        // librdkafka 2.0.2 (kcat on Debian) sends its own nonce again in front of the
        // combined one; the proof covers the message as sent either way.
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r="));
        let echoed = nonce.is_some_and(|n| {
            n == self.nonce || n.strip_prefix(self.client_nonce.as_str()) == Some(&self.nonce)
        });
        if !echoed {
            return Err("the nonce does not match".into());
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| "the proof is not base64".to_string())?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = self
            .verifiers
            .verify(self.mechanism, auth_message.as_bytes(), &proof)
            .ok_or_else(|| "invalid user name or token".to_string())?;
        Ok((
            self.caller,
            format!("v={}", STANDARD.encode(signature)).into_bytes(),
        ))
    }
}

/// A `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn unescape(name: &str) -> Result<String, Refusal> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        match code {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return Err("a user name has a bad `=` escape".into()),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unescape() {
        assert_eq!(unescape("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert_eq!(unescape("alice").unwrap(), "alice");
        assert!(unescape("a=").is_err());
        assert!(unescape("a=41").is_err());
    }
}
