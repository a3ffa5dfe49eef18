//! `profiles`: the project's profiles with their target, tenant and remote.

use super::{Streams, stdout_error};
use crate::cli::Cli;
use crate::config::{Env, Output, working_dir};
use crate::error::{Error, Result, exit};
use crate::project::{self, PROJECT_DIR, Target};

/// Runs `profiles`.
pub(super) fn run(cli: &Cli, env: &Env, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    let cwd = working_dir(cli, env)?;
    let root = project::find_root(&cwd).ok_or_else(|| {
        Error::config(
            format!("no {PROJECT_DIR}/ directory here or in any parent directory"),
            "run cloud-secrets init to create a profile",
        )
    })?;
    let names = project::list_profiles(&root)?;
    let selected =
        env.profile.as_deref().or(if names.len() == 1 { names.first().map(String::as_str) } else { None });
    let mut rows = vec![[
        "".to_owned(),
        "PROFILE".to_owned(),
        "TARGET".to_owned(),
        "TENANT".to_owned(),
        "REMOTE".to_owned(),
    ]];
    for name in &names {
        let dir = root.join(PROJECT_DIR).join("profiles").join(name);
        let mark = if Some(name.as_str()) == selected { "*" } else { " " }.to_owned();
        let row = match project::load_settings(&dir.join("profile.yaml")) {
            Ok(settings) => {
                let target = match settings.target {
                    Some(Target::Cloud) => "cloud",
                    Some(Target::Local) => "local",
                    None => "-",
                };
                let tenant = settings.cloud.tenant_id.unwrap_or_else(|| "-".to_owned());
                let remote = match (&settings.secrets.remote, settings.target) {
                    (Some(remote), _) => crate::backend::redact_address(remote),
                    (None, Some(Target::Cloud)) => "systemprompt cloud".to_owned(),
                    (None, _) => "-".to_owned(),
                };
                [mark, name.clone(), target.to_owned(), tenant, remote]
            }
            Err(e) => {
                [mark, name.clone(), "?".to_owned(), "?".to_owned(), format!("unreadable profile.yaml: {e}")]
            }
        };
        rows.push(row);
    }
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
