//! `import FILE`, and what `pull` shares with it: variables (a dotenv file's, or a remote's)
//! mapped back to the secrets.json keys they come from with the exact inverse of the
//! key-to-variable rule, a plan of the changes to secrets.json (names only), the question, and
//! the write, which keeps the file's order and formatting.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{Streams, stderr_error, stdout_error, warn};
use crate::cli::ImportArgs;
use crate::color::Palette;
use crate::config::{Config, Output};
use crate::error::{Error, Location, Result, display_path, exit};
use crate::policy::INTERNAL_DATABASE_URL_KEY;
use crate::render::text::safe;
use crate::secret::SecretValue;
use crate::secrets_file::FileEntry;
use changes::{Action, Changes, Conflict, Skip, changes};

mod changes;

/// `import FILE`: the dotenv file's variables into the profile's secrets.json.
pub(super) fn run(
    config: &Config,
    args: &ImportArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    for warning in config.profile.warnings.iter().chain(&config.settings.warnings) {
        warn(output, streams.err, warning);
    }
    let path = config.cwd.join(&args.file);
    // A missing dotenv file reads as empty elsewhere; here it is the input, and a typo.
    if path.symlink_metadata().is_err() {
        return Err(Error::input(
            Location::file(&path),
            "the file does not exist",
            "give the path of a dotenv file (NAME=value lines), such as .env",
        ));
    }
    let mut incoming = BTreeMap::new();
    let mut places = BTreeMap::new();
    for (name, (value, location)) in crate::sources::load_dotenv(&path)? {
        places.insert(name.clone(), location);
        incoming.insert(name, value);
    }
    let shown = display_path(&path);
    let origin = Origin { verb: "Import", shown: &shown, location: Location::file(&path), places };
    into_secrets(config, &incoming, &origin, args.yes, output, streams)
}

/// Where incoming variables come from, as messages name it.
pub(super) struct Origin<'a> {
    /// The summary line's first word: `Import` or `Pull`.
    pub verb: &'static str,
    /// The dotenv file or the remote, as shown.
    pub shown: &'a str,
    /// Where a refusal is reported, unless `places` locates the variable.
    pub location: Location,
    /// Where each variable is written, when the source has lines.
    pub places: BTreeMap<String, Location>,
}

/// Plans `incoming` into the profile's secrets.json, shows the plan, asks (unless `yes`), and
/// writes the keys added or changed.
pub(super) fn into_secrets(
    config: &Config,
    incoming: &BTreeMap<String, SecretValue>,
    origin: &Origin<'_>,
    yes: bool,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    let existing = read_secrets(config)?;
    let changes = changes(incoming, &existing, &config.ignore).map_err(|c| refusal(&c, origin))?;
    // A plan awaiting a question is shown whole, even with --quiet, as apply shows one.
    let will_ask = !changes.is_empty() && !yes;
    let secrets = config.profile.secrets_display();
    let seen =
        Seen { verb: origin.verb, profile: &config.profile.name, origin: origin.shown, secrets: &secrets };
    write_changes(streams.out, &changes, &seen, (&output.stdout, !output.quiet || will_ask))
        .and_then(|()| streams.out.flush())
        .map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => Error::Config {
                message: "the output was closed before the changes could be shown; nothing was written"
                    .to_owned(),
                hint: Some("let the changes be read in full, or redirect them to a file".to_owned()),
            },
            _ => stdout_error(e),
        })?;
    if changes.is_empty() {
        return Ok(exit::OK);
    }
    if !yes {
        confirm(config, origin.verb, streams)?;
    }
    // Written only if secrets.json still holds what the plan was made from.
    if entries(&read_secrets(config)?) != entries(&existing) {
        return Err(Error::Stale {
            message: format!(
                "{} changed while the changes were shown; nothing was written",
                config.profile.secrets_display()
            ),
        });
    }
    let updates = changes.updates(incoming);
    crate::secrets_file::save_values(&config.profile.secrets_path(), &updates)
        .map_err(|e| config.profile.shown(e))?;
    if !output.quiet {
        let keys: Vec<&str> = updates.iter().map(|(key, _)| key.as_str()).collect();
        let _ = writeln!(streams.err, "Saved {} to {}.", keys.join(", "), config.profile.secrets_display());
    }
    Ok(exit::OK)
}

/// The profile's secrets.json; no entry when it does not exist (it is created on write).
fn read_secrets(config: &Config) -> Result<Vec<FileEntry>> {
    let loaded =
        crate::secrets_file::load(&config.profile.secrets_path()).map_err(|e| config.profile.shown(e))?;
    Ok(loaded.unwrap_or_default())
}

/// What a secrets file holds, to tell whether it changed.
fn entries(file: &[FileEntry]) -> Vec<(&str, Option<&SecretValue>)> {
    file.iter().map(|e| (e.key.as_str(), e.value.as_ref())).collect()
}

