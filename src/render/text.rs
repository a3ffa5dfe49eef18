//! The terminal rendering of a plan: the changes with their symbols (`+ ~ - !`), the keys skipped
//! and not managed here, a unified diff of redacted views of the remote and the desired state,
//! and one summary line. No value is ever written: the redacted views are built from the plan,
//! which holds none.

use std::borrow::Cow;
use std::io::{self, Write};

use similar::{ChangeTag, TextDiff};

use super::{Detail, Subject};
use crate::color::Palette;
use crate::desired::{SkipReason, Source};
use crate::plan::{CleanupReason, Comparison, Plan, Summary, Write as PlanWrite};

const REDACTED: &str = "<redacted>";

/// Writes a whole plan.
pub fn write_plan(
    w: &mut dyn Write,
    plan: &Plan,
    subject: Subject<'_>,
    palette: &Palette,
    detail: Detail,
) -> io::Result<()> {
    if detail == Detail::Summary {
        return write_summary(w, plan, subject, palette);
    }
    writeln!(
        w,
        "{} {} {} {}",
        palette.heading().apply_to("Profile"),
        safe(subject.profile),
        palette.dim().apply_to("· remote"),
        safe(subject.remote)
    )?;
    writeln!(w)?;

    if !plan.is_empty() {
        writeln!(w, "{}", palette.heading().apply_to("Changes (values are never shown):"))?;
        let width = name_width(plan);
        for write in &plan.add {
            let line = format!("  + {:width$}  add       {}", safe(&write.name), origin(write));
            writeln!(w, "{}", palette.added().apply_to(line))?;
        }
        for write in &plan.change {
            let why = change_reason(write.comparison);
            let line = format!("  ~ {:width$}  change    {}: {why}", safe(&write.name), origin(write));
            writeln!(w, "{}", palette.changed().apply_to(line))?;
        }
        for name in &plan.remove {
            let line =
                format!("  - {:width$}  remove    on the remote, not in the desired state", safe(name));
            writeln!(w, "{}", palette.removed().apply_to(line))?;
        }
        for cleanup in &plan.cleanup {
            let line =
                format!("  ! {:width$}  clean up  {}", safe(&cleanup.name), cleanup_reason(cleanup.reason));
            writeln!(w, "{}", palette.cleanup().apply_to(line))?;
        }
        writeln!(w)?;
    }

    if detail == Detail::Verbose && !plan.unchanged.is_empty() {
        writeln!(w, "{}", palette.heading().apply_to("Unchanged:"))?;
        let width = plan.unchanged.iter().map(|w| w.name.len()).max().unwrap_or(0);
        for write in &plan.unchanged {
            writeln!(w, "    {:width$}  {}", safe(&write.name), palette.dim().apply_to(origin(write)))?;
        }
        writeln!(w)?;
    }

    let unverified: Vec<&PlanWrite> =
        plan.unchanged.iter().filter(|w| w.comparison == Comparison::SameAsLastApply).collect();
    if !unverified.is_empty() {
        writeln!(
            w,
            "{}",
            palette.heading().apply_to(
                "Not verified (the remote lists names only; unchanged since the last apply, so not rewritten):"
            )
        )?;
        for write in unverified {
            writeln!(w, "    {}", safe(&write.name))?;
        }
        writeln!(w)?;
    }

    if !plan.skipped.is_empty() {
        writeln!(w, "{}", palette.heading().apply_to("Skipped (never synced):"))?;
        let rows: Vec<(String, String)> = plan
            .skipped
            .iter()
            .map(|s| {
                let kept = s.reason == SkipReason::NotSet && plan.kept.contains(&s.name);
                (format!("{} -> {}", safe(&s.key), safe(&s.name)), skip_reason(&s.reason, kept))
            })
            .collect();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, reason) in rows {
            writeln!(w, "    {key:width$}  {}", palette.dim().apply_to(reason))?;
        }
        writeln!(w)?;
    }

    if !plan.ignored.is_empty() {
        writeln!(
            w,
            "{}",
            palette.heading().apply_to("Ignored (`ignore` in cloud-secrets.yaml, left as they are):")
        )?;
        for name in &plan.ignored {
            writeln!(w, "    {}", safe(name))?;
        }
        writeln!(w)?;
    }

    if !plan.unmanaged.is_empty() {
        writeln!(w, "{}", palette.heading().apply_to("Not managed here (deploy-owned, left as they are):"))?;
        for name in &plan.unmanaged {
            writeln!(w, "    {}", safe(name))?;
        }
        writeln!(w)?;
    }

    if !plan.is_empty() {
        write_diff(w, plan, subject, palette)?;
        writeln!(w)?;
    }
    write_summary(w, plan, subject, palette)
}

