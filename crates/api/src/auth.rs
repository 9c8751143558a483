//! Authentication of every request: the bearer token (or, when the server allows it, no
//! credentials at all) becomes a `Caller` in the request extensions. Deciding what the
//! caller may do is the namespace's job, not this one's.

use std::sync::Arc;

use tonic::{Request, Status};
use tributary_volume::{Caller, Namespace};

use crate::ApiError;

#[derive(Debug, Clone)]
pub struct Authenticator {
    ns: Arc<Namespace>,
    allow_anonymous: bool,
}

impl Authenticator {
    pub fn new(ns: Arc<Namespace>, allow_anonymous: bool) -> Self {
        Self {
            ns,
            allow_anonymous,
        }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let caller = match req.metadata().get("authorization") {
            Some(v) => {
                let v = v
                    .to_str()
                    .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
                let token = v.strip_prefix("Bearer ").ok_or_else(|| {
                    Status::unauthenticated("authorization must be `Bearer TOKEN`")
                })?;
                self.ns.authenticate(token.trim()).map_err(ApiError::from)?
            }
            None if self.allow_anonymous => Caller::anonymous(),
            None => {
                return Err(Status::unauthenticated(
                    "no credentials: send `authorization: Bearer TOKEN`",
                ));
            }
        };
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// The caller the interceptor authenticated.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("request was not authenticated"))
}
