//! The REST surface: login, contacts, groups, call actions, history.
//! Handlers adapt HTTP to the switchboard and the store; no call logic here.

use crate::auth::{self, Auth};
use crate::conns::Peer;
use crate::error::ApiError;
use crate::invites::{self, Refusal};
use crate::limits::LoginRefused;
use crate::passwords::Busy;
use crate::store::{NewAccount, StoreError};
use crate::switchboard::Action;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use peal_proto::exchange::Placement;
use peal_proto::ids::is_valid_id;
use peal_proto::limits::{CALL_RING_TIMEOUT_SECS, MAX_JOINED};
use peal_proto::wire::{
    CallResponse, Contact, DeviceInfo, GroupInfo, HistoryEntry, InitiateRequest, JoinRequest,
    LoginRequest, LoginResponse, Party, Receiver, ReceiverType, RejectRequest, ServerFrame,
    MAX_DEVICES_LISTED,
};
use peal_proto::{DeviceId, ErrorCode, GroupId, Millis, SessionId, UserId};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// `Json<T>` whose rejections are our `bad_request`, not axum's plain text.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(t)) => Ok(Body(t)),
            Err(e) => Err(ApiError::bad_request(match e {
                JsonRejection::JsonDataError(e) => {
                    format!("invalid request body: {}", e.body_text())
                }
                JsonRejection::JsonSyntaxError(_) => "request body is not valid JSON".to_owned(),
                JsonRejection::MissingJsonContentType(_) => {
                    "expected Content-Type: application/json".to_owned()
                }
                JsonRejection::BytesRejection(_) => {
                    "request body too large or unreadable".to_owned()
                }
                _ => "invalid request body".to_owned(),
            })),
        }
    }
}

/// The `Idempotency-Key` header: 1–64 visible ASCII characters, if present.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        Ok(_) | Err(_) => Err(ApiError::bad_request(
            "Idempotency-Key must be 1-64 visible ASCII characters",
        )),
    }
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    if raw.len() > 64 || raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("call"));
    }
    Ok(SessionId(raw.to_owned()))
}

/// A device name as sign-in takes it: trimmed, 1–128 characters.
fn device_name(raw: &str) -> Result<String, ApiError> {
    let device = raw.trim();
    if device.is_empty() || device.len() > 128 {
        return Err(ApiError::bad_request(
            "device name must be 1-128 characters",
        ));
    }
    Ok(device.to_owned())
}

/// The sign-in limits (per user id and per source address).
fn allow_login(
    s: &AppState,
    uid: &UserId,
    from: std::net::IpAddr,
    now: Millis,
) -> Result<(), ApiError> {
    match s.limits.allow_login(uid, from, now) {
        Ok(()) => Ok(()),
        Err(LoginRefused::User { retry_secs }) => Err(ApiError::rate_limited(
            "too many sign-in attempts for this user; wait a minute",
            retry_secs,
        )),
        Err(LoginRefused::Address { retry_secs }) => {
            tracing::info!(%from, "sign-in attempts over the per-address limit");
            Err(ApiError::rate_limited(
                "too many sign-in attempts from this address; wait a minute",
                retry_secs,
            ))
        }
    }
}

fn busy(from: std::net::IpAddr) -> ApiError {
    tracing::info!(%from, "sign-in refused: every password worker is busy");
    ApiError::rate_limited("the server is busy signing people in; retry in a second", 1)
}

/// A new token for `user`'s device named `device` (made if it is new).
async fn open_session(
    s: &AppState,
    user: Party,
    device: String,
    now: Millis,
) -> Result<LoginResponse, ApiError> {
    let device_id = s
        .store
        .device(user.uid.clone(), device, DeviceId(auth::random_id(12)), now)
        .await?;
    let token = auth::new_token();
    s.store
        .add_token(auth::token_hash(&token), device_id.clone(), now)
        .await?;
    Ok(LoginResponse {
        token,
        device_id,
        user,
    })
}