/// The closing line: the counts, or that there is nothing to do.
fn write_summary(w: &mut dyn Write, plan: &Plan, subject: Subject<'_>, palette: &Palette) -> io::Result<()> {
    if plan.is_empty() && !subject.whole {
        writeln!(
            w,
            "{} Nothing to do on {}.",
            palette.heading().apply_to("No changes."),
            safe(subject.remote)
        )
    } else if plan.is_empty() {
        let count = plan.unchanged.len();
        let noun = if count == 1 { "variable" } else { "variables" };
        writeln!(
            w,
            "{} {} matches profile {} ({count} managed {noun}).",
            palette.heading().apply_to("No changes."),
            safe(subject.remote),
            safe(subject.profile)
        )
    } else {
        writeln!(w, "{}", palette.heading().apply_to(summary_line(plan.summary())))
    }
}

/// `Plan: 2 to add, 1 to change, 1 to remove, 1 to clean up.`
pub fn summary_line(s: Summary) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to remove, {} to clean up.",
        s.add, s.change, s.remove, s.cleanup
    )
}

/// What apply reports once the changes are made.
pub fn write_applied(
    w: &mut dyn Write,
    s: Summary,
    remote: &str,
    revision: Option<u64>,
    palette: &Palette,
) -> io::Result<()> {
    let version = revision.map(|r| format!(" (now at version {r})")).unwrap_or_default();
    let remote = safe(remote);
    writeln!(
        w,
        "{} {} added, {} changed, {} removed, {} cleaned up on {remote}{version}.",
        palette.heading().apply_to("Applied:"),
        s.add,
        s.change,
        s.remove,
        s.cleanup
    )
}

/// What apply reports when some removals failed: what was done, and what was not.
pub fn write_partly_applied(
    w: &mut dyn Write,
    plan: &Plan,
    failed: &[(String, String)],
    remote: &str,
    palette: &Palette,
) -> io::Result<()> {
    let s = plan.summary();
    let failed_removals = plan.remove.iter().filter(|n| failed.iter().any(|(f, _)| f == *n)).count();
    let failed_cleanups = failed.len() - failed_removals;
    let remote = safe(remote);
    writeln!(
        w,
        "{} {} added, {} changed, {} of {} removed, {} of {} cleaned up on {remote}.",
        palette.heading().apply_to("Applied in part:"),
        s.add,
        s.change,
        s.remove - failed_removals,
        s.remove,
        s.cleanup - failed_cleanups,
        s.cleanup,
    )?;
    writeln!(w, "{}", palette.removed().apply_to("Not removed (still on the remote):"))?;
    for (name, why) in failed {
        writeln!(w, "    {}  {}", safe(name), palette.dim().apply_to(why))?;
    }
    Ok(())
}

