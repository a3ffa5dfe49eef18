//! `compare A B`: two profiles side by side by variable name. By default the two desired states;
//! with `--remotes`, what the two remotes hold, where it can be read or digested. Values are
//! compared as digests under a key made for the run, and never shown.

use std::collections::BTreeMap;

use super::plan::ignore_closed;
use super::stages::load_desired;
use super::{Streams, stdout_error};
use crate::backend::Access;
use crate::cli::{CompareArgs, Format, RemoteArgs};
use crate::compare::{Fingerprint, Side};
use crate::config::{Config, Env, Output, RemoteConfig};
use crate::desired::{Desired, SkipReason};
use crate::error::{Error, Result, exit};
use crate::remote::{Remote, RemoteValue};
use crate::render::json::{self, CompareDocument, CompareSide};
use crate::render::{markdown, text};
use crate::secret::Digester;

/// Runs `compare`.
pub(super) fn run(
    cli: &crate::cli::Cli,
    env: &Env,
    args: &CompareArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    let key = run_key()?;
    let config_a = Config::for_name(cli, env, &args.a)?;
    let config_b = Config::for_name(cli, env, &args.b)?;
    if config_a.profile.yaml == config_b.profile.yaml {
        return Err(Error::usage(
            format!("`{}` and `{}` are the same profile", args.a, args.b),
            "name two different profiles",
        ));
    }
    let (side_a, side_b) = if args.remotes {
        let remote_args = RemoteArgs { remote: None, timeout: args.timeout };
        let diagnostics = streams.diagnostics.clone();
        let fetch = |config: &Config| -> Result<(BTreeMap<String, Side>, String)> {
            let remote = RemoteConfig::for_reading(&remote_args, diagnostics.clone(), env, config)?;
            let fetched = remote.spec.open(Access::Read, &remote.connection)?.fetch()?;
            Ok((remote_sides(&fetched, &key), remote.display().to_owned()))
        };
        let (a, remote_a) = fetch(&config_a)?;
        let (b, remote_b) = fetch(&config_b)?;
        ((a, Some(remote_a)), (b, Some(remote_b)))
    } else {
        ((desired_sides(&config_a, &key)?, None), (desired_sides(&config_b, &key)?, None))
    };
    let rows = crate::compare::compare(&side_a.0, &side_b.0);
    let document = CompareDocument::of(
        CompareSide { profile: config_a.profile.name.clone(), remote: side_a.1 },
        CompareSide { profile: config_b.profile.name.clone(), remote: side_b.1 },
        &rows,
        args.remotes,
    );
    let written = match args.format {
        Format::Json => json::write_document(streams.out, &document),
        Format::Markdown => markdown::write_compare(streams.out, &document),
        Format::Text if output.quiet => Ok(()),
        Format::Text => text::write_compare(streams.out, &document, &output.stdout),
    };
    ignore_closed(written)?;
    streams.out.flush().map_err(stdout_error)?;
    Ok(if args.detailed_exitcode && document.summary.differ { exit::CHANGES } else { exit::OK })
}

/// A key made fresh for the run: digests under it mean nothing after the run.
fn run_key() -> Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut key = vec![0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut key).map_err(|_| Error::Config {
        message: "the system's random number generator failed".to_owned(),
        hint: None,
    })?;
    Ok(key)
}

/// The profile's desired state, each variable as a digest, and the keys present without a value.
fn desired_sides(config: &Config, key: &[u8]) -> Result<BTreeMap<String, Side>> {
    let loaded = load_desired(config)?;
    let desired = Desired::build(loaded.entries, &Remote::default(), config.ignore.clone(), loaded.partial)?;
    let digester = Digester::new(key);
    let mut sides: BTreeMap<String, Side> = desired
        .vars
        .iter()
        .map(|(name, var)| (name.clone(), Side::Set(Fingerprint::Run(digester.hex(&var.value)))))
        .collect();
    for skipped in desired.skipped.iter().filter(|s| s.reason == SkipReason::NotSet) {
        for name in std::iter::once(&skipped.name).chain(&skipped.aliases) {
            sides.entry(name.clone()).or_insert(Side::NotSet);
        }
    }
    Ok(sides)
}

/// What a remote holds, each value as a digest: under the run's key where it can be read, under
/// its own salt where it lists digests, unreadable where it lists names only.
fn remote_sides(remote: &Remote, key: &[u8]) -> BTreeMap<String, Side> {
    let digester = Digester::new(key);
    remote
        .vars
        .iter()
        .map(|(name, value)| {
            let side = match (value, &remote.digest_salt) {
                (RemoteValue::Value(v), _) => Side::Set(Fingerprint::Run(digester.hex(v))),
                (RemoteValue::Digest(d), Some(salt)) => {
                    Side::Set(Fingerprint::Salted { salt: salt.clone(), digest: d.to_hex() })
                }
                (RemoteValue::Digest(_) | RemoteValue::Unreadable, _) => Side::Unreadable,
            };
            (name.clone(), side)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;

    #[test]
    fn a_remote_is_read_as_digests_never_values() {
        let key = vec![7u8; 32];
        let mut remote = Remote::with_values([("A".to_owned(), SecretValue::new("CANARY-a"))].into(), None);
        remote.vars.insert("B".to_owned(), RemoteValue::Unreadable);
        let sides = remote_sides(&remote, &key);
        assert_eq!(sides["A"], Side::Set(Fingerprint::Run(SecretValue::new("CANARY-a").digest(&key))));
        assert_eq!(sides["B"], Side::Unreadable);
        assert!(!format!("{sides:?}").contains("CANARY"));
    }
}
