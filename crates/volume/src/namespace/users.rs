//! Users and tokens: the first cluster admin, authentication of every request, and user
//! administration (cluster admins only, but anyone may rotate their own token).

use std::sync::Arc;

use tributary_core::limits::check_count;
use tributary_core::names::StreamPath;
use tributary_storage::CatalogTx;

use super::{Namespace, UserInfo};
use crate::auth::{self, ADMIN, Caller, Credential, UserRow};
use crate::limits::MAX_GROUPS_PER_USER;
use crate::model::user_key;
use crate::{Error, Result};

fn info(u: &UserRow) -> UserInfo {
    UserInfo {
        name: u.name.clone(),
        groups: u.groups.clone(),
        cluster_admin: u.cluster_admin,
        created_ms: u.created_ms,
        kafka_default_stream: u.kafka_default_stream.clone(),
    }
}

impl Namespace {
    /// At the first start of a store, creates the cluster admin `admin` and returns its
    /// token; afterwards returns `None`.
    pub async fn ensure_admin(&self) -> Result<Option<String>> {
        self.first_admin(None).await
    }

    /// [`Namespace::ensure_admin`] with a given token (checked by [`auth::given_token`])
    /// instead of a new one.
    pub async fn ensure_admin_with(&self, given: auth::NewToken) -> Result<Option<String>> {
        let made = self.first_admin(Some(given)).await?;
        if made.is_none() {
            tracing::info!("the cluster has users already; the given admin token is ignored");
        }
        Ok(made)
    }

    async fn first_admin(&self, given: Option<auth::NewToken>) -> Result<Option<String>> {
        let _admin = self.admin.lock().await;
        if !self.users.read().is_empty() {
            return Ok(None);
        }
        let t = given.unwrap_or_else(auth::new_token);
        let token = self.insert_user(ADMIN, Vec::new(), true, t).await?;
        tracing::info!(user = ADMIN, "created the first cluster admin");
        Ok(Some(token))
    }

    /// The caller a bearer token stands for.
    pub fn authenticate(&self, token: &str) -> Result<Caller> {
        let (id, secret) = auth::split_token(token)?;
        let name = self.tokens.read().get(id).cloned();
        let user = name.and_then(|n| self.users.read().get(&n).cloned());
        match user {
            Some(u) if u.token_id == id && auth::secret_matches(secret, &u.token_hash) => {
                Ok(u.caller())
            }
            _ => Err(Error::Unauthenticated("unknown or revoked token".into())),
        }
    }

    /// The caller for a user proven by other means (a verified client certificate's CN).
    pub fn authenticate_user(&self, name: &str) -> Result<Caller> {
        match self.users.read().get(name) {
            Some(u) => Ok(u.caller()),
            None => Err(Error::Unauthenticated(format!(
                "certificate subject `{name}` is not a known user"
            ))),
        }
    }

    /// Authenticates again with the credential a long-running call started with, so a
    /// deleted user, a rotated token or changed groups end it.
    pub fn reauthenticate(&self, credential: &Credential) -> Result<Caller> {
        match credential {
            Credential::Token(t) => self.authenticate(t),
            Credential::User(name) => self.authenticate_user(name),
            Credential::Anonymous => Ok(Caller::anonymous()),
        }
    }

    pub fn whoami(&self, c: &Caller) -> UserInfo {
        match self.users.read().get(c.name()) {
            Some(u) => info(u),
            None => UserInfo {
                name: c.name().into(),
                groups: c.principal.groups.clone(),
                cluster_admin: c.cluster_admin,
                created_ms: 0,
                kafka_default_stream: None,
            },
        }
    }

    /// Creates a user and returns it with its token (shown only here).
    pub async fn create_user(
        &self,
        c: &Caller,
        name: &str,
        groups: Vec<String>,
        cluster_admin: bool,
    ) -> Result<(UserInfo, String)> {
        self.check_cluster_admin(c, "users")?;
        auth::check_name("name", "user name", name)?;
        if name == auth::ANONYMOUS {
            return Err(Error::invalid("name", format!("`{name}` is reserved")));
        }
        check_count("groups", "groups", groups.len(), MAX_GROUPS_PER_USER)?;
        for g in &groups {
            auth::check_name("groups", "group name", g)?;
        }
        let _admin = self.admin.lock().await;
        if self.users.read().contains_key(name) {
            return Err(Error::AlreadyExists {
                what: "user",
                path: name.into(),
            });
        }
        let token = self
            .insert_user(name, groups, cluster_admin, auth::new_token())
            .await?;
        let u = self.users.read().get(name).cloned().expect("just inserted");
        Ok((info(&u), token))
    }

