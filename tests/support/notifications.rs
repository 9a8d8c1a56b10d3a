//! The stand-in notification daemon: the freedesktop `Notifications`
//! interface on the private session bus; it records each notification and
//! can invoke its actions the way a daemon does when a button is clicked.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Debug)]
pub struct Shown {
    pub id: u32,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    pub closed: bool,
}

#[derive(Clone, Default)]
pub struct Daemon {
    pub shown: Arc<Mutex<Vec<Shown>>>,
    conn: Arc<OnceLock<zbus::Connection>>,
}

const PATH: &str = "/org/freedesktop/Notifications";
const IFACE: &str = "org.freedesktop.Notifications";

struct Server(Daemon);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.0.shown.lock().unwrap();
        let id = shown.len() as u32 + 1;
        shown.push(Shown {
            id,
            summary,
            body,
            actions,
            closed: false,
        });
        id
    }

    async fn close_notification(&self, id: u32) {
        if let Some(n) = self.0.shown.lock().unwrap().iter_mut().find(|n| n.id == id) {
            n.closed = true;
        }
        if let Some(c) = self.0.conn.get() {
            let _ = c
                .emit_signal(None::<&str>, PATH, IFACE, "NotificationClosed", &(id, 3u32))
                .await;
        }
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "peal-test-daemon".into(),
            "peal".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

impl Daemon {
    pub async fn start(bus: &str) -> Daemon {
        let d = Daemon::default();
        let conn = zbus::connection::Builder::address(bus)
            .expect("a D-Bus address")
            .name(IFACE)
            .expect("a well-known name")
            .serve_at(PATH, Server(d.clone()))
            .expect("an object path")
            .build()
            .await
            .expect("the stand-in daemon is on the bus");
        let _ = d.conn.set(conn);
        d
    }

    pub fn all(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }

    /// Clicks the button `key` on notification `id`.
    pub async fn invoke(&self, id: u32, key: &str) {
        let conn = self.conn.get().expect("connected");
        conn.emit_signal(None::<&str>, PATH, IFACE, "ActionInvoked", &(id, key))
            .await
            .expect("ActionInvoked sent");
    }
}
