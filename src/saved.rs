//! Saved plans: `plan --out FILE` writes the plan with what `apply FILE` needs to tell whether it
//! is still current, and nothing from which a value can be recovered.
//!
//! The file holds the plan document (names, actions, reasons), the identity of the profile and
//! the remote it was made for, and two fingerprints: one of the desired state and one of the
//! remote's listing, each an HMAC-SHA256 over all the values together. Their key is never in the
//! file: it is derived from a plan key kept apart (`CLOUD_SECRETS_PLAN_KEY`, or the profile's
//! `plan-key` file, mode 0600) and a random salt that is. Without the plan key, the file cannot
//! be used to check a guess of any value, nor be edited without `apply` noticing: its checksum is
//! an HMAC under the same key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::desired::Desired;
use crate::error::{Error, Location, Result, display_path};
use crate::remote::{Remote, RemoteValue};
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
    /// Which plan key the fingerprints were made with (a hash of it, not the key).
    pub key_id: String,
    /// The profile directory, absolute.
    pub profile_dir: String,
    /// The remote's identity (an absolute path or an API URL and tenant).
    pub remote: String,
    /// Mixed with the plan key into the fingerprints' key, hex; random per file.
    pub salt: String,
    /// HMAC-SHA256 of the whole desired state (every name, source and value together).
    pub desired_fingerprint: String,
    /// HMAC-SHA256 of the whole remote listing (names, and values, digests or nothing).
    pub remote_fingerprint: String,
    /// HMAC-SHA256 of the file with this field empty, under the plan key.
    pub checksum: String,
}

