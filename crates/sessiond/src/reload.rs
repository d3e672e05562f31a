//! Live reload: the access rules follow the configuration file, on change and on SIGHUP.
//!
//! The users file is re-read by the server itself (see `sessiond_server::background`). A new
//! configuration that does not validate is refused with the reason in the log, and the rules in
//! force stay. Settings other than the access rules (listeners, realms, the store) need a
//! restart; a reload that changes them says so.

use crate::config::{self, Config};
use sessiond_core::access::AccessControl;
use sessiond_server::App;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// How often the configuration file is checked for changes.
const POLL_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp { modified: meta.modified().ok(), len: meta.len(), inode })
}

/// The configuration without its access rules, as text, to tell whether anything else changed.
fn without_rules(config: &Config) -> String {
    let mut copy = config.clone();
    copy.access_control = AccessControl::default();
    copy.source = None;
    config::render_effective(&copy, false)
}

/// Loads `path` again and, when it validates, puts its access rules in force.
fn reload(app: &App, path: &Path, current: &mut Config) {
    match config::load(Some(path), std::env::vars()) {
        Ok(new) => {
            app.access.store(Arc::new(new.access_control.clone()));
            info!(path = %path.display(), rules = new.access_control.rules().len(), "access rules reloaded");
            if without_rules(&new) != without_rules(current) {
                warn!(path = %path.display(), "settings other than access_control changed; they take effect after a restart");
            }
            *current = new;
        }
        Err(e) => {
            warn!(path = %path.display(), error = %e, "configuration not reloaded; the rules in force stay");
        }
    }
}

/// Watches the configuration file (when there is one) until `shutdown`: reloads on change and on
/// SIGHUP. SIGHUP also reopens the audit log, for logrotate.
pub(crate) async fn watch(app: App, config: Config, shutdown: impl std::future::Future<Output = ()>) {
    let path: Option<PathBuf> = config.source.clone();
    let mut current = config;
    let mut seen = path.as_deref().and_then(stamp);
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::pin!(shutdown);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hangups.as_mut() {
                Some(signal) => signal.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<bool>();
        let forced = tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => false,
            true = hangup => true,
        };
        if forced {
            match app.audit.reopen() {
                Ok(()) => info!("audit log reopened"),
                Err(e) => warn!(error = %e, "reopening the audit log failed; still writing to the old file"),
            }
        }
        let Some(path) = path.as_deref() else { continue };
        let now = stamp(path);
        if forced || now != seen {
            seen = now;
            reload(&app, path, &mut current);
        }
    }
}
