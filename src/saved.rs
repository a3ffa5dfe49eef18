//! Saved plans: `plan --out FILE` writes the plan with what `apply FILE` needs to tell whether it
//! is still current, and nothing from which a value can be recovered.
//!
//! The file holds the plan document (names, actions, reasons), the identity of the profile and
//! the remote it was made for, and two fingerprints keyed with a random salt kept in the file:
//! one of the desired state and one of the remote's listing. Each is an HMAC-SHA256 over all the
//! values together, never one per key, so no single value can be checked against a guess
//! without knowing every other. A SHA-256 checksum over the rest tells a file edited by hand.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::desired::Desired;
use crate::error::{Error, Location, Result, display_path};
use crate::plan::{Remote, RemoteValue};
use crate::render::json::PlanDocument;

/// The version of the saved-plan file's shape.
pub const SAVED_FORMAT_VERSION: u32 = 1;

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// [`SAVED_FORMAT_VERSION`].
    pub saved_plan_version: u32,
    /// The plan, as `plan --format json` prints it.
    pub plan: PlanDocument,
    /// What `apply FILE` checks before applying.
    pub guard: Guard,
}

/// What makes a saved plan applicable, or stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// The cloud-secrets version that wrote the file.
    pub tool_version: String,
    /// The profile directory, absolute.
    pub profile_dir: String,
    /// The remote's identity (an absolute path or an API URL and tenant).
    pub remote: String,
    /// The HMAC key of the fingerprints, hex; random per file.
    pub salt: String,
    /// HMAC-SHA256 of the whole desired state (every name, source and value together).
    pub desired_fingerprint: String,
    /// HMAC-SHA256 of the whole remote listing (names, and values, digests or nothing).
    pub remote_fingerprint: String,
    /// SHA-256 of the file with this field empty.
    pub checksum: String,
}

impl SavedPlan {
    /// A saved plan of `plan` for this profile, remote and state.
    pub fn new(
        plan: PlanDocument,
        profile_dir: &Path,
        remote: String,
        desired: &Desired,
        fetched: &Remote,
    ) -> Result<Self> {
        use ring::rand::SecureRandom;
        let mut salt = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| Error::Config {
            message: "the system's random number generator failed".to_owned(),
            hint: None,
        })?;
        let mut saved = SavedPlan {
            saved_plan_version: SAVED_FORMAT_VERSION,
            plan,
            guard: Guard {
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
                profile_dir: identity_of_dir(profile_dir),
                remote,
                salt: hex(&salt),
                desired_fingerprint: desired_fingerprint(&salt, desired),
                remote_fingerprint: remote_fingerprint(&salt, fetched),
                checksum: String::new(),
            },
        };
        saved.guard.checksum = saved.checksum();
        Ok(saved)
    }

    fn checksum(&self) -> String {
        let mut copy = self.clone();
        copy.guard.checksum = String::new();
        let bytes = serde_json::to_vec(&copy).expect("a saved plan serializes");
        hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
    }

    /// Writes the file atomically, mode 0600.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a saved plan serializes");
        bytes.push(b'\n');
        crate::files::write_private(path, &bytes)
    }

    /// Reads a saved plan, refusing one edited since it was written (exit 3).
    pub fn read(path: &Path) -> Result<Self> {
        let Some(bytes) = crate::files::read_limited(path, 256 * 1024 * 1024, "the saved plan")? else {
            return Err(Error::input(
                Location::file(path),
                "no such saved plan",
                "make one with cloud-secrets plan --out FILE",
            ));
        };
        let saved: SavedPlan = serde_json::from_slice(&bytes).map_err(|e| {
            Error::input(
                Location::at(path, e.line().max(1), e.column().max(1)),
                format!("not a saved plan: {}", crate::secrets_file::safe_json_message(&e)),
                "make a new one with cloud-secrets plan --out FILE",
            )
        })?;
        if saved.saved_plan_version != SAVED_FORMAT_VERSION {
            return Err(Error::input(
                Location::file(path),
                format!(
                    "the saved plan has format {}, which this version does not read",
                    saved.saved_plan_version
                ),
                "make a new plan with this version of cloud-secrets",
            ));
        }
        if saved.checksum() != saved.guard.checksum {
            return Err(Error::Stale {
                message: format!(
                    "the saved plan {} was changed after it was written (its checksum does not match); nothing \
                     was written",
                    display_path(path)
                ),
            });
        }
        Ok(saved)
    }

    /// The salt of the fingerprints.
    pub fn salt(&self) -> Vec<u8> {
        crate::record::decode_hex(&self.guard.salt).unwrap_or_default()
    }
}