    pub fn list_users(&self, c: &Caller) -> Result<Vec<UserInfo>> {
        self.check_cluster_admin(c, "users")?;
        let mut v: Vec<_> = self.users.read().values().map(|u| info(u)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub async fn delete_user(&self, c: &Caller, name: &str) -> Result<()> {
        self.check_cluster_admin(c, "users")?;
        let _admin = self.admin.lock().await;
        let u = self.user(name)?;
        let admins = self
            .users
            .read()
            .values()
            .filter(|u| u.cluster_admin)
            .count();
        if u.cluster_admin && admins == 1 {
            return Err(Error::FailedPrecondition(format!(
                "{name} is the last cluster admin; make another first"
            )));
        }
        let mut tx = CatalogTx::default();
        tx.delete(&user_key(name));
        self.commit(tx).await?;
        self.users.write().remove(name);
        self.tokens.write().remove(&u.token_id);
        self.catalog_changed(); // now that the caches have it: ends the user's sessions
        Ok(())
    }

    /// Replaces a user's token (the caller's own when `name` is empty); the old one stops
    /// working at once.
    pub async fn rotate_token(&self, c: &Caller, name: &str) -> Result<String> {
        let name = if name.is_empty() { c.name() } else { name };
        if name != c.name() {
            self.check_cluster_admin(c, &format!("user {name}"))?;
        }
        let _admin = self.admin.lock().await;
        let old = self.user(name)?;
        let t = auth::new_token();
        let row = UserRow {
            token_id: t.id.clone(),
            token_hash: t.hash,
            scram: Some(t.scram),
            ..(*old).clone()
        };
        self.put_row(&user_key(name), &row).await?;
        self.tokens.write().remove(&old.token_id);
        self.tokens.write().insert(t.id, name.to_owned());
        self.users.write().insert(name.to_owned(), Arc::new(row));
        self.catalog_changed(); // now that the caches have it: ends the old token's sessions
        Ok(t.token)
    }

    /// Sets a user's Kafka default stream (cluster admins): a stream path, or `""` to
    /// clear it; `None` leaves it. The stream need not exist yet, as the listener's need
    /// not.
    pub async fn edit_user(
        &self,
        c: &Caller,
        name: &str,
        kafka_default_stream: Option<&str>,
    ) -> Result<UserInfo> {
        self.check_cluster_admin(c, &format!("user {name}"))?;
        let stream = match kafka_default_stream {
            None => None,
            Some("") => Some(None),
            Some(p) => Some(Some(
                StreamPath::parse("kafka_default_stream", p)?.to_string(),
            )),
        };
        let _admin = self.admin.lock().await;
        let old = self.user(name)?;
        let Some(stream) = stream else {
            return Ok(info(&old));
        };
        let row = UserRow {
            kafka_default_stream: stream,
            ..(*old).clone()
        };
        self.put_row(&user_key(name), &row).await?;
        let u = info(&row);
        self.users.write().insert(name.to_owned(), Arc::new(row));
        Ok(u)
    }

    /// The stream where the Kafka door resolves `c`'s flat names, if the user has one
    /// (design §9); anonymous callers have none.
    pub fn kafka_default_stream(&self, c: &Caller) -> Option<StreamPath> {
        if c.name() == auth::ANONYMOUS {
            return None;
        }
        let users = self.users.read();
        let path = users.get(c.name())?.kafka_default_stream.as_deref()?;
        StreamPath::parse("kafka_default_stream", path).ok()
    }

    /// The caller `name` stands for and its token's SCRAM verifiers, for a SCRAM exchange
    /// (which proves the token without sending it). `None` when the token was made before
    /// verifiers were kept.
    pub fn scram_verifiers(&self, name: &str) -> Result<(Caller, Option<crate::scram::Verifiers>)> {
        let u = self
            .user(name)
            .map_err(|_| Error::Unauthenticated("unknown user".into()))?;
        Ok((u.caller(), u.scram.clone()))
    }

    fn user(&self, name: &str) -> Result<Arc<UserRow>> {
        let user = self.users.read().get(name).cloned();
        user.ok_or_else(|| Error::NotFound {
            what: "user",
            path: name.into(),
        })
    }

    /// Stores a new user; the caller holds the admin lock.
    async fn insert_user(
        &self,
        name: &str,
        groups: Vec<String>,
        cluster_admin: bool,
        t: auth::NewToken,
    ) -> Result<String> {
        let row = UserRow {
            name: name.to_owned(),
            groups,
            cluster_admin,
            created_ms: self.clock.now_ms(),
            token_id: t.id.clone(),
            token_hash: t.hash,
            scram: Some(t.scram),
            kafka_default_stream: None,
        };
        self.put_row(&user_key(name), &row).await?;
        self.tokens.write().insert(t.id, name.to_owned());
        self.users.write().insert(name.to_owned(), Arc::new(row));
        Ok(t.token)
    }
}
