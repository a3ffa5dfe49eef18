//! The plan as GitHub-flavoured Markdown, for a pull-request comment: a summary line, a table of
//! the changes with removals and cleanup called out, and long lists folded in `<details>`.

use std::borrow::Cow;
use std::io::{self, Write};

use super::Subject;
use super::json::{Action, Change, CompareResult, PlanDocument, SkipDoc, ValueSource};

/// Lists longer than this are folded.
const FOLD_AFTER: usize = 10;

/// Writes the plan of `document` as Markdown.
pub fn write_plan(w: &mut dyn Write, document: &PlanDocument, subject: Subject<'_>) -> io::Result<()> {
    // Written in many small pieces: into a buffer of a known type, not through `dyn Write` each.
    let w = &mut io::BufWriter::with_capacity(64 * 1024, w);
    let s = document.summary;
    writeln!(
        w,
        "### cloud-secrets plan · profile `{}` · {}",
        code(subject.profile),
        code_span(subject.remote)
    )?;
    writeln!(w)?;
    if document.changes.is_empty() {
        writeln!(
            w,
            "**No changes.** The remote matches the desired state ({} managed variables).",
            s.unchanged
        )?;
    } else {
        writeln!(
            w,
            "**Plan: {} to add, {} to change, {} to remove, {} to clean up.**",
            s.add, s.change, s.remove, s.cleanup
        )?;
    }
    if s.remove + s.cleanup > 0 {
        writeln!(w)?;
        writeln!(
            w,
            "> [!WARNING]\n> This plan deletes {} variable(s) from the remote: {} removal(s) and {} cleanup(s), listed below.",
            s.remove + s.cleanup,
            s.remove,
            s.cleanup
        )?;
    }
    if s.unverified > 0 {
        writeln!(w)?;
        writeln!(
            w,
            "> [!NOTE]\n> {} variable(s) could not be compared with the remote, which lists names only: see the Compared column.",
            s.unverified
        )?;
    }

    let writes: Vec<&Change> =
        document.changes.iter().filter(|c| matches!(c.action, Action::Add | Action::Change)).collect();
    let deletes: Vec<&Change> =
        document.changes.iter().filter(|c| matches!(c.action, Action::Remove | Action::Cleanup)).collect();
    if !writes.is_empty() {
        writeln!(w)?;
        fold(w, writes.len(), &format!("Additions and changes ({})", writes.len()), |w| {
            writeln!(w, "| | Variable | Action | From | Compared |")?;
            writeln!(w, "|---|---|---|---|---|")?;
            for change in &writes {
                let symbol = if change.action == Action::Add { "➕" } else { "✏️" };
                writeln!(
                    w,
                    "| {symbol} | {} | {} | {} | {} |",
                    code_span(&change.variable),
                    action(change.action),
                    origin(change),
                    compared(change.comparison)
                )?;
            }
            Ok(())
        })?;
    }
    if !deletes.is_empty() {
        writeln!(w)?;
        writeln!(w, "#### Removals and cleanup")?;
        writeln!(w)?;
        fold(w, deletes.len(), &format!("Deletions ({})", deletes.len()), |w| {
            writeln!(w, "| | Variable | Action | Why |")?;
            writeln!(w, "|---|---|---|---|")?;
            for change in &deletes {
                let (symbol, why) = match change.action {
                    Action::Remove => ("➖", "on the remote, not in the desired state"),
                    _ if change.class == super::json::Class::Stale => ("🧹", "stale: synced by mistake once"),
                    _ => ("🧹", "system-managed: set by the hosting platform"),
                };
                writeln!(
                    w,
                    "| {symbol} | {} | {} | {why} |",
                    code_span(&change.variable),
                    action(change.action)
                )?;
            }
            Ok(())
        })?;
    }
    if !document.skipped.is_empty() {
        writeln!(w)?;
        details(w, &format!("Skipped keys ({}): never synced", document.skipped.len()), |w| {
            for s in &document.skipped {
                let why = match s.reason {
                    SkipDoc::NotSet => "not set (null, empty or blank)".to_owned(),
                    SkipDoc::SystemManaged => "system-managed".to_owned(),
                    SkipDoc::Stale => "stale".to_owned(),
                    SkipDoc::DeployOwned => "deploy-owned".to_owned(),
                    SkipDoc::Derived => "computed by cloud-secrets".to_owned(),
                    SkipDoc::Ignored => "matches `ignore` in cloud-secrets.yaml".to_owned(),
                    SkipDoc::Shadowed => {
                        format!("`{}` provides it", code(s.shadowed_by.as_deref().unwrap_or_default()))
                    }
                };
                writeln!(w, "- {} → {}: {why}", code_span(&s.key), code_span(&s.variable))?;
            }
            Ok(())
        })?;
    }
    if !document.ignored.is_empty() {
        writeln!(w)?;
        details(
            w,
            &format!(
                "Ignored ({}): `ignore` in cloud-secrets.yaml, left as they are",
                document.ignored.len()
            ),
            |w| {
                for name in &document.ignored {
                    writeln!(w, "- {}", code_span(name))?;
                }
                Ok(())
            },
        )?;
    }
    if !document.not_managed.is_empty() {
        writeln!(w)?;
        details(
            w,
            &format!("Not managed here ({}): deploy-owned, left as they are", document.not_managed.len()),
            |w| {
                for name in &document.not_managed {
                    writeln!(w, "- {}", code_span(name))?;
                }
                Ok(())
            },
        )?;
    }
    if !document.unchanged.is_empty() {
        writeln!(w)?;
        details(w, &format!("Unchanged ({})", document.unchanged.len()), |w| {
            for u in &document.unchanged {
                let note = if u.verified { "" } else { " (not verified: unchanged since the last apply)" };
                writeln!(w, "- {}{note}", code_span(&u.variable))?;
            }
            Ok(())
        })?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "<sub>Values are never shown. Generated by cloud-secrets {}.</sub>",
        env!("CARGO_PKG_VERSION")
    )?;
    w.flush()
}

