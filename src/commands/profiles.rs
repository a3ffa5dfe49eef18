//! `profiles`: the project's profiles with their layout, target, tenant and remote, and where the
//! remote comes from; as a table, or as JSON for building a CI matrix.

use std::io::Write;

use super::{Streams, stdout_error};
use crate::cli::{Cli, Format, ProfilesArgs};
use crate::config::{self, Env, Output, working_dir};
use crate::error::{Error, Result, display_path, exit};
use crate::project::{self, Layout, PROJECT_DIR, ProfileRef, Target};
use crate::render::json::{self, FORMAT_VERSION, ProfileListDocument, ProfileListEntry};
use crate::settings::{self, Origin};

/// Runs `profiles`.
pub(super) fn run(
    cli: &Cli,
    env: &Env,
    args: &ProfilesArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
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
    let found = project::list_profiles(&root)?;
    // The profile a command would use here, if one can be told without an error.
    let selected = project::choose(&cwd, config::selection(cli, env)).ok().map(|(p, _)| p.yaml);
    let profiles: Vec<ProfileListEntry> = found
        .into_iter()
        .map(|profile| {
            let is_selected = Some(&profile.yaml) == selected.as_ref();
            entry(cli, env, &root, profile, is_selected)
        })
        .collect();
    let document = ProfileListDocument { format_version: FORMAT_VERSION, kind: "profiles", profiles };
    let written = match args.format {
        Format::Json => json::write_document(streams.out, &document),
        Format::Markdown => markdown(streams.out, &document),
        Format::Text if document.profiles.is_empty() => writeln!(
            streams.out,
            "No profiles in {}/{PROJECT_DIR}/profiles; cloud-secrets init creates one.",
            root.display()
        ),
        Format::Text => table(streams.out, &document, output),
    };
    written.map_err(stdout_error)?;
    Ok(exit::OK)
}

/// One profile's entry; a profile that cannot be read is listed with why.
fn entry(
    cli: &Cli,
    env: &Env,
    root: &std::path::Path,
    found: ProfileRef,
    selected: bool,
) -> ProfileListEntry {
    let mut entry = ProfileListEntry {
        name: found.name.clone(),
        selected,
        layout: match found.layout {
            Layout::Folder => "folder",
            Layout::Flat => "flat",
        },
        profile_yaml: display_path(&found.yaml),
        target: None,
        tenant: None,
        remote: None,
        remote_from: None,
        error: None,
    };
    let loaded = project::load_profile(found, config::selection(cli, env))
        .and_then(|profile| Ok((settings::load(Some(root), &profile, env.home.as_deref())?, profile)));
    let (settings, profile) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            entry.error = Some(e.to_string());
            return entry;
        }
    };
    entry.target = Some(match profile.settings.target {
        Some(Target::Cloud) => "cloud",
        Some(Target::Local) | None => "local",
    });
    entry.tenant = profile.settings.tenant_id().map(str::to_owned);
    (entry.remote, entry.remote_from) = match (&settings.remote, profile.settings.target) {
        (Some(remote), _) => (
            Some(crate::backend::redact_address(&remote.address)),
            Some(match remote.origin {
                Origin::Settings(_) => "cloud-secrets.yaml",
                Origin::ProfileYaml(_) => "profile.yaml",
            }),
        ),
        (None, Some(Target::Cloud)) => (Some("systemprompt cloud".to_owned()), Some("target")),
        (None, _) => (None, None),
    };
    entry
}

/// The profiles as a table for the terminal; `*` marks the one a command would use.
fn table(out: &mut dyn Write, document: &ProfileListDocument, output: &Output) -> std::io::Result<()> {
    let mut rows = vec![["", "PROFILE", "TARGET", "TENANT", "REMOTE"].map(str::to_owned)];
    for p in &document.profiles {
        let mark = if p.selected { "*" } else { " " }.to_owned();
        rows.push(match &p.error {
            Some(error) => {
                [mark, p.name.clone(), "?".to_owned(), "?".to_owned(), format!("unreadable: {error}")]
            }
            None => [
                mark,
                p.name.clone(),
                p.target.unwrap_or("local").to_owned(),
                p.tenant.clone().unwrap_or_else(|| "-".to_owned()),
                p.remote.clone().unwrap_or_else(|| "-".to_owned()),
            ],
        });
    }
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
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
        let line = crate::render::text::safe(line.trim_end()).into_owned();
        if i == 0 {
            writeln!(out, "{}", output.stdout.heading().apply_to(line))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The profiles as a Markdown table.
fn markdown(out: &mut dyn Write, document: &ProfileListDocument) -> std::io::Result<()> {
    let cell = |text: &str| text.replace('|', "\\|").replace('`', "'");
    writeln!(out, "| Profile | Target | Tenant | Remote | Remote from |")?;
    writeln!(out, "| --- | --- | --- | --- | --- |")?;
    for p in &document.profiles {
        writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            cell(&p.name),
            p.target.unwrap_or("?"),
            cell(p.tenant.as_deref().unwrap_or("-")),
            cell(p.remote.as_deref().unwrap_or("-")),
            p.remote_from.unwrap_or("-")
        )?;
    }
    Ok(())
}
