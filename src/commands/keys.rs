//! What only `set` and `unset` do: read a value from standard input or the terminal, check the
//! values given, write them into secrets.json (`--save`) or say what it still holds.

use std::io::Write;

use super::scope::{Assignment, Scope, written_names};
use super::{Streams, warn};
use crate::config::{Config, Output};
use crate::desired::{Entry, Source};
use crate::error::{Error, Location, Result};
use crate::policy::{self, VarClass};
use crate::secret::SecretValue;
use crate::validate::Finding;

/// Parses `set` arguments: `KEY=VALUE` each, or one `KEY` with `--stdin`. KEY is a secrets.json
/// key or a variable name; the result carries variable names.
pub(super) fn parse_assignments(args: &[String], stdin: bool) -> Result<Vec<Assignment>> {
    if stdin {
        return match args {
            [key] if !key.contains('=') => Ok(vec![(settable_name(&variable_for(key, 1)?)?, None)]),
            _ => Err(Error::usage(
                "--stdin reads the value of exactly one KEY, given without `=`",
                "cloud-secrets set OPENAI_API_KEY --stdin < key.txt",
            )),
        };
    }
    let mut assignments: Vec<Assignment> = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let (name, value) = match arg.split_once('=') {
            Some((key, value)) if !value.is_empty() => {
                (settable_name(&variable_for(key, i + 1)?)?, SecretValue::new(value))
            }
            Some((key, _)) => {
                let name = variable_for(key, i + 1)?;
                return Err(Error::usage(
                    format!("argument {} of set gives {name} an empty value", i + 1),
                    "give a value, or remove the variable with cloud-secrets unset",
                ));
            }
            // Not repeated: without `=`, the argument may well be a value typed in the wrong place.
            None => {
                return Err(Error::usage(
                    format!("argument {} of set is not KEY=VALUE", i + 1),
                    "write KEY=VALUE, or use --stdin to read one value from standard input",
                ));
            }
        };
        if let Some((seen, _)) =
            assignments.iter().find(|(seen, _)| policy::key_for(seen) == policy::key_for(&name))
        {
            let also = if *seen == name { String::new() } else { format!(" (as {seen})") };
            return Err(Error::usage(
                format!("{name} is given more than once{also}"),
                "give each variable once (a key and its variable name are the same variable)",
            ));
        }
        assignments.push((name, Some(value)));
    }
    Ok(assignments)
}

/// `name`, unless it is a name the runtime also reads for a key that cloud-secrets writes under
/// other names (`KIMI_API_KEY` for `moonshot`): setting it alone would leave the key's own
/// names behind, so the key is asked for instead.
fn settable_name(name: &str) -> Result<String> {
    let key = policy::key_for(name);
    let names = policy::key_names(&key);
    if !names.also_read.contains(&name) {
        return Ok(name.to_owned());
    }
    Err(Error::usage(
        format!(
            "{name} is another name the runtime reads for the key `{key}`, which cloud-secrets writes as {}",
            names.written().join(" and ")
        ),
        format!("set the key instead: cloud-secrets set {key}=..."),
    ))
}

/// The secrets.json keys `unset` arguments name: `anthropic` for `anthropic` and for
/// ANTHROPIC_API_KEY.
pub(super) fn keys_named(args: &[String]) -> Result<Vec<String>> {
    args.iter().enumerate().map(|(i, arg)| Ok(policy::key_for(&variable_for(arg, i + 1)?))).collect()
}