/// Writes `body` as is, or inside `<details>` when it lists more than [`FOLD_AFTER`] items.
fn fold(
    w: &mut dyn Write,
    items: usize,
    summary: &str,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    if items > FOLD_AFTER { details(w, summary, body) } else { body(w) }
}

fn details(
    w: &mut dyn Write,
    summary: &str,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    writeln!(w, "<details><summary>{}</summary>", html(summary))?;
    writeln!(w)?;
    body(w)?;
    writeln!(w)?;
    writeln!(w, "</details>")
}

fn action(action: Action) -> &'static str {
    match action {
        Action::Add => "add",
        Action::Change => "change",
        Action::Remove => "remove",
        Action::Cleanup => "clean up",
    }
}

fn origin(change: &Change) -> String {
    match (change.source, &change.key) {
        (Some(ValueSource::PreviousVersion), _) => "previous version".to_owned(),
        (Some(ValueSource::Derived), _) | (_, None) => "derived list of custom secrets".to_owned(),
        (Some(ValueSource::Dotenv), Some(_)) => "`.env`".to_owned(),
        (Some(ValueSource::Environment), Some(_)) => "environment".to_owned(),
        (Some(ValueSource::CommandLine), Some(_)) => "command line".to_owned(),
        (_, Some(key)) => format!("secrets.json {}", code_span(key)),
    }
}

fn compared(c: CompareResult) -> &'static str {
    match c {
        CompareResult::Absent => "new",
        CompareResult::Equal => "equal",
        CompareResult::Differs => "differs",
        CompareResult::DriftedOnRemote => "changed on the remote (drift)",
        CompareResult::SameAsLastApply => "not verified: unchanged since the last apply",
        CompareResult::ChangedSinceLastApply => "not verified: changed since the last apply",
        CompareResult::Unverifiable => "not verified: rewritten",
        CompareResult::NotApplicable => "",
    }
}

/// A code span that cannot break out of a table cell or the comment: backticks, pipes and
/// control characters are escaped.
fn code_span(text: &str) -> String {
    format!("`{}`", code(text))
}