pub async fn login(
    State(s): State<AppState>,
    Peer(from): Peer,
    Body(req): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let device = device_name(&req.device)?;
    if !is_valid_id(req.uid.as_str()) || req.password.len() > 1024 {
        return Err(ApiError::unauthorized());
    }
    let now = s.clock.now();
    allow_login(&s, &req.uid, from, now)?;
    let found = s.store.user_auth(req.uid.clone()).await?;
    let hash = found.as_ref().map(|(_, h)| h.clone());
    let ok = s
        .passwords
        .verify(req.password, hash)
        .await
        .map_err(|Busy| busy(from))?;
    let Some((name, _)) = found.filter(|_| ok) else {
        return Err(ApiError::unauthorized());
    };
    let user = Party { uid: req.uid, name };
    Ok(Json(open_session(&s, user, device, now).await?))
}

fn refused(r: Refusal) -> ApiError {
    ApiError::new(ErrorCode::InviteInvalid, r.to_string())
}

/// `GET /v1/invites/{code}`: 204 while the invite can make an account, else
/// `invite_invalid` saying why, so the app can say so before asking for a
/// name and password. Counted against the address's sign-in limit.
pub async fn check_invite(
    State(s): State<AppState>,
    Peer(from): Peer,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = s.clock.now();
    if !s.limits.allow_login_from(from, now) {
        return Err(ApiError::rate_limited(
            "too many sign-in attempts from this address; wait a minute",
            60,
        ));
    }
    usable_invite(&s, &code, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The hash of `code` if its invite can make an account at `now`, else why not.
async fn usable_invite(s: &AppState, code: &str, now: Millis) -> Result<Vec<u8>, ApiError> {
    if !invites::is_code(code) {
        return Err(refused(Refusal::Unknown));
    }
    let hash = auth::token_hash(code);
    match s.store.invite_by_code(hash.clone()).await? {
        None => Err(refused(Refusal::Unknown)),
        Some(i) => i.check(now).map(|_| hash).map_err(refused),
    }
}

/// `POST /v1/join`: makes the account an invite allows and signs its first
/// device in. Everyone connected hears of the new contact.
pub async fn join(
    State(s): State<AppState>,
    Peer(from): Peer,
    Body(req): Body<JoinRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let device = device_name(&req.device)?;
    crate::check_account(req.uid.as_str(), &req.name, &req.password)
        .map_err(ApiError::bad_request)?;
    if req.password.chars().count() < invites::MIN_PASSWORD {
        return Err(ApiError::bad_request(format!(
            "pick a password of at least {} characters",
            invites::MIN_PASSWORD
        )));
    }
    let now = s.clock.now();
    allow_login(&s, &req.uid, from, now)?;
    // Before the costly hash: an invite that can't be used says so at once.
    let code_hash = usable_invite(&s, &req.invite, now).await?;
    if s.store.user(req.uid.clone()).await?.is_some() {
        return Err(taken(&req.uid));
    }
    let password_hash = s
        .passwords
        .hash(req.password)
        .await
        .map_err(|Busy| busy(from))?
        .ok_or_else(ApiError::internal)?;
    let name = req.name.trim().to_owned();
    let account = NewAccount {
        uid: req.uid.clone(),
        name: name.clone(),
        password_hash,
    };
    match s.store.redeem_invite(code_hash, account, now).await {
        Ok(Ok(())) => {}
        Ok(Err(r)) => return Err(refused(r)),
        Err(StoreError::Exists(_)) => return Err(taken(&req.uid)),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(uid = %req.uid, %from, "account made with an invite");
    let user = Party { uid: req.uid, name };
    s.hub.send_all(&ServerFrame::ContactAdded {
        contact: user.clone(),
    });
    Ok(Json(open_session(&s, user, device, now).await?))
}

fn taken(uid: &UserId) -> ApiError {
    ApiError::new(
        ErrorCode::UserExists,
        format!("the user id {uid} is taken; pick another"),
    )
}

#[derive(Deserialize)]
pub struct JoinPageQuery {
    invite: Option<String>,
}

/// `GET /join?invite=CODE`: the web form of an invite, for people without
/// the app yet.
pub async fn join_page(
    q: Result<Query<JoinPageQuery>, axum::extract::rejection::QueryRejection>,
) -> axum::response::Html<String> {
    let code = q.ok().and_then(|Query(q)| q.invite);
    axum::response::Html(invites::join_page(code.as_deref()))
}

pub async fn logout(State(s): State<AppState>, a: Auth) -> Result<StatusCode, ApiError> {
    s.tokens.forget(&a.token_hash);
    s.store.delete_token(a.token_hash.clone()).await?;
    // The device's event socket, if it was opened with this token, closes too.
    let _ = s.signed_out.send(a.token_hash);
    Ok(StatusCode::NO_CONTENT)
}

/// This user's devices, newest sign-in first.
pub async fn devices(
    State(s): State<AppState>,
    a: Auth,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    Ok(Json(device_list(&s, &a).await?))
}

/// Signs one of this user's devices out everywhere: its tokens are revoked
/// and its event socket closes (`4001 signed out`); the list as it is after.
pub async fn sign_out_device(
    State(s): State<AppState>,
    a: Auth,
    Path(raw): Path<String>,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::not_found("device"));
    }
    let hashes = match s
        .store
        .sign_out_device(a.owner.user.uid.clone(), DeviceId(raw))
        .await
    {
        Ok(h) => h,
        Err(StoreError::Missing(_)) => return Err(ApiError::not_found("device")),
        Err(e) => return Err(e.into()),
    };
    for hash in hashes {
        s.tokens.forget(&hash);
        let _ = s.signed_out.send(hash);
    }
    Ok(Json(device_list(&s, &a).await?))
}

async fn device_list(s: &AppState, a: &Auth) -> Result<Vec<DeviceInfo>, ApiError> {
    let valid_since = Millis(s.clock.now().0.saturating_sub(s.token_ttl_ms));
    let rows = s
        .store
        .devices(a.owner.user.uid.clone(), valid_since, MAX_DEVICES_LISTED)
        .await?;
    Ok(rows
        .into_iter()
        .map(|d| DeviceInfo {
            current: d.id == a.owner.device_id,
            device_id: d.id,
            name: d.name,
            created_at: d.created_at,
            signed_in_at: d.signed_in_at,
        })
        .collect())
}

pub async fn me(a: Auth) -> Json<Party> {
    Json(a.owner.user)
}

/// The STUN/TURN servers this user's devices gather with; TURN credentials
/// are minted per request and expire on their own.
pub async fn ice_servers(State(s): State<AppState>, a: Auth) -> Json<peal_proto::wire::IceServers> {
    Json(s.ice.for_user(&a.owner.user.uid, s.clock.now()))
}

pub async fn contacts(State(s): State<AppState>, a: Auth) -> Result<Json<Vec<Contact>>, ApiError> {
    let users: Vec<Party> = s
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.uid != a.owner.user.uid)
        .collect();
    let presence = s
        .switchboard
        .presence(users.iter().map(|u| u.uid.clone()).collect())
        .await;
    Ok(Json(
        users
            .into_iter()
            .zip(presence)
            .map(|(u, presence)| Contact {
                uid: u.uid,
                name: u.name,
                presence,
            })
            .collect(),
    ))
}

