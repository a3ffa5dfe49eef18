//! `profiles`: the project's profiles with their target, tenant and remote.

use super::{Streams, stdout_error};
use crate::cli::Cli;
use crate::config::{self, Env, Output, working_dir};
use crate::error::{Error, Result, exit};
use crate::project::{self, PROJECT_DIR, Target};
use crate::settings;

/// Runs `profiles`.
pub(super) fn run(cli: &Cli, env: &Env, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    let cwd = working_dir(cli, env)?;
    let root = project::find_root(&cwd).ok_or_else(|| {
        Error::config(
            format!(
                "no systemprompt project here or in any parent directory (a project root holds {PROJECT_DIR}/ \
                 and one of Cargo.toml, services/ or storage/)"
            ),
            "run cloud-secrets init to create a profile",
        )
    })?;
    let profiles = project::list_profiles(&root)?;
    // The profile a command would use here, if one can be told without an error.
    let selected = project::choose(&cwd, config::selection(cli, env)).ok().map(|(p, _)| p.yaml);
    let mut rows = vec![[
        "".to_owned(),
        "PROFILE".to_owned(),
        "TARGET".to_owned(),
        "TENANT".to_owned(),
        "REMOTE".to_owned(),
    ]];
    let selection = config::selection(cli, env);
    for found in &profiles {
        let mark = if Some(&found.yaml) == selected.as_ref() { "*" } else { " " }.to_owned();
        let name = found.name.clone();
        let row = match project::load_profile(found.clone(), selection)
            .and_then(|profile| Ok((settings::load(Some(&root), &profile, env.home.as_deref())?, profile)))
        {
            Ok((settings, profile)) => {
                let target = match profile.settings.target {
                    Some(Target::Cloud) => "cloud",
                    Some(Target::Local) | None => "local",
                };
                let tenant = profile.settings.tenant_id().unwrap_or("-").to_owned();
                let remote = match (&settings.remote, profile.settings.target) {
                    (Some(remote), _) => crate::backend::redact_address(&remote.address),
                    (None, Some(Target::Cloud)) => "systemprompt cloud".to_owned(),
                    (None, _) => "-".to_owned(),
                };
                [mark, name, target.to_owned(), tenant, remote]
            }
            Err(e) => [mark, name, "?".to_owned(), "?".to_owned(), format!("unreadable: {e}")],
        };
        rows.push(row);
    }
    let names = &profiles;
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut print = || -> std::io::Result<()> {
        if names.is_empty() {
            return writeln!(
                streams.out,
                "No profiles in {}/{PROJECT_DIR}/profiles; cloud-secrets init creates one.",
                root.display()
            );
        }
        for (i, row) in rows.iter().enumerate() {
            let line = format!(
                "{} {:w1$}  {:w2$}  {:w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
            let line = line.trim_end();
            if i == 0 {
                writeln!(streams.out, "{}", output.stdout.heading().apply_to(line))?;
            } else {
                writeln!(streams.out, "{line}")?;
            }
        }
        Ok(())
    };
    print().map_err(stdout_error)?;
    Ok(exit::OK)
}
