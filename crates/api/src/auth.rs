//! Authentication of every request: a bearer token, else a client certificate verified by
//! mutual TLS (its subject CN names the user), else (when the server allows it) no
//! credentials at all, becomes a `Caller` in the request extensions. Deciding what the
//! caller may do is the namespace's job, not this one's; the caller's request-rate quota
//! is checked here, once it is known.

use std::sync::Arc;

use tonic::{Request, Status};
use tributary_volume::{Caller, Credential, Namespace};

use crate::{ApiError, Quotas};

#[derive(Debug, Clone)]
pub struct Authenticator {
    ns: Arc<Namespace>,
    quotas: Arc<Quotas>,
    allow_anonymous: bool,
}

impl Authenticator {
    pub fn new(ns: Arc<Namespace>, quotas: Arc<Quotas>, allow_anonymous: bool) -> Self {
        Self {
            ns,
            quotas,
            allow_anonymous,
        }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        crate::limits::check_metadata(req.metadata())?;
        let caller = match bearer_token(req.metadata())? {
            Some(token) => self.ns.authenticate(token).map_err(ApiError::from)?,
            None => match req.peer_certs().as_deref().and_then(|certs| certs.first()) {
                Some(cert) => self
                    .ns
                    .authenticate_user(&common_name(cert)?)
                    .map_err(ApiError::from)?,
                None if self.allow_anonymous => Caller::anonymous(),
                None => {
                    return Err(Status::unauthenticated(
                        "no credentials: send `authorization: Bearer TOKEN`",
                    ));
                }
            },
        };
        (self.quotas)
            .admit_request(caller.name())
            .map_err(|r| ApiError::throttled(caller.name(), r))?;
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// How the interceptor authenticated `r` (it already refused anything else): what a
/// long-running call (a pull, a group member's session, a long-poll fetch) checks again.
pub(crate) fn credential<T>(r: &Request<T>) -> Credential {
    let token = bearer_token(r.metadata()).ok().flatten();
    match (token, r.extensions().get::<Caller>()) {
        (Some(t), _) => Credential::Token(t.to_owned()),
        (None, Some(c)) if c.name() != Caller::anonymous().name() => {
            Credential::User(c.name().to_owned())
        }
        _ => Credential::Anonymous,
    }
}

/// The bearer token of a request's `authorization` header, if it has one.
pub(crate) fn bearer_token(md: &tonic::metadata::MetadataMap) -> Result<Option<&str>, Status> {
    let Some(v) = md.get("authorization") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    let token = v
        .strip_prefix("Bearer ")
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer TOKEN`"))?;
    Ok(Some(token.trim()))
}

/// The subject CN of a client certificate (already verified by the TLS handshake).
fn common_name(der: &[u8]) -> Result<String, Status> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Status::unauthenticated(format!("unreadable client certificate: {e}")))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    cn.map(str::to_owned)
        .ok_or_else(|| Status::unauthenticated("client certificate has no subject CN"))
}

/// The caller the interceptor authenticated.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("request was not authenticated"))
}