/// A unified diff of the redacted remote and the redacted desired state.
fn write_diff(w: &mut dyn Write, plan: &Plan, subject: Subject<'_>, palette: &Palette) -> io::Result<()> {
    let (remote_view, desired_view) = redacted_views(plan);
    let diff = TextDiff::from_lines(&remote_view, &desired_view);
    writeln!(w, "{}", palette.heading().apply_to(format!("--- remote   {}", safe(subject.remote))))?;
    writeln!(w, "{}", palette.heading().apply_to(format!("+++ desired  profile {}", safe(subject.profile))))?;
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        writeln!(w, "{}", palette.hunk().apply_to(hunk.header()))?;
        for change in hunk.iter_changes() {
            let text = change.value().trim_end_matches('\n');
            match change.tag() {
                ChangeTag::Equal => writeln!(w, "{}", palette.dim().apply_to(format!(" {text}")))?,
                ChangeTag::Delete => writeln!(w, "{}", palette.removed().apply_to(format!("-{text}")))?,
                ChangeTag::Insert => writeln!(w, "{}", palette.added().apply_to(format!("+{text}")))?,
            }
        }
    }
    Ok(())
}

/// One line per variable, sorted by name, values replaced by a mask. A changed variable's two
/// lines differ in their annotation only, so the diff shows it changed without showing a value.
fn redacted_views(plan: &Plan) -> (String, String) {
    let mut remote: Vec<(&str, &str)> = Vec::new();
    let mut desired: Vec<(&str, &str)> = Vec::new();
    for write in &plan.add {
        desired.push((&write.name, ""));
    }
    for write in &plan.change {
        remote.push((&write.name, " (current value)"));
        desired.push((&write.name, " (new value)"));
    }
    for write in &plan.unchanged {
        let note = if write.comparison == Comparison::SameAsLastApply { " (not verified)" } else { "" };
        remote.push((&write.name, note));
        desired.push((&write.name, note));
    }
    for name in &plan.remove {
        remote.push((name, ""));
    }
    for cleanup in &plan.cleanup {
        remote.push((&cleanup.name, ""));
    }
    for name in &plan.kept {
        remote.push((name, " (not set here: kept)"));
        desired.push((name, " (not set here: kept)"));
    }
    for name in &plan.unmanaged {
        remote.push((name, " (deploy-owned)"));
        desired.push((name, " (deploy-owned)"));
    }
    for name in &plan.ignored {
        remote.push((name, " (ignored)"));
        desired.push((name, " (ignored)"));
    }
    let render = |mut lines: Vec<(&str, &str)>| {
        lines.sort_unstable();
        lines.iter().map(|(name, note)| format!("{} = {REDACTED}{note}\n", safe(name))).collect::<String>()
    };
    (render(remote), render(desired))
}

