//! Access held by a long-running call (a replication pull, a group member's session, a
//! long-poll fetch): the caller's credential and permission on one stream, checked again
//! whenever the catalog changed and at least every [`RECHECK_INTERVAL`], so deleting the
//! user, rotating its token or editing the ACL ends the call (design §4).
//!
//! Why no record appended after a revocation reaches the call: the revoking call updates
//! the caches that authentication and ACL checks read, THEN bumps the catalog version
//! ([`Namespace::catalog_changed`]), THEN returns. A call reads records, THEN loads the
//! catalog version and, if it moved since its last check, checks again (reading the
//! caches), and only then hands the records out. A record appended after the revocation
//! returned was appended after the bump; a read that holds it ran after that append, so
//! the version loaded after the read is the bumped one, and the check that follows reads
//! the updated caches and refuses. If instead the version had not moved, the revocation had
//! not returned when the read ran, so no record in it was appended after the revocation.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tributary_core::names::StreamPath;

use super::Namespace;
use crate::auth::Credential;
use crate::model::{Perm, StreamRow};
use crate::{Error, Result};

/// The longest a long-running call goes without checking its access again. What a check
/// reads (users, tokens, stream and volume rows) changes only with the catalog, which wakes
/// the check at once; this floor bounds any change that does not.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(5);

/// A caller's permission on a stream, as a long-running call holds it.
#[derive(Debug, Clone)]
pub struct Access {
    credential: Credential,
    perm: Perm,
    stream: Arc<StreamRow>,
    catalog: watch::Receiver<u64>,
    /// The catalog version of the last check.
    seen: u64,
    checked_at: Instant,
}

impl Namespace {
    /// Checks that `credential` authenticates a caller with `perm` on `s`, and holds that
    /// access to check again, the same way, as the call runs.
    pub(super) fn hold_access(
        &self,
        credential: &Credential,
        s: &StreamRow,
        perm: Perm,
    ) -> Result<Access> {
        // The version before the check: a change during it wakes the next check.
        let catalog = self.catalog.subscribe();
        let seen = *catalog.borrow();
        let stream = self.reauthorize(credential, s, perm)?;
        Ok(Access {
            credential: credential.clone(),
            perm,
            stream,
            catalog,
            seen,
            checked_at: Instant::now(),
        })
    }

    /// `s` as the catalog has it now, if `credential` still authenticates and its user
    /// still has `perm` on it: NOT_FOUND once the stream was deleted (even if created
    /// again), UNAUTHENTICATED once the user is deleted or the token rotated,
    /// PERMISSION_DENIED once the permission is gone. The one check of every long-running
    /// call, at its start and as it runs.
    pub(super) fn reauthorize(
        &self,
        credential: &Credential,
        s: &StreamRow,
        perm: Perm,
    ) -> Result<Arc<StreamRow>> {
        let path = StreamPath::parse("stream", &s.path)?;
        let now = self.stream(&path)?;
        if now.id != s.id {
            return Err(Error::NotFound {
                what: "stream",
                path: format!("{path} (deleted and created again)"),
            });
        }
        let c = self.reauthenticate(credential)?;
        self.check(&c, &now, perm)?;
        Ok(now)
    }

    /// Tells long-running calls (and live groups) that the catalog changed. A change whose
    /// caches are updated after its commit calls this again once they are, so a check woken
    /// by it sees the change.
    pub(super) fn catalog_changed(&self) {
        self.catalog.send_modify(|v| *v += 1);
    }
}

impl Access {
    /// Checks the access again if the catalog changed since the last check or the interval
    /// passed; call it after reading records and before handing them out (see the module
    /// doc).
    pub fn recheck(&mut self, ns: &Namespace) -> Result<()> {
        let version = *self.catalog.borrow_and_update();
        if version == self.seen && self.checked_at.elapsed() < RECHECK_INTERVAL {
            return Ok(());
        }
        self.stream = ns.reauthorize(&self.credential, &self.stream, self.perm)?;
        self.seen = version;
        self.checked_at = Instant::now();
        Ok(())
    }

    /// Resolves when a check is due: the catalog changed or the interval passed. Borrows
    /// nothing, so a session can wait on it beside its other work.
    pub fn due(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut catalog = self.catalog.clone();
        let seen = self.seen;
        let at = self.checked_at + RECHECK_INTERVAL;
        async move {
            if *catalog.borrow_and_update() != seen {
                return;
            }
            tokio::select! {
                changed = catalog.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await; // the namespace is gone
                    }
                }
                _ = tokio::time::sleep_until(at) => {}
            }
        }
    }
}