/// The refusal of two variables that give one key different values: it names both, never a
/// value.
fn refusal(conflict: &Conflict, origin: &Origin<'_>) -> Error {
    let [first, second] = conflict.names.each_ref().map(|n| safe(n));
    let why = if conflict.key == INTERNAL_DATABASE_URL_KEY {
        " (DATABASE_URL comes from internal_database_url when that key is set)"
    } else {
        ""
    };
    Error::input(
        origin.places.get(&conflict.names[1]).unwrap_or(&origin.location).clone(),
        format!(
            "{first} and {second} both give the key `{}`{why}, with different values (not shown); nothing was changed",
            conflict.key
        ),
        format!("make {first} and {second} equal in {}, or remove one of them", safe(origin.shown)),
    )
}

/// Asks before writing secrets.json; refuses without a terminal, and on any answer but yes.
fn confirm(config: &Config, verb: &str, streams: &mut Streams<'_>) -> Result<()> {
    if !config.can_prompt {
        return Err(Error::NotConfirmed {
            message: "not writing: there is no terminal to confirm the changes on (standard input is not a \
                      terminal, or CI is set); nothing was changed"
                .to_owned(),
            hint: Some(
                "review the changes above, then run again with --yes to write them without a prompt"
                    .to_owned(),
            ),
        });
    }
    let question = format!(
        "Write these changes to {} (profile {})?",
        config.profile.secrets_display(),
        config.profile.name
    );
    let watching = crate::interrupt::AtQuestion::start(None);
    let confirmed = crate::prompt::confirm(&question, streams.input, streams.err).map_err(stderr_error)?;
    drop(watching);
    if confirmed {
        Ok(())
    } else {
        Err(Error::NotConfirmed { message: format!("{verb} cancelled; nothing was changed."), hint: None })
    }
}

/// What the plan is between, as shown.
struct Seen<'a> {
    /// The summary line's first word.
    verb: &'static str,
    /// The profile's name.
    profile: &'a str,
    /// The dotenv file or the remote.
    origin: &'a str,
    /// The secrets file.
    secrets: &'a str,
}

/// Writes the changes: the keys with their symbols (`+ ~`), the variables skipped, and a summary
/// line; only the summary line unless `whole`.
fn write_changes(
    w: &mut dyn Write,
    changes: &Changes,
    seen: &Seen<'_>,
    (palette, whole): (&Palette, bool),
) -> io::Result<()> {
    if whole {
        let (heading, dim) = (palette.heading(), palette.dim());
        writeln!(
            w,
            "{} {} {} {} {} {}",
            heading.apply_to("Profile"),
            safe(seen.profile),
            dim.apply_to("· from"),
            safe(seen.origin),
            dim.apply_to("· into"),
            safe(seen.secrets)
        )?;
        writeln!(w)?;
        if !changes.keys.is_empty() {
            writeln!(w, "{}", heading.apply_to("Keys of secrets.json (values are never shown):"))?;
            let width = changes.keys.iter().map(|k| safe(&k.key).len()).max().unwrap_or(0);
            let order = [Action::Add, Action::Change, Action::Unchanged];
            let keys =
                order.iter().flat_map(|action| changes.keys.iter().filter(move |k| k.action == *action));
            for key in keys {
                let (symbol, word, style) = match key.action {
                    Action::Add => ('+', "add", palette.added()),
                    Action::Change => ('~', "change", palette.changed()),
                    Action::Unchanged => (' ', "unchanged", palette.dim()),
                };
                let names: Vec<_> = key.names.iter().map(|n| safe(n)).collect();
                let line =
                    format!("  {symbol} {:width$}  {word:9}  from {}", safe(&key.key), names.join(", "));
                writeln!(w, "{}", style.apply_to(line))?;
            }
            writeln!(w)?;
        }
        if !changes.skipped.is_empty() {
            writeln!(w, "{}", heading.apply_to("Skipped (not written to secrets.json):"))?;
            let width = changes.skipped.iter().map(|(n, _)| safe(n).len()).max().unwrap_or(0);
            for (name, why) in &changes.skipped {
                writeln!(w, "    {:width$}  {}", safe(name), dim.apply_to(skip_reason(*why)))?;
            }
            writeln!(w)?;
        }
    }
    let (unchanged, skipped) = (changes.count(Action::Unchanged), changes.skipped.len());
    let summary = if changes.is_empty() {
        format!("No changes to {}: {unchanged} unchanged, {skipped} skipped.", safe(seen.secrets))
    } else {
        let (add, change) = (changes.count(Action::Add), changes.count(Action::Change));
        format!("{}: {add} to add, {change} to change, {unchanged} unchanged, {skipped} skipped.", seen.verb)
    };
    writeln!(w, "{}", palette.heading().apply_to(summary))
}

fn skip_reason(why: Skip) -> &'static str {
    match why {
        Skip::SystemManaged => "system-managed: the hosting platform sets it",
        Skip::Stale => "stale: must no longer be synced",
        Skip::DeployOwned => "deploy-owned: the platform's deploy step writes it",
        Skip::Derived => "computed by cloud-secrets from the other keys",
        Skip::NotAVariable => "not an UPPER_CASE variable name: no secrets.json key maps to it",
        Skip::Ignored => "matches `ignore` in cloud-secrets.yaml",
        Skip::NotSet => "not set (empty or blank)",
    }
}