pub async fn groups(State(s): State<AppState>, a: Auth) -> Result<Json<Vec<GroupInfo>>, ApiError> {
    Ok(Json(s.store.groups_of(a.owner.user.uid).await?))
}

pub async fn initiate(
    State(s): State<AppState>,
    a: Auth,
    headers: HeaderMap,
    Body(req): Body<InitiateRequest>,
) -> Result<Json<CallResponse>, ApiError> {
    let idem = idempotency_key(&headers)?;
    let caller = a.owner.user;
    let ring_timeout_secs = match req.timeout {
        None => s.ring_timeout_secs,
        Some(t) if (CALL_RING_TIMEOUT_SECS.0..=CALL_RING_TIMEOUT_SECS.1).contains(&t) => t,
        Some(t) => {
            return Err(ApiError::bad_request(format!(
                "timeout {t} s is out of range {}-{} s",
                CALL_RING_TIMEOUT_SECS.0, CALL_RING_TIMEOUT_SECS.1
            )))
        }
    };
    if !is_valid_id(&req.receiver) {
        return Err(ApiError::not_found(match req.receiver_type {
            ReceiverType::User => "user",
            ReceiverType::Group => "group",
        }));
    }
    let (receiver, members) = match req.receiver_type {
        ReceiverType::User => {
            let uid = UserId(req.receiver);
            if uid == caller.uid {
                return Err(ApiError::new(
                    ErrorCode::CallingSelf,
                    "you can't call yourself",
                ));
            }
            let callee = s
                .store
                .user(uid)
                .await?
                .ok_or_else(|| ApiError::not_found("user"))?;
            (
                Receiver::User {
                    uid: callee.uid.clone(),
                    name: callee.name.clone(),
                },
                vec![callee],
            )
        }
        ReceiverType::Group => {
            let guid = GroupId(req.receiver);
            let (name, members) = s
                .store
                .group(guid.clone())
                .await?
                .ok_or_else(|| ApiError::not_found("group"))?;
            // A group you are not in is a group you can't see.
            if !members.iter().any(|m| m.uid == caller.uid) {
                return Err(ApiError::not_found("group"));
            }
            if members.len() > 64 * MAX_JOINED {
                return Err(ApiError::bad_request("group too large to ring"));
            }
            (Receiver::Group { guid, name }, members)
        }
    };
    if !s.limits.allow_call(&caller.uid, s.clock.now()) {
        return Err(ApiError::rate_limited(
            "too many calls placed; wait a minute",
            1,
        ));
    }
    let placement = Placement {
        caller,
        caller_device: a.owner.device_id,
        receiver,
        call_type: req.call_type,
        members,
        ring_timeout_ms: i64::from(ring_timeout_secs) * 1000,
    };
    let call = s
        .switchboard
        .initiate(SessionId(auth::random_id(16)), placement, idem)
        .await?;
    Ok(Json(CallResponse { call }))
}

