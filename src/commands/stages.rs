//! The stages every plan goes through before and after the pure core: saying where the profile
//! and remote came from, warning about the desired state, opening the remote (under the apply
//! lock) and reading the last-applied record.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::warn;
use crate::backend::{Access, Applied, Backend, Connection, Spec};
use crate::config::{Config, Output, RemoteConfig, RemoteOrigin};
use crate::desired::{Desired, SkipReason};
use crate::diagnostics::Deferred;
use crate::error::{Error, Result, display_path};
use crate::plan::{Comparison, Plan};
use crate::project::ProfileOrigin;
use crate::record::{self, LastApplied};
use crate::remote::{ChangeSet, Remote};
use crate::sources::{self, Loaded, Overrides};

pub(super) fn describe(config: &Config, remote: &RemoteConfig, output: &Output, err: &mut dyn Write) {
    for warning in config.profile.warnings.iter().chain(&config.settings.warnings) {
        warn(output, err, warning);
    }
    if output.verbose == 0 {
        return;
    }
    let chosen = match config.profile_origin {
        ProfileOrigin::Flag => "--profile",
        ProfileOrigin::Environment => "SYSTEMPROMPT_PROFILE",
        ProfileOrigin::Session => "the active profile of .systemprompt/sessions/index.json",
        ProfileOrigin::OnlyOne => "the only profile",
    };
    let remote_from = match remote.origin {
        RemoteOrigin::Flag => "--remote",
        RemoteOrigin::Settings => "cloud-secrets.yaml",
        RemoteOrigin::ProfileYaml => "profile.yaml secrets.remote",
        RemoteOrigin::Target => "profile.yaml target: cloud",
    };
    let _ = writeln!(
        err,
        "profile: {} ({}; chosen by {chosen})",
        config.profile.name,
        display_path(&config.profile.dir)
    );
    let _ = writeln!(err, "remote: {} (from {remote_from})", remote.spec);
}

/// Says, once, that the secrets file is absent and the environment alone is the desired state.
pub(super) fn warn_partial(
    config: &Config,
    loaded: &crate::sources::Loaded,
    output: &Output,
    err: &mut dyn Write,
) {
    if loaded.partial {
        warn(
            output,
            err,
            &format!(
                "{} does not exist: the desired state is what the environment sets, and nothing on the remote is \
                 removed for want of a key",
                config.profile.secrets_display()
            ),
        );
    }
}

pub(super) fn warn_skipped(desired: &Desired, output: &Output, err: &mut dyn Write) {
    for skipped in &desired.skipped {
        let why = match &skipped.reason {
            SkipReason::SystemManaged => {
                "which the hosting platform sets; it is skipped. Remove it from secrets.json."
            }
            SkipReason::Stale => {
                "which is stale and must no longer be synced; it is skipped. Remove it from secrets.json."
            }
            // The deploy step reads this key and writes the variable itself.
            SkipReason::DeployOwned => {
                "which the platform's deploy step writes from it; cloud-secrets leaves it to deploy."
            }
            SkipReason::Derived => {
                "which cloud-secrets computes from the other keys; it is skipped. Remove it from secrets.json."
            }
            SkipReason::NotSet | SkipReason::ShadowedBy(_) | SkipReason::Ignored => continue,
        };
        warn(
            output,
            err,
            &format!("{}: `{}` maps to {}, {why}", skipped.location, skipped.key, skipped.name),
        );
    }
}

/// Opens the remote for writing, holding the lock of this profile and remote (so that two
/// applies on one machine never interleave, whatever the remote) and the store's own lock where
/// it has one. If another process holds a lock, says so before waiting.
pub(super) fn open_for_write(
    config: &Config,
    remote: &RemoteConfig,
    lock_timeout: Duration,
    output: &Output,
    err: &mut dyn Write,
) -> Result<(std::fs::File, Box<dyn Backend>)> {
    let digest = ring::digest::digest(&ring::digest::SHA256, remote.spec.identity().as_bytes());
    let tag = hex::encode(&digest.as_ref()[..6]);
    let lock_path = config.profile.state_file(&format!("apply-{tag}.lock"));
    let waiting = |path: &std::path::Path, holder: Option<u32>, err: &mut dyn Write| {
        if !output.quiet {
            let holder = holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            let _ = writeln!(
                err,
                "Waiting up to {}s for another cloud-secrets process{holder} to release {}...",
                lock_timeout.as_secs(),
                display_path(path)
            );
        }
    };
    let lock = match crate::files::lock(&lock_path, Duration::ZERO) {
        Err(Error::Locked { path, holder }) if !lock_timeout.is_zero() => {
            waiting(&path, holder, err);
            crate::files::lock(&lock_path, lock_timeout)?
        }
        other => other?,
    };
    let backend = match remote.spec.open(Access::Write { lock_timeout: Duration::ZERO }, &remote.connection) {
        Err(Error::Locked { path, holder }) if !lock_timeout.is_zero() => {
            waiting(&path, holder, err);
            remote.spec.open(Access::Write { lock_timeout }, &remote.connection)?
        }
        other => other?,
    };
    Ok((lock, backend))
}