/// A name fit for a terminal: control characters (a newline, an escape sequence) in a name read
/// from a remote are shown escaped, so they cannot forge or hide lines of the plan.
pub(crate) fn safe(name: &str) -> Cow<'_, str> {
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        Cow::Owned(
            name.chars()
                .map(|c| {
                    if is_invisible(c) {
                        c.escape_unicode().to_string()
                    } else {
                        c.escape_debug().to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(name)
    }
}

/// Characters that change how text looks without showing: zero-width characters and
/// bidirectional controls, which could make one name look like another.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

fn name_width(plan: &Plan) -> usize {
    let names = plan
        .add
        .iter()
        .chain(&plan.change)
        .map(|w| w.name.len())
        .chain(plan.remove.iter().map(String::len))
        .chain(plan.cleanup.iter().map(|c| c.name.len()));
    names.max().unwrap_or(0)
}

fn origin(write: &PlanWrite) -> String {
    match (write.source, &write.key) {
        (Source::PreviousVersion, _) => "as in the previous version".to_owned(),
        (Source::Derived, _) | (_, None) => "derived: the sorted list of custom secret names".to_owned(),
        (Source::File, Some(key)) => format!("from secrets.json `{key}`"),
        (Source::DotEnv, Some(key)) => format!("from .env ({}, overrides secrets.json)", read_names(key)),
        (Source::Environment, Some(key)) => format!("from the environment ({})", read_names(key)),
        (Source::CommandLine, Some(_)) => "given to set".to_owned(),
    }
}

/// The variables the runtime reads a key from (the first that is set gave the value).
fn read_names(key: &str) -> String {
    let names = crate::policy::key_names(key);
    std::iter::once(names.runtime.as_str())
        .chain(names.also_read.iter().copied())
        .map(safe)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn change_reason(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::DriftedOnRemote => "changed on the remote outside cloud-secrets (drift)",
        Comparison::ChangedSinceLastApply => {
            "changed since the last apply (the remote's value cannot be read)"
        }
        Comparison::Unverifiable => {
            "cannot be verified (the remote lists names only and there is no record of the last apply): will be rewritten"
        }
        Comparison::Absent | Comparison::Equal | Comparison::Differs | Comparison::SameAsLastApply => {
            "the value differs"
        }
    }
}

fn cleanup_reason(reason: CleanupReason) -> &'static str {
    match reason {
        CleanupReason::SystemManaged => "system-managed: set by the hosting platform, never synced",
        CleanupReason::Stale => "stale: synced by mistake once, no longer used",
    }
}

fn skip_reason(reason: &SkipReason, kept: bool) -> String {
    match reason {
        SkipReason::NotSet if kept => "not set (null, empty or blank); the remote's value is kept".to_owned(),
        SkipReason::NotSet => "not set (null, empty or blank)".to_owned(),
        SkipReason::SystemManaged => "system-managed: the hosting platform sets it".to_owned(),
        SkipReason::Stale => "stale: must no longer be synced".to_owned(),
        SkipReason::DeployOwned => "deploy-owned: the platform's deploy step writes it".to_owned(),
        SkipReason::Derived => "computed by cloud-secrets from the other keys".to_owned(),
        SkipReason::ShadowedBy(key) => format!("`{key}` is set and provides DATABASE_URL"),
        SkipReason::Ignored => "matches `ignore` in cloud-secrets.yaml".to_owned(),
    }
}

/// Writes the summary table of `plan --all-profiles`.
pub fn write_profiles_summary(
    w: &mut dyn Write,
    document: &super::json::ProfilesDocument,
    palette: &Palette,
) -> io::Result<()> {
    use super::json::ProfileStatus;
    let s = document.summary;
    let mut rows =
        vec![["PROFILE", "REMOTE", "ADD", "CHANGE", "REMOVE", "CLEAN UP", "STATUS"].map(str::to_owned)];
    for entry in &document.profiles {
        let counts = entry.plan.as_ref().map(|p| p.summary);
        let count = |pick: fn(&super::json::Summary) -> usize| {
            counts.map(|c| pick(&c).to_string()).unwrap_or_default()
        };
        let status = match entry.status {
            ProfileStatus::NoChanges => "no changes",
            ProfileStatus::Changes => "changes",
            ProfileStatus::Failed => "failed",
            ProfileStatus::NoRemote => "no remote",
        };
        rows.push([
            safe(&entry.profile).into_owned(),
            safe(&entry.remote).into_owned(),
            count(|c| c.add),
            count(|c| c.change),
            count(|c| c.remove),
            count(|c| c.cleanup),
            status.to_owned(),
        ]);
    }
    let widths: Vec<usize> =
        (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    writeln!(
        w,
        "{}",
        palette.heading().apply_to(format!(
            "Profiles: {} with changes, {} without, {} failed, {} without a remote.",
            s.with_changes, s.without_changes, s.failed, s.no_remote
        ))
    )?;
    for row in &rows {
        let line = format!(
            "  {:w0$}  {:w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {:>w5$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5]
        );
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes a comparison for the terminal: a line per name, then the counts.
pub fn write_compare(
    w: &mut dyn Write,
    document: &super::json::CompareDocument,
    palette: &Palette,
) -> io::Result<()> {
    let (a, b, s) = (safe(&document.a.profile), safe(&document.b.profile), document.summary);
    let of = if document.of == "remotes" { "remotes" } else { "desired states" };
    writeln!(
        w,
        "{}",
        palette.heading().apply_to(format!("Compare {a} · {b} ({of}); values are never shown"))
    )?;
    let width = document.variables.iter().map(|r| safe(&r.name).chars().count()).max().unwrap_or(8).max(8);
    let (wa, wb) = (a.chars().count().max(10), b.chars().count().max(10));
    writeln!(w, "  {:width$}  {a:wa$}  {b:wb$}  RESULT", "VARIABLE")?;
    for row in &document.variables {
        let result = match row.result {
            "only_in_a" => format!("only in {a}"),
            "only_in_b" => format!("only in {b}"),
            "unknown" => "not comparable".to_owned(),
            other => other.replace('_', " "),
        };
        let line = format!(
            "  {:width$}  {:wa$}  {:wb$}  {result}",
            safe(&row.name),
            row.a.replace('_', " "),
            row.b.replace('_', " ")
        );
        writeln!(w, "{}", line.trim_end())?;
    }
    writeln!(
        w,
        "{} the same, {} different, {} only in {a}, {} only in {b}, {} not set, {} not comparable.",
        s.same, s.different, s.only_in_a, s.only_in_b, s.not_set, s.unknown
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Cleanup;

    fn write(name: &str, key: &str) -> PlanWrite {
        PlanWrite {
            name: name.into(),
            key: Some(key.into()),
            source: Source::File,
            comparison: Comparison::Differs,
        }
    }

    fn render(plan: &Plan, detail: Detail) -> String {
        let mut out = Vec::new();
        let subject = Subject { profile: "prod", remote: "file:store.json", whole: true };
        write_plan(&mut out, plan, subject, &Palette::plain(), detail).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_changed_key_is_visible_in_the_diff() {
        let plan = Plan {
            change: vec![write("OPENAI_API_KEY", "openai")],
            unchanged: vec![write("GEMINI_API_KEY", "gemini")],
            ..Plan::default()
        };
        let out = render(&plan, Detail::Normal);
        assert!(
            out.contains("  ~ OPENAI_API_KEY  change    from secrets.json `openai`: the value differs"),
            "{out}"
        );
        assert!(
            out.contains(
                "-OPENAI_API_KEY = <redacted> (current value)\n+OPENAI_API_KEY = <redacted> (new value)"
            ),
            "{out}"
        );
        assert!(out.contains(" GEMINI_API_KEY = <redacted>\n"), "{out}");
        assert!(out.ends_with("Plan: 0 to add, 1 to change, 0 to remove, 0 to clean up.\n"), "{out}");
    }

    #[test]
    fn control_characters_in_remote_names_are_escaped() {
        let plan = Plan { remove: vec!["X\n  + FAKE\u{1b}[8m".into()], ..Plan::default() };
        let out = render(&plan, Detail::Normal);
        assert!(out.contains("  - X\\n  + FAKE\\u{1b}[8m  remove"), "{out}");
        assert!(!out.contains('\u{1b}'));
        assert!(!out.contains("\n  + FAKE"));
    }

    #[test]
    fn invisible_characters_in_names_are_shown() {
        assert_eq!(safe("OPENAI\u{200B}_API_KEY"), "OPENAI\\u{200b}_API_KEY");
        assert_eq!(safe("A\u{202E}B"), "A\\u{202e}B");
        assert_eq!(safe("PLAIN"), "PLAIN");
    }

    #[test]
    fn summary_detail_is_one_line() {
        let plan = Plan {
            remove: vec!["OLD".into()],
            cleanup: vec![Cleanup { name: "FLY_APP_NAME".into(), reason: CleanupReason::SystemManaged }],
            ..Plan::default()
        };
        assert_eq!(
            render(&plan, Detail::Summary),
            "Plan: 0 to add, 0 to change, 1 to remove, 1 to clean up.\n"
        );
        assert_eq!(
            render(&Plan::default(), Detail::Summary),
            "No changes. file:store.json matches profile prod (0 managed variables).\n"
        );
    }
}
