//! "This computer": peal-server embedded in the app, on loopback, with its
//! data in the app's data directory; the local user and the Echo contact
//! (served by the echo bot in this process) are created on first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use peal_client::{ClientConfig, PealClient};
use peal_desktop_core::vault::Vault;
use peal_server::clock::SystemClock;
use peal_server::{AdminError, Config, Server};
use serde::{Deserialize, Serialize};

use crate::UiError;

/// The generated passwords of the local accounts (kept in the vault).
#[derive(Serialize, Deserialize)]
struct Credentials {
    me: String,
    echo: String,
}

/// A running embedded server and its echo bot; both stop when this is dropped.
pub struct Local {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _echo: PealClient,
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn random_password() -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for _ in 0..4 {
        let _ = write!(s, "{:016x}", rand::random::<u64>());
    }
    s
}

/// The local accounts' passwords: in the vault (the keyring, or the 0600
/// secrets file); made at first start. A `local-accounts.json` left by an
/// earlier version moves into the vault.
fn credentials(dir: &Path, vault: &dyn Vault) -> Result<Credentials, UiError> {
    const KEY: &str = "local-accounts";
    let kept = vault.get(KEY).map_err(UiError::internal)?;
    if let Some(c) = kept.and_then(|t| serde_json::from_str(&t).ok()) {
        return Ok(c);
    }
    let old = dir.join("local-accounts.json");
    let c = std::fs::read_to_string(&old)
        .ok()
        .and_then(|t| serde_json::from_str::<Credentials>(&t).ok())
        .unwrap_or_else(|| Credentials {
            me: random_password(),
            echo: random_password(),
        });
    let text = serde_json::to_string(&c).map_err(UiError::internal)?;
    vault.set(KEY, &text).map_err(UiError::internal)?;
    if old.exists() {
        match std::fs::remove_file(&old) {
            Ok(()) => {
                tracing::info!(to = %vault.describe(), "local account passwords moved out of local-accounts.json")
            }
            Err(e) => tracing::warn!(error = %e, "local-accounts.json not removed"),
        }
    }
    Ok(c)
}

async fn ensure_user(server: &Server, uid: &str, name: &str, pw: &str) -> Result<(), UiError> {
    match server.add_user(uid, name, pw).await {
        Ok(()) | Err(AdminError::Store(peal_server::store::StoreError::Exists(_))) => Ok(()),
        Err(e) => Err(UiError::internal(e)),
    }
}

/// Starts the embedded server in `dir` and signs `device` in as the local user.
pub async fn start(
    dir: PathBuf,
    device: &str,
    vault: &dyn Vault,
) -> Result<(Local, PealClient), UiError> {
    std::fs::create_dir_all(&dir).map_err(UiError::internal)?;
    let creds = credentials(&dir, vault)?;
    let server = Server::open(Config::new(dir.clone()), Arc::new(SystemClock))
        .await
        .map_err(UiError::internal)?;
    let me_name = std::env::var("USER")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Me".to_owned());
    ensure_user(&server, "me", &me_name, &creds.me).await?;
    ensure_user(&server, "echo", "Echo (test call)", &creds.echo).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(UiError::internal)?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(UiError::internal)?
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = async {
            let _ = stop_rx.await;
        };
        if let Err(e) = server.run(listener, stopped).await {
            tracing::error!(error = %e, "embedded server stopped");
        }
    });
    let echo = PealClient::connect(ClientConfig::new(&url, "echo", &creds.echo, "echo-bot"))
        .await
        .map_err(UiError::from)?;
    let bot = echo.clone();
    tokio::spawn(async move {
        let never = std::future::pending::<()>();
        peal_media::echo::serve_echo(&bot, Duration::from_secs(2), never, |_| {}).await;
    });
    let me = PealClient::connect(ClientConfig::new(&url, "me", &creds.me, device))
        .await
        .map_err(UiError::from)?;
    Ok((
        Local {
            url,
            stop: Some(stop_tx),
            _echo: echo,
        },
        me,
    ))
}