/// A directory's identity: its absolute, symlink-free path where it can be had.
pub fn identity_of_dir(dir: &Path) -> String {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).display().to_string()
}

/// HMAC-SHA256 of the whole desired state: every variable's name, source and value, and every
/// skipped key.
pub fn desired_fingerprint(salt: &[u8], desired: &Desired) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
    let mut context = ring::hmac::Context::with_key(&key);
    for (name, var) in &desired.vars {
        for part in
            [b"var\0".as_slice(), name.as_bytes(), b"\0", format!("{:?}", var.source).as_bytes(), b"\0"]
        {
            context.update(part);
        }
        context.update(var.value.expose().as_bytes());
        context.update(b"\n");
    }
    for skipped in &desired.skipped {
        let line = format!("skip\0{}\0{}\0{:?}\n", skipped.key, skipped.name, skipped.reason);
        context.update(line.as_bytes());
    }
    hex(context.sign().as_ref())
}

/// HMAC-SHA256 of the whole remote listing: names with values, digests or nothing, the digest
/// salt, the `ETag` and the revision.
pub fn remote_fingerprint(salt: &[u8], remote: &Remote) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
    let mut context = ring::hmac::Context::with_key(&key);
    for (name, value) in &remote.vars {
        context.update(b"var\0");
        context.update(name.as_bytes());
        match value {
            RemoteValue::Value(v) => {
                context.update(b"\0value\0");
                context.update(v.expose().as_bytes());
            }
            RemoteValue::Digest(d) => {
                context.update(b"\0digest\0");
                context.update(d.as_bytes());
            }
            RemoteValue::Unreadable => context.update(b"\0unreadable"),
        }
        context.update(b"\n");
    }
    let tail = format!(
        "salt\0{}\netag\0{}\nrevision\0{}\n",
        remote.digest_salt.as_deref().map(hex).unwrap_or_default(),
        remote.etag.as_deref().unwrap_or_default(),
        remote.revision.map(|r| r.to_string()).unwrap_or_default()
    );
    context.update(tail.as_bytes());
    hex(context.sign().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::render::Subject;
    use crate::secret::SecretValue;

    fn remote(value: &str) -> Remote {
        Remote::with_values([("A".to_owned(), SecretValue::new(value))].into_iter().collect(), Some(3))
    }

    #[test]
    fn fingerprints_move_with_any_value_and_hold_none() {
        let salt = [7u8; 32];
        assert_eq!(
            remote_fingerprint(&salt, &remote("CANARY-1")),
            remote_fingerprint(&salt, &remote("CANARY-1"))
        );
        assert_ne!(
            remote_fingerprint(&salt, &remote("CANARY-1")),
            remote_fingerprint(&salt, &remote("CANARY-2"))
        );
        assert_ne!(
            remote_fingerprint(&salt, &remote("CANARY-1")),
            remote_fingerprint(&[8u8; 32], &remote("CANARY-1"))
        );
    }

    #[test]
    fn a_saved_plan_round_trips_and_an_edit_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let doc = PlanDocument::of(&Plan::default(), Subject { profile: "p", remote: "r", whole: true });
        let saved =
            SavedPlan::new(doc, dir.path(), "file:/x".into(), &Desired::default(), &remote("CANARY-3"))
                .unwrap();
        saved.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("CANARY"));
        assert_eq!(SavedPlan::read(&path).unwrap(), saved);
        std::fs::write(&path, text.replace("\"profile\": \"p\"", "\"profile\": \"q\"")).unwrap();
        assert_eq!(SavedPlan::read(&path).unwrap_err().exit_code(), 3);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
