//! `pull`: the remote's values into the profile's secrets.json, planned, confirmed and written as
//! `import` does. A remote whose values cannot be read (the systemprompt cloud lists names, or
//! digests) is listed by name, and nothing is pulled.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::import::{Origin, into_secrets};
use super::stages::describe;
use super::{Streams, stdout_error};
use crate::backend::Access;
use crate::cli::PullArgs;
use crate::config::{Config, Env, Output, RemoteConfig};
use crate::error::{Error, Location, Result};
use crate::remote::{Remote, RemoteValue};
use crate::render::text::safe;
use crate::secret::SecretValue;

/// `pull`: fetch the remote, then plan its values into secrets.json.
pub(super) fn run(
    config: &Config,
    env: &Env,
    args: &PullArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    // The remote is chosen as `plan` chooses it: --remote, cloud-secrets.yaml, the profile's target.
    let remote = RemoteConfig::for_reading(&args.remote, streams.diagnostics.clone(), env, config)?;
    describe(config, &remote, output, streams.err);
    let fetched = remote.spec.open(Access::Read, &remote.connection)?.fetch()?;
    let Some(values) = values(&fetched) else {
        return Err(names_only(config, &remote, &fetched, output, streams.out).map_err(stdout_error)?);
    };
    let origin = Origin {
        verb: "Pull",
        shown: remote.display(),
        location: Location::named(remote.display()),
        places: BTreeMap::new(),
    };
    into_secrets(config, &values, &origin, args.yes, output, streams)
}

/// The remote's values, when it gives every one of them.
fn values(remote: &Remote) -> Option<BTreeMap<String, SecretValue>> {
    remote
        .vars
        .iter()
        .map(|(name, value)| match value {
            RemoteValue::Value(value) => Some((name.clone(), value.clone())),
            RemoteValue::Digest(_) | RemoteValue::Unreadable => None,
        })
        .collect()
}

/// Lists the names a remote holds whose values cannot be read (unless `--quiet`), and returns
/// the error that says so.
fn names_only(
    config: &Config,
    remote: &RemoteConfig,
    fetched: &Remote,
    output: &Output,
    out: &mut dyn Write,
) -> io::Result<Error> {
    let what = if fetched.digest_salt.is_some() { "names and digests" } else { "names" };
    if !output.quiet {
        let palette = &output.stdout;
        writeln!(
            out,
            "{} {} {} {}",
            palette.heading().apply_to("Profile"),
            safe(&config.profile.name),
            palette.dim().apply_to("· remote"),
            safe(remote.display())
        )?;
        writeln!(out)?;
        let heading = format!("On the remote ({what} only: their values cannot be read):");
        writeln!(out, "{}", palette.heading().apply_to(heading))?;
        for name in fetched.vars.keys() {
            writeln!(out, "    {}", safe(name))?;
        }
        writeln!(out)?;
    }
    Ok(Error::Remote {
        message: format!(
            "{} lists {what} only: values cannot be read from it, so nothing was pulled; {} was not changed",
            safe(remote.display()),
            config.profile.secrets_display()
        ),
        hint: Some(
            "pull reads values from the local store (file:), Vault/OpenBao, AWS Secrets Manager and SSM \
             Parameter Store; for this remote, secrets.json stays the source of the values"
                .to_owned(),
        ),
    })
}