impl SavedPlan {
    /// A saved plan of `plan` for this profile, remote and state.
    pub fn new(
        plan: PlanDocument,
        key: &PlanKey,
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
                key_id: key.id(),
                profile_dir: identity_of_dir(profile_dir),
                remote,
                salt: hex::encode(salt),
                desired_fingerprint: desired_fingerprint(&key.fingerprint_key(&salt), desired),
                remote_fingerprint: remote_fingerprint(&key.fingerprint_key(&salt), fetched),
                checksum: String::new(),
            },
        };
        saved.guard.checksum = saved.checksum(key);
        Ok(saved)
    }

    fn checksum(&self, key: &PlanKey) -> String {
        let mut copy = self.clone();
        copy.guard.checksum = String::new();
        let bytes = serde_json::to_vec(&copy).expect("a saved plan serializes");
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.0);
        hex::encode(ring::hmac::sign(&mac, &bytes).as_ref())
    }

    /// Refuses (exit 3) a plan made with another plan key, or edited since it was written.
    pub fn verify(&self, key: &PlanKey) -> Result<()> {
        if self.guard.key_id != key.id() {
            return Err(Error::Stale {
                message:
                    "the saved plan was made with another plan key than this one (CLOUD_SECRETS_PLAN_KEY or \
                          the profile's plan-key file); nothing was written"
                        .to_owned(),
            });
        }
        if self.checksum(key) != self.guard.checksum {
            return Err(Error::Stale {
                message:
                    "the saved plan was changed after it was written (its checksum does not match); nothing \
                          was written"
                        .to_owned(),
            });
        }
        Ok(())
    }

    /// Refuses (exit 3) a plan made for another profile (`profile_yaml` is the selected
    /// profile's file) or another remote.
    pub fn check_made_for(&self, profile_yaml: &Path, remote: &str) -> Result<()> {
        let profile_dir = identity_of_dir(profile_yaml);
        if self.guard.profile_dir != profile_dir {
            return Err(Error::Stale {
                message: format!(
                    "the saved plan was made for the profile in {}, not {}; nothing was written",
                    self.guard.profile_dir, profile_dir
                ),
            });
        }
        if self.guard.remote != remote {
            return Err(Error::Stale {
                message: format!(
                    "the saved plan was made for the remote {}, not {remote}; nothing was written",
                    self.guard.remote
                ),
            });
        }
        Ok(())
    }

    /// Refuses (exit 3) a plan whose desired state or remote (`remote_name`) moved since it was
    /// saved, or that would no longer make the same changes (`now` is the plan made today).
    pub fn check_still_holds(
        &self,
        key: &PlanKey,
        (desired, fetched): (&Desired, &Remote),
        now: &PlanDocument,
        remote_name: &str,
    ) -> Result<()> {
        let salt = self.fingerprint_key(key);
        if desired_fingerprint(&salt, desired) != self.guard.desired_fingerprint {
            return Err(Error::Stale {
                message: "the desired state changed since the plan was saved (secrets.json, .env or the \
                          environment); nothing was written"
                    .to_owned(),
            });
        }
        if remote_fingerprint(&salt, fetched) != self.guard.remote_fingerprint {
            return Err(Error::Stale {
                message: format!(
                    "the remote {remote_name} changed since the plan was saved; nothing was written"
                ),
            });
        }
        if now.changes != self.plan.changes {
            return Err(Error::Stale {
                message: "applying now would not make exactly the changes the saved plan shows; nothing was \
                          written"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// The key of the fingerprints for this file.
    pub fn fingerprint_key(&self, key: &PlanKey) -> Vec<u8> {
        key.fingerprint_key(&hex::decode(&self.guard.salt).unwrap_or_default())
    }

    /// Writes the file atomically, mode 0600.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a saved plan serializes");
        bytes.push(b'\n');
        crate::files::write_private(path, &bytes)
    }

    /// Reads a saved plan (see [`SavedPlan::verify`] for whether it may be applied).
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
        Ok(saved)
    }
}

/// The secret that keys saved-plan fingerprints and checksums. Kept out of plan files.
pub struct PlanKey(zeroize::Zeroizing<Vec<u8>>);

/// The environment variable that gives the plan key (for pipelines that plan and apply on
/// different machines).
pub const PLAN_KEY_VAR: &str = "CLOUD_SECRETS_PLAN_KEY";

impl PlanKey {
    /// The plan key: `CLOUD_SECRETS_PLAN_KEY` if set, else the profile's plan-key file at `path`,
    /// which is created (random, mode 0600) when `create` and it does not exist.
    pub fn load(
        path: &Path,
        environment: &std::collections::BTreeMap<String, crate::secret::SecretValue>,
        create: bool,
    ) -> Result<Self> {
        if let Some(key) = Self::from_environment(environment) {
            return key;
        }
        if let Some(bytes) = crate::files::read_limited(path, 4096, "plan-key")? {
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            return match hex::decode(&text).ok().filter(|k| k.len() >= 16) {
                Some(key) => Ok(Self(zeroize::Zeroizing::new(key))),
                None => Err(Error::input(
                    Location::file(path),
                    "the plan key is not hex",
                    "delete it; plan --out makes a new one",
                )),
            };
        }
        if !create {
            return Err(Error::Stale {
                message: format!(
                    "there is no plan key to check the saved plan with: {} does not exist and {PLAN_KEY_VAR} is \
                     not set; nothing was written",
                    display_path(path)
                ),
            });
        }
        use ring::rand::SecureRandom;
        let mut key = zeroize::Zeroizing::new(vec![0u8; 32]);
        ring::rand::SystemRandom::new().fill(&mut key).map_err(|_| Error::Config {
            message: "the system's random number generator failed".to_owned(),
            hint: None,
        })?;
        // Two runs may create the key at once: the first to land wins, and the other reads it.
        match crate::files::create_private(path, format!("{}\n", hex::encode(&key)).as_bytes())? {
            true => Ok(Self(key)),
            false => Self::load(path, environment, false),
        }
    }

    /// The plan key `CLOUD_SECRETS_PLAN_KEY` gives, if it is set.
    pub fn from_environment(
        environment: &std::collections::BTreeMap<String, crate::secret::SecretValue>,
    ) -> Option<Result<Self>> {
        let value = environment.get(PLAN_KEY_VAR)?;
        if value.expose().len() < 16 {
            return Some(Err(Error::config(
                format!("{PLAN_KEY_VAR} is too short to key saved plans"),
                "use a random string of at least 16 characters (for example the output of openssl rand -hex 32)",
            )));
        }
        Some(Ok(Self(zeroize::Zeroizing::new(value.expose().as_bytes().to_vec()))))
    }

    /// A name for the key that reveals nothing of it.
    pub fn id(&self) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"cloud-secrets plan key id\0");
        context.update(&self.0);
        hex::encode(&context.finish().as_ref()[..8])
    }

    /// The fingerprints' key for a file with this salt.
    fn fingerprint_key(&self, salt: &[u8]) -> Vec<u8> {
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        ring::hmac::sign(&mac, salt).as_ref().to_vec()
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
    hex::encode(context.sign().as_ref())
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
                context.update(d.to_hex().as_bytes());
            }
            RemoteValue::Unreadable => context.update(b"\0unreadable"),
        }
        context.update(b"\n");
    }
    let tail = format!(
        "salt\0{}\netag\0{}\nrevision\0{}\n",
        remote.digest_salt.as_deref().map(hex::encode).unwrap_or_default(),
        remote.etag.as_deref().unwrap_or_default(),
        remote.revision.map(|r| r.to_string()).unwrap_or_default()
    );
    context.update(tail.as_bytes());
    hex::encode(context.sign().as_ref())
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
        let key = PlanKey::load(&dir.path().join("plan-key"), &Default::default(), true).unwrap();
        let doc = PlanDocument::of(&Plan::default(), Subject { profile: "p", remote: "r", whole: true });
        let saved =
            SavedPlan::new(doc, &key, dir.path(), "file:/x".into(), &Desired::default(), &remote("CANARY-3"))
                .unwrap();
        std::fs::write(&path, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        saved.write(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let read = SavedPlan::read(&path).unwrap();
        assert_eq!(read, saved);
        read.verify(&key).unwrap();
        // Without the plan key, the salt in the file does not reproduce the fingerprint.
        let salt = hex::decode(&saved.guard.salt).unwrap();
        assert_ne!(remote_fingerprint(&salt, &remote("CANARY-3")), saved.guard.remote_fingerprint);
        assert_eq!(
            remote_fingerprint(&saved.fingerprint_key(&key), &remote("CANARY-3")),
            saved.guard.remote_fingerprint
        );
        // An edit is noticed, and so is another key.
        std::fs::write(&path, text.replace("\"profile\": \"p\"", "\"profile\": \"q\"")).unwrap();
        assert_eq!(SavedPlan::read(&path).unwrap().verify(&key).unwrap_err().exit_code(), 3);
        let other = PlanKey(zeroize::Zeroizing::new(vec![1; 32]));
        assert_eq!(saved.verify(&other).unwrap_err().exit_code(), 3);
    }
}