async fn act(
    s: &AppState,
    a: Auth,
    headers: &HeaderMap,
    id: &str,
    action: Action,
) -> Result<Json<CallResponse>, ApiError> {
    let idem = idempotency_key(headers)?;
    let id = session_id(id)?;
    let call = s
        .switchboard
        .act(a.owner.user.uid, a.owner.device_id, id, action, idem)
        .await?;
    Ok(Json(CallResponse { call }))
}

pub async fn get_call(
    State(s): State<AppState>,
    a: Auth,
    Path(id): Path<String>,
) -> Result<Json<CallResponse>, ApiError> {
    let call = s
        .switchboard
        .get(a.owner.user.uid, session_id(&id)?)
        .await?;
    Ok(Json(CallResponse { call }))
}

pub async fn accept(
    State(s): State<AppState>,
    a: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CallResponse>, ApiError> {
    act(&s, a, &headers, &id, Action::Accept).await
}

pub async fn reject(
    State(s): State<AppState>,
    a: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(req): Body<RejectRequest>,
) -> Result<Json<CallResponse>, ApiError> {
    act(&s, a, &headers, &id, Action::Reject(req.status)).await
}

pub async fn end(
    State(s): State<AppState>,
    a: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CallResponse>, ApiError> {
    act(&s, a, &headers, &id, Action::End).await
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    limit: Option<u32>,
}

pub async fn history(
    State(s): State<AppState>,
    a: Auth,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let Query(q) = q.map_err(|_| ApiError::bad_request("limit must be a whole number"))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let uid = a.owner.user.uid;
    let calls = s.store.history(uid.clone(), limit).await?;
    Ok(Json(
        calls.iter().filter_map(|c| c.history_entry(&uid)).collect(),
    ))
}