/// Records what the apply wrote (and what the remote showed equal), and forgets what it removed.
pub(super) fn remember(
    config: &Config,
    key: &str,
    record: Option<LastApplied>,
    (plan, desired, fetched): (&Plan, &Desired, &Remote),
    changes: &ChangeSet<'_>,
    applied: &Applied,
) -> Result<()> {
    let mut record = match record {
        Some(record) => record,
        None => LastApplied::fresh()?,
    };
    record.note_listing_salt(fetched.digest_salt.as_deref());
    // Values the remote itself showed equal are as good as applied.
    let equal = plan.unchanged.iter().filter(|w| w.comparison == Comparison::Equal);
    let equal = equal.filter_map(|w| desired.vars.get(&w.name).map(|var| (w.name.as_str(), &var.value)));
    let written = changes.upserts.iter().copied().chain(equal);
    let removed = changes.deletes.iter().copied().filter(|n| !applied.failed.iter().any(|(f, _)| f == n));
    record.note_apply(written, removed);
    record::save(&config.profile.state_file(record::FILE_NAME), key, record)
}

/// The remote's state, read on a thread of its own while the profile's files are read and
/// checked, so that a plan costs little more than the read itself. The result is taken up only
/// after the local checks: a local error is reported first, and the read then abandoned. A store
/// in a local file is read in turn, when the result is taken up.
pub(super) enum Fetching {
    Reading { thread: std::thread::JoinHandle<Result<Remote>>, log: Arc<Deferred> },
    Later { spec: Arc<dyn Spec>, connection: Connection },
}

impl Fetching {
    /// Opens the remote for reading and starts reading it.
    pub(super) fn start(remote: &RemoteConfig) -> Self {
        let spec = Arc::clone(&remote.spec);
        if spec.is_local_file() {
            return Self::Later { spec, connection: remote.connection.clone() };
        }
        let log = Arc::new(Deferred::new(Arc::clone(&remote.connection.diagnostics)));
        let connection = Connection { diagnostics: log.clone(), ..remote.connection.clone() };
        let thread = std::thread::spawn(move || spec.open(Access::Read, &connection)?.fetch());
        Self::Reading { thread, log }
    }

    /// Whether the remote has been read (and `finish` will not wait).
    pub(super) fn is_done(&self) -> bool {
        match self {
            Self::Reading { thread, .. } => thread.is_finished(),
            Self::Later { .. } => false,
        }
    }

    /// What the remote holds, once read; its request log (`-vv`) is written now.
    pub(super) fn finish(self) -> Result<Remote> {
        match self {
            Self::Reading { thread, log } => {
                let fetched = thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                log.replay();
                fetched
            }
            Self::Later { spec, connection } => spec.open(Access::Read, &connection)?.fetch(),
        }
    }
}

/// What was last applied to this remote, for remotes whose values cannot all be read back.
pub(super) fn load_record(config: &Config, remote: &RemoteConfig) -> Result<Option<LastApplied>> {
    match remote.spec.record_key() {
        Some(key) => record::load(&config.profile.state_file(record::FILE_NAME), &key),
        None => Ok(None),
    }
}

/// The desired state's entries, each value from the first source that sets it: the secrets
/// file with environment (and opted-in `.env`) overrides; the environment alone when the file is
/// absent.
pub(super) fn load_desired(config: &Config) -> Result<Loaded> {
    let path = config.profile.secrets_path();
    let Some(mut file) = crate::secrets_file::load(&path).map_err(|e| config.profile.shown(e))? else {
        return Ok(Loaded { entries: sources::from_environment(&config.environment)?, partial: true });
    };
    if config.profile.secrets_shown.is_some() {
        let shown: Arc<str> = config.profile.secrets_display().into();
        for entry in &mut file {
            entry.location.path = Arc::clone(&shown);
        }
    }
    let dotenv = match &config.settings.dotenv {
        Some((path, written)) => {
            let vars = sources::load_dotenv(path)?;
            if vars.is_empty() && path.symlink_metadata().is_err() {
                return Err(Error::input(
                    written.clone(),
                    format!("dotenv names {}, which does not exist", display_path(path)),
                    "create it, or remove `dotenv` (a path relative to this file's folder)",
                ));
            }
            vars
        }
        None => Default::default(),
    };
    let overrides = Overrides { environment: config.environment.clone(), dotenv };
    Ok(Loaded { entries: sources::layer(file, &overrides), partial: false })
}