/// Parses `unset` arguments into variable names.
pub(super) fn parse_names(args: &[String]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for (i, key) in args.iter().enumerate() {
        // A key goes under every name `set` and apply write it under (`github`: GITHUB_TOKEN
        // and GITHUB): removing it removes them all.
        for name in written_names(&variable_for(key, i + 1)?) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// The variable a command-line KEY (argument `n`) names: an upper-case name is taken as is, a
/// snake_case key is mapped. Anything else is refused without being shown: a value pasted in
/// the wrong place (a mixed-case token, `sk-...`) must never become a name that is printed and
/// sent.
fn variable_for(key: &str, n: usize) -> Result<String> {
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && crate::validate::is_key_case(key);
    if !valid {
        return Err(Error::usage(
            format!(
                "argument {n}: the part naming the variable is neither a snake_case key nor an UPPER_CASE name \
                 (not shown, in case it is a value)"
            ),
            "use a secrets.json key such as `anthropic` or a variable name such as ANTHROPIC_API_KEY",
        ));
    }
    let is_name = key.chars().any(|c| c.is_ascii_uppercase()) && !key.chars().any(|c| c.is_ascii_lowercase());
    Ok(if is_name { key.to_owned() } else { policy::variable_name(key) })
}

/// Reads the value of a `set KEY --stdin` (hidden when typed on a terminal).
pub(super) fn read_stdin_values(scope: Scope, config: &Config, streams: &mut Streams<'_>) -> Result<Scope> {
    let Scope::Set { assignments, save } = scope else { return Ok(scope) };
    let mut filled = Vec::with_capacity(assignments.len());
    for (name, value) in assignments {
        let value = match value {
            Some(value) => value,
            // Typed on the terminal: read from it directly (standard input is locked by this
            // program), hidden.
            None if config.stdin_terminal
                && let Some(tty) = crate::prompt::terminal() =>
            {
                let _ = write!(streams.err, "Value for {name} (not shown): ");
                let _ = streams.err.flush();
                let line = crate::prompt::read_hidden(&tty)
                    .map_err(|e| Error::io("read", std::path::Path::new("the terminal"), e))?;
                SecretValue::new(line.as_str())
            }
            None => {
                let mut text = zeroize::Zeroizing::new(String::new());
                std::io::Read::read_to_string(&mut streams.input, &mut text)
                    .map_err(|e| Error::io("read", std::path::Path::new("standard input"), e))?;
                let trimmed =
                    text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
                SecretValue::new(trimmed)
            }
        };
        if value.is_empty() {
            return Err(Error::usage(
                format!("the value read for {name} is empty"),
                "pipe the value in, or use cloud-secrets unset to remove the variable",
            ));
        }
        filled.push((name, Some(value)));
    }
    Ok(Scope::Set { assignments: filled, save })
}

/// The checks of the values `set` is given, as if they were written in secrets.json.
pub(super) fn check_given(scope: &Scope, config: &Config) -> Vec<Finding> {
    let Scope::Set { assignments, .. } = scope else { return Vec::new() };
    let given: Vec<Entry> = assignments
        .iter()
        .map(|(name, value)| Entry {
            key: policy::key_for(name),
            value: value.clone(),
            source: Source::CommandLine,
            location: Location::named(format!("set {name}")),
        })
        .collect();
    crate::validate::check_values(&given, config.settings.validation)
}

/// After a `set` or `unset` was applied (or found nothing to change): writes the change into
/// secrets.json with `--save`, or says what it still holds.
pub(super) fn after(scope: &Scope, config: &Config, output: &Output, err: &mut dyn Write) -> Result<()> {
    match scope {
        Scope::Set { assignments, save: true } => save(config, assignments, output, err),
        Scope::Set { assignments, save: false } => {
            warn_unsaved(config, assignments, output, err);
            Ok(())
        }
        Scope::Unset { keys, save: true, .. } => remove(config, keys, output, err),
        _ => Ok(()),
    }
}

/// Removes from secrets.json the keys `unset` was given (each as the file spells it: `MY_TOKEN`
/// for `my_token`), and no other: `unset DATABASE_URL` leaves `internal_database_url`.
fn remove(config: &Config, named: &[String], output: &Output, err: &mut dyn Write) -> Result<()> {
    let path = config.profile.secrets_path();
    let Some(existing) = crate::secrets_file::load(&path).map_err(|e| config.profile.shown(e))? else {
        return Ok(());
    };
    let keys: Vec<String> = existing
        .iter()
        .filter(|e| named.contains(&policy::key_for(&policy::variable_name(&e.key))))
        .map(|e| e.key.clone())
        .collect();
    let removed = crate::secrets_file::remove_keys(&path, &keys).map_err(|e| config.profile.shown(e))?;
    if !output.quiet && !removed.is_empty() {
        let _ = writeln!(err, "Removed {} from {}.", removed.join(", "), config.profile.secrets_display());
    }
    Ok(())
}

/// Writes `set` values into secrets.json, under the key already providing each variable.
fn save(config: &Config, assignments: &[Assignment], output: &Output, err: &mut dyn Write) -> Result<()> {
    let path = config.profile.secrets_path();
    let existing = crate::secrets_file::load(&path).map_err(|e| config.profile.shown(e))?.unwrap_or_default();
    let updates: Vec<(String, &SecretValue)> = assignments
        .iter()
        .filter(|(name, _)| policy::classify(name) == VarClass::Managed && name != policy::CUSTOM_SECRETS_VAR)
        .filter_map(|(name, value)| {
            let key = key_in_file(&existing, name);
            value.as_ref().map(|v| (key, v))
        })
        .collect();
    crate::secrets_file::save_values(&path, &updates).map_err(|e| config.profile.shown(e))?;
    if !output.quiet {
        let keys: Vec<&str> = updates.iter().map(|(k, _)| k.as_str()).collect();
        let _ = writeln!(err, "Saved {} to {}.", keys.join(", "), config.profile.secrets_display());
    }
    Ok(())
}

/// The secrets.json key that provides `name`: `internal_database_url` when it is set, else the
/// first key mapping to it, else the key `name` maps back to.
fn key_in_file(entries: &[crate::secrets_file::FileEntry], name: &str) -> String {
    let internal = entries.iter().find(|e| {
        e.key == policy::INTERNAL_DATABASE_URL_KEY && e.value.as_ref().is_some_and(|v| !v.is_blank())
    });
    if name == "DATABASE_URL"
        && let Some(entry) = internal
    {
        return entry.key.clone();
    }
    entries
        .iter()
        .find(|e| policy::variable_name(&e.key) == name && e.key != policy::INTERNAL_DATABASE_URL_KEY)
        .map_or_else(|| policy::key_for(name), |e| e.key.clone())
}

/// After `set` without `--save`: says which keys secrets.json still has otherwise.
fn warn_unsaved(config: &Config, assignments: &[Assignment], output: &Output, err: &mut dyn Write) {
    let Ok(Some(existing)) = crate::secrets_file::load(&config.profile.secrets_path()) else { return };
    let stale: Vec<&str> = assignments
        .iter()
        .filter(|(name, value)| {
            policy::classify(name) == VarClass::Managed
                && !existing
                    .iter()
                    .any(|e| policy::variable_name(&e.key) == *name && e.value.as_ref() == value.as_ref())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !stale.is_empty() {
        warn(
            output,
            err,
            &format!(
                "{} still holds the old state of {}, so the next plan will show the difference; use --save to \
                 write the new values there too",
                config.profile.secrets_display(),
                stale.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_parse_to_variables_and_a_key_given_twice_is_refused() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let parsed = parse_assignments(&args(&["anthropic=a", "GITHUB_TOKEN=b"]), false).unwrap();
        assert_eq!(
            parsed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["ANTHROPIC_API_KEY", "GITHUB_TOKEN"]
        );
        assert!(parse_assignments(&args(&["github=a", "GITHUB_TOKEN=b"]), false).is_err());
        assert!(parse_assignments(&args(&["sk-ant-value"]), false).is_err());
        assert_eq!(parse_names(&args(&["github"])).unwrap(), ["GITHUB_TOKEN", "GITHUB"]);
    }
}
