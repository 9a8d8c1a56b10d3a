//! Storage behind a narrow trait: accounts, devices, tokens, groups, calls and history.
//!
//! [`SqliteStore`] is the only implementation today (one file, WAL mode, zero
//! set-up). A Postgres store implements the same trait; nothing above it changes.

use crate::invites::{Invite, Refusal};
use futures_util::future::BoxFuture;
use peal_proto::fsm::CallState;
use peal_proto::wire::{GroupInfo, Party};
use peal_proto::{DeviceId, GroupId, Millis, SessionId, UserId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The thing being created exists already.
    #[error("{0} already exists")]
    Exists(String),
    /// A reference to something that does not exist.
    #[error("{0} does not exist")]
    Missing(String),
    #[error("stored call {0} cannot be read: {1}")]
    Corrupt(String, String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A group's name and members.
pub type GroupRow = (String, Vec<Party>);

/// Who a bearer token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOwner {
    pub user: Party,
    pub device_id: DeviceId,
    /// When the token was issued (sign-in); it expires a fixed time after.
    pub issued_at: Millis,
}

/// One of a user's devices, as [`Store::devices`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub name: String,
    pub created_at: Millis,
    /// Its newest valid sign-in, if any.
    pub signed_in_at: Option<Millis>,
}

/// Everything the server keeps. Every method is one round trip; writes that
/// must be atomic are one method.
pub trait Store: Send + Sync + 'static {
    fn add_user(
        &self,
        uid: UserId,
        name: String,
        password_hash: String,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<()>>;
    /// `(name, password_hash)`.
    fn user_auth(&self, uid: UserId) -> BoxFuture<'_, StoreResult<Option<(String, String)>>>;
    fn user(&self, uid: UserId) -> BoxFuture<'_, StoreResult<Option<Party>>>;
    fn users(&self) -> BoxFuture<'_, StoreResult<Vec<Party>>>;
    fn add_group(
        &self,
        guid: GroupId,
        name: String,
        members: Vec<UserId>,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<()>>;
    /// `(name, members)`.
    fn group(&self, guid: GroupId) -> BoxFuture<'_, StoreResult<Option<GroupRow>>>;
    fn groups_of(&self, uid: UserId) -> BoxFuture<'_, StoreResult<Vec<GroupInfo>>>;
    /// The device of `uid` named `name`, created with id `new_id` if it is new.
    fn device(
        &self,
        uid: UserId,
        name: String,
        new_id: DeviceId,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<DeviceId>>;
    fn add_token(
        &self,
        token_hash: Vec<u8>,
        device: DeviceId,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<()>>;
    fn token_owner(&self, token_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<Option<TokenOwner>>>;
    /// `uid`'s devices, newest sign-in first (at most `limit`); a sign-in
    /// counts when its token was issued at or after `valid_since`.
    fn devices(
        &self,
        uid: UserId,
        valid_since: Millis,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<DeviceRow>>>;
    /// Deletes every token of `uid`'s device `device`, atomically; their
    /// hashes. `Missing` when `uid` has no such device.
    fn sign_out_device(
        &self,
        uid: UserId,
        device: DeviceId,
    ) -> BoxFuture<'_, StoreResult<Vec<Vec<u8>>>>;
    fn delete_token(&self, token_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<()>>;
    /// Writes the call and every participant's history row, atomically.
    fn save_call(&self, call: CallState) -> BoxFuture<'_, StoreResult<()>>;
    fn call(&self, id: SessionId) -> BoxFuture<'_, StoreResult<Option<CallState>>>;
    /// Every call still `initiated` or `ongoing`.
    fn live_calls(&self) -> BoxFuture<'_, StoreResult<Vec<CallState>>>;
    /// `uid`'s calls, newest first.
    fn history(&self, uid: UserId, limit: u32) -> BoxFuture<'_, StoreResult<Vec<CallState>>>;
    fn add_invite(&self, invite: Invite, code_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<()>>;
    /// Every invite, newest first.
    fn invites(&self) -> BoxFuture<'_, StoreResult<Vec<Invite>>>;
    fn invite_by_code(&self, code_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<Option<Invite>>>;
    /// Revokes the invite `id` (again is fine). `Missing` if there is none.
    fn revoke_invite(&self, id: String, now: Millis) -> BoxFuture<'_, StoreResult<()>>;
    /// Makes the account with the invite whose code hashes to `code_hash`,
    /// atomically: the invite's check (see [`Invite::check`]), its count and
    /// the new user are one transaction, so two people racing for its last
    /// use get one account between them. `Exists` when the id is taken.
    fn redeem_invite(
        &self,
        code_hash: Vec<u8>,
        account: NewAccount,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<Result<(), Refusal>>>;
}

/// An account to create, its password already hashed.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub uid: UserId,
    pub name: String,
    pub password_hash: String,
}

fn migrator() -> Migrator {
    let m = |version: i64, description: &'static str, sql: &'static str| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )
    };
    Migrator {
        migrations: Cow::Owned(vec![
            m(1, "init", include_str!("../migrations/0001_init.sql")),
            m(
                2,
                "participants trigger",
                include_str!("../migrations/0002_participants_trigger.sql"),
            ),
            m(3, "invites", include_str!("../migrations/0003_invites.sql")),
        ]),
        ..Migrator::DEFAULT
    }
}

/// SQLite in `<dir>/peal.db`.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Users looked up before (ids and names never change once created), so
    /// placing a call costs no lookup round trip. Only hits are kept.
    users: Arc<std::sync::Mutex<HashMap<UserId, Party>>>,
}

/// Most users [`SqliteStore`] remembers before starting over.
const USER_CACHE_MAX: usize = 100_000;

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir` and runs the migrations.
    pub async fn open(dir: &Path) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("peal.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        migrator().run(&pool).await?;
        Ok(SqliteStore {
            pool,
            users: Arc::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn decode_call(id: &str, json: &str) -> StoreResult<CallState> {
    let call: CallState = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(id.to_owned(), e.to_string()))?;
    // The state machine relies on the caller being participants[0].
    match call.participants.first() {
        Some(p) if p.role == peal_proto::wire::Role::Caller => Ok(call),
        Some(_) | None => Err(StoreError::Corrupt(id.to_owned(), "no caller".into())),
    }
}

fn invite_row(r: &sqlx::sqlite::SqliteRow) -> Invite {
    Invite {
        id: r.get(0),
        created_at: Millis(r.get(1)),
        expires_at: Millis(r.get(2)),
        uses: u32::try_from(r.get::<i64, _>(3)).unwrap_or(0),
        used: u32::try_from(r.get::<i64, _>(4)).unwrap_or(u32::MAX),
        revoked_at: r.get::<Option<i64>, _>(5).map(Millis),
    }
}

const INVITE_COLUMNS: &str = "id, created_at, expires_at, uses, used, revoked_at";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Store for SqliteStore {
    fn add_user(
        &self,
        uid: UserId,
        name: String,
        password_hash: String,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO users (uid, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(uid.as_str())
            .bind(&name)
            .bind(&password_hash)
            .bind(now.0)
            .execute(&self.pool)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Exists(format!("user {uid}"))),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn user_auth(&self, uid: UserId) -> BoxFuture<'_, StoreResult<Option<(String, String)>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT name, password_hash FROM users WHERE uid = ?")
                .bind(uid.as_str())
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn user(&self, uid: UserId) -> BoxFuture<'_, StoreResult<Option<Party>>> {
        Box::pin(async move {
            let cached = self
                .users
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&uid)
                .cloned();
            if let Some(p) = cached {
                return Ok(Some(p));
            }
            let row = sqlx::query("SELECT name FROM users WHERE uid = ?")
                .bind(uid.as_str())
                .fetch_optional(&self.pool)
                .await?;
            let found = row.map(|r| Party {
                uid: uid.clone(),
                name: r.get(0),
            });
            if let Some(p) = &found {
                let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
                if users.len() >= USER_CACHE_MAX {
                    users.clear();
                }
                users.insert(uid, p.clone());
            }
            Ok(found)
        })
    }

    fn users(&self) -> BoxFuture<'_, StoreResult<Vec<Party>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT uid, name FROM users ORDER BY name, uid")
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .iter()
                .map(|r| Party {
                    uid: UserId(r.get(0)),
                    name: r.get(1),
                })
                .collect())
        })
    }

    fn add_group(
        &self,
        guid: GroupId,
        name: String,
        members: Vec<UserId>,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query("INSERT INTO groups (guid, name, created_at) VALUES (?, ?, ?)")
                .bind(guid.as_str())
                .bind(&name)
                .bind(now.0)
                .execute(&mut *tx)
                .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Exists(format!("group {guid}")))
                }
                Err(e) => return Err(e.into()),
            }
            for uid in members {
                let exists = sqlx::query("SELECT 1 FROM users WHERE uid = ?")
                    .bind(uid.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::Missing(format!("user {uid}")));
                }
                sqlx::query("INSERT OR IGNORE INTO group_members (guid, uid) VALUES (?, ?)")
                    .bind(guid.as_str())
                    .bind(uid.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn group(&self, guid: GroupId) -> BoxFuture<'_, StoreResult<Option<GroupRow>>> {
        Box::pin(async move {
            let Some(row) = sqlx::query("SELECT name FROM groups WHERE guid = ?")
                .bind(guid.as_str())
                .fetch_optional(&self.pool)
                .await?
            else {
                return Ok(None);
            };
            let members = sqlx::query(
                "SELECT u.uid, u.name FROM group_members m JOIN users u ON u.uid = m.uid WHERE m.guid = ? ORDER BY u.uid",
            )
            .bind(guid.as_str())
            .fetch_all(&self.pool)
            .await?;
            Ok(Some((
                row.get(0),
                members
                    .iter()
                    .map(|r| Party {
                        uid: UserId(r.get(0)),
                        name: r.get(1),
                    })
                    .collect(),
            )))
        })
    }

    fn groups_of(&self, uid: UserId) -> BoxFuture<'_, StoreResult<Vec<GroupInfo>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT g.guid FROM groups g JOIN group_members m ON m.guid = g.guid WHERE m.uid = ? ORDER BY g.name",
            )
            .bind(uid.as_str())
            .fetch_all(&self.pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let guid = GroupId(r.get(0));
                if let Some((name, members)) = self.group(guid.clone()).await? {
                    out.push(GroupInfo {
                        guid,
                        name,
                        members,
                    });
                }
            }
            Ok(out)
        })
    }

    fn device(
        &self,
        uid: UserId,
        name: String,
        new_id: DeviceId,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<DeviceId>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT OR IGNORE INTO devices (id, uid, name, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(new_id.as_str())
            .bind(uid.as_str())
            .bind(&name)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
            let row = sqlx::query("SELECT id FROM devices WHERE uid = ? AND name = ?")
                .bind(uid.as_str())
                .bind(&name)
                .fetch_one(&self.pool)
                .await?;
            Ok(DeviceId(row.get(0)))
        })
    }

    fn add_token(
        &self,
        token_hash: Vec<u8>,
        device: DeviceId,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO tokens (token_hash, device_id, created_at) VALUES (?, ?, ?)")
                .bind(token_hash)
                .bind(device.as_str())
                .bind(now.0)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn token_owner(&self, token_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<Option<TokenOwner>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT u.uid, u.name, d.id, t.created_at FROM tokens t \
                 JOIN devices d ON d.id = t.device_id \
                 JOIN users u ON u.uid = d.uid WHERE t.token_hash = ?",
            )
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|r| TokenOwner {
                user: Party {
                    uid: UserId(r.get(0)),
                    name: r.get(1),
                },
                device_id: DeviceId(r.get(2)),
                issued_at: Millis(r.get(3)),
            }))
        })
    }

    fn devices(
        &self,
        uid: UserId,
        valid_since: Millis,
        limit: u32,
    ) -> BoxFuture<'_, StoreResult<Vec<DeviceRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT d.id, d.name, d.created_at, MAX(t.created_at) AS signed_in_at \
                 FROM devices d LEFT JOIN tokens t ON t.device_id = d.id AND t.created_at >= ? \
                 WHERE d.uid = ? GROUP BY d.id \
                 ORDER BY signed_in_at IS NULL, signed_in_at DESC, d.created_at DESC LIMIT ?",
            )
            .bind(valid_since.0)
            .bind(uid.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| DeviceRow {
                    id: DeviceId(r.get(0)),
                    name: r.get(1),
                    created_at: Millis(r.get(2)),
                    signed_in_at: r.get::<Option<i64>, _>(3).map(Millis),
                })
                .collect())
        })
    }

    fn sign_out_device(
        &self,
        uid: UserId,
        device: DeviceId,
    ) -> BoxFuture<'_, StoreResult<Vec<Vec<u8>>>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let mine = sqlx::query("SELECT 1 FROM devices WHERE id = ? AND uid = ?")
                .bind(device.as_str())
                .bind(uid.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if mine.is_none() {
                return Err(StoreError::Missing(format!("device {device}")));
            }
            let hashes = sqlx::query("DELETE FROM tokens WHERE device_id = ? RETURNING token_hash")
                .bind(device.as_str())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| r.get::<Vec<u8>, _>(0))
                .collect();
            tx.commit().await?;
            Ok(hashes)
        })
    }

    fn delete_token(&self, token_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM tokens WHERE token_hash = ?")
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn save_call(&self, call: CallState) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let corrupt = |e: serde_json::Error| {
                StoreError::Corrupt(call.session_id.to_string(), e.to_string())
            };
            let json = serde_json::to_string(&call).map_err(corrupt)?;
            let rows: Vec<serde_json::Value> = call
                .participants
                .iter()
                .map(|p| {
                    let status = call
                        .history_status(&p.uid)
                        .map(|s| s.as_str())
                        .unwrap_or("initiated");
                    serde_json::json!({ "uid": p.uid, "status": status })
                })
                .collect();
            let participants = serde_json::to_string(&rows).map_err(corrupt)?;
            // One statement: the triggers of migration 0002 write the history
            // rows in the same implicit transaction. Every statement is a round
            // trip to sqlx's SQLite thread, and this sits on the ring path.
            sqlx::query(
                "INSERT INTO calls (session_id, status, initiated_at, ring_deadline, state_json, participants_json) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET status = excluded.status, \
                 state_json = excluded.state_json, participants_json = excluded.participants_json",
            )
            .bind(call.session_id.as_str())
            .bind(call.status().as_str())
            .bind(call.initiated_at.0)
            .bind(call.ring_deadline.0)
            .bind(&json)
            .bind(&participants)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn call(&self, id: SessionId) -> BoxFuture<'_, StoreResult<Option<CallState>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT state_json FROM calls WHERE session_id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| decode_call(id.as_str(), r.get::<&str, _>(0)))
                .transpose()
        })
    }

    fn live_calls(&self) -> BoxFuture<'_, StoreResult<Vec<CallState>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT session_id, state_json FROM calls WHERE status IN ('initiated', 'ongoing')",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| decode_call(r.get::<&str, _>(0), r.get::<&str, _>(1)))
                .collect()
        })
    }

    fn history(&self, uid: UserId, limit: u32) -> BoxFuture<'_, StoreResult<Vec<CallState>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT c.session_id, c.state_json FROM call_participants p JOIN calls c ON c.session_id = p.session_id \
                 WHERE p.uid = ? ORDER BY p.initiated_at DESC, c.rowid DESC LIMIT ?",
            )
            .bind(uid.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| decode_call(r.get::<&str, _>(0), r.get::<&str, _>(1)))
                .collect()
        })
    }

    fn add_invite(&self, invite: Invite, code_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO invites (id, code_hash, created_at, expires_at, uses, used) VALUES (?, ?, ?, ?, ?, 0)",
            )
            .bind(&invite.id)
            .bind(code_hash)
            .bind(invite.created_at.0)
            .bind(invite.expires_at.0)
            .bind(i64::from(invite.uses))
            .execute(&self.pool)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::Exists(format!("invite {}", invite.id)))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn invites(&self) -> BoxFuture<'_, StoreResult<Vec<Invite>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites ORDER BY created_at DESC, id"
            ))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(invite_row).collect())
        })
    }

    fn invite_by_code(&self, code_hash: Vec<u8>) -> BoxFuture<'_, StoreResult<Option<Invite>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE code_hash = ?"
            ))
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.as_ref().map(invite_row))
        })
    }

    fn revoke_invite(&self, id: String, now: Millis) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let r =
                sqlx::query("UPDATE invites SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                    .bind(now.0)
                    .bind(&id)
                    .execute(&self.pool)
                    .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::Missing(format!("invite {id}")));
            }
            Ok(())
        })
    }

    fn redeem_invite(
        &self,
        code_hash: Vec<u8>,
        account: NewAccount,
        now: Millis,
    ) -> BoxFuture<'_, StoreResult<Result<(), Refusal>>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // A write first, so this transaction holds SQLite's write lock
            // before it reads: the check below sees the count no other
            // redemption can change until this one commits.
            sqlx::query("UPDATE invites SET used = used WHERE code_hash = ?")
                .bind(&code_hash)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE code_hash = ?"
            ))
            .bind(&code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(invite) = row.as_ref().map(invite_row) else {
                return Ok(Err(Refusal::Unknown));
            };
            if let Err(refusal) = invite.check(now) {
                return Ok(Err(refusal));
            }
            let r = sqlx::query(
                "INSERT INTO users (uid, name, password_hash, created_at, invite_id) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(account.uid.as_str())
            .bind(&account.name)
            .bind(&account.password_hash)
            .bind(now.0)
            .bind(&invite.id)
            .execute(&mut *tx)
            .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Exists(format!("user {}", account.uid)))
                }
                Err(e) => return Err(e.into()),
            }
            sqlx::query("UPDATE invites SET used = used + 1 WHERE id = ?")
                .bind(&invite.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }
}