fn code(text: &str) -> Cow<'_, str> {
    let plain = |c: char| c != '`' && c != '|' && !c.is_control() && !super::text::is_invisible(c);
    if text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| match c {
            '`' => "'".to_owned(),
            '|' => "\\|".to_owned(),
            c if c.is_control() => c.escape_debug().to_string(),
            c if super::text::safe(&c.to_string()).len() > c.len_utf8() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Writes the report of `plan --all-profiles` as one pull-request comment: a summary table,
/// then each profile's plan folded in its own `<details>`.
pub fn write_profiles(w: &mut dyn Write, document: &super::json::ProfilesDocument) -> io::Result<()> {
    use super::json::ProfileStatus;
    let s = document.summary;
    writeln!(w, "### cloud-secrets plan · {} profiles", s.profiles)?;
    writeln!(w)?;
    writeln!(
        w,
        "**{} with changes, {} without, {} failed, {} without a remote.**",
        s.with_changes, s.without_changes, s.failed, s.no_remote
    )?;
    writeln!(w)?;
    writeln!(w, "| Profile | Remote | Add | Change | Remove | Clean up | Status |")?;
    writeln!(w, "| --- | --- | ---: | ---: | ---: | ---: | --- |")?;
    for entry in &document.profiles {
        let counts = match &entry.plan {
            Some(plan) => {
                let c = plan.summary;
                format!("{} | {} | {} | {}", c.add, c.change, c.remove, c.cleanup)
            }
            None => "  |  |  | ".to_owned(),
        };
        let status = match entry.status {
            ProfileStatus::NoChanges => "no changes",
            ProfileStatus::Changes => "**changes**",
            ProfileStatus::Failed => "**failed**",
            ProfileStatus::NoRemote => "no remote",
        };
        let remote = if entry.remote.is_empty() { String::new() } else { code_span(&entry.remote) };
        writeln!(w, "| {} | {remote} | {counts} | {status} |", code_span(&entry.profile))?;
    }
    for entry in document.profiles.iter().filter(|e| e.status != ProfileStatus::NoRemote) {
        writeln!(w)?;
        let title = match (&entry.plan, entry.status) {
            (_, ProfileStatus::Failed) => format!("Profile {}: failed", entry.profile),
            (Some(plan), _) if plan.changes.is_empty() => format!("Profile {}: no changes", entry.profile),
            (Some(plan), _) => format!("Profile {}: {} change(s)", entry.profile, plan.changes.len()),
            (None, _) => format!("Profile {}", entry.profile),
        };
        details(w, &title, |w| {
            if let Some(error) = &entry.error {
                writeln!(w, "> [!CAUTION]\n> {}", code(&error.message))?;
                if let Some(hint) = &error.hint {
                    writeln!(w, ">\n> {}", code(hint))?;
                }
                writeln!(w)?;
            }
            match &entry.plan {
                Some(plan) => {
                    let subject = Subject { profile: &entry.profile, remote: &entry.remote, whole: true };
                    write_plan(w, plan, subject)
                }
                None => Ok(()),
            }
        })?;
    }
    Ok(())
}

/// Writes a comparison as Markdown: the counts, then a table of the names (values never shown).
pub fn write_compare(w: &mut dyn Write, document: &super::json::CompareDocument) -> io::Result<()> {
    let (a, b, s) = (&document.a.profile, &document.b.profile, document.summary);
    let of = if document.of == "remotes" { "remotes" } else { "desired states" };
    writeln!(w, "### cloud-secrets compare · `{}` · `{}` ({of})", code(a), code(b))?;
    writeln!(w)?;
    writeln!(
        w,
        "**{} the same, {} different, {} only in `{}`, {} only in `{}`, {} not set, {} not comparable.**",
        s.same,
        s.different,
        s.only_in_a,
        code(a),
        s.only_in_b,
        code(b),
        s.not_set,
        s.unknown
    )?;
    writeln!(w)?;
    writeln!(w, "| Variable | `{}` | `{}` | Result |", code(a), code(b))?;
    writeln!(w, "| --- | --- | --- | --- |")?;
    for row in &document.variables {
        let result = row
            .result
            .replace('_', " ")
            .replace("in a", &format!("in {a}"))
            .replace("in b", &format!("in {b}"));
        writeln!(
            w,
            "| {} | {} | {} | {} |",
            code_span(&row.name),
            row.a.replace('_', " "),
            row.b.replace('_', " "),
            code(&result)
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "<sub>Values are never shown: they were compared as digests under a key made for this run.</sub>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_the_table() {
        assert_eq!(code_span("A|B`C\n"), "`A\\|B'C\\n`");
    }
}
