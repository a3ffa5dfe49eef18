//! The terminal rendering of a plan: the changes with their symbols (`+ ~ - !`), the keys skipped
//! and not managed here, a unified diff of redacted views of the remote and the desired state,
//! and one summary line. No value is ever written: the redacted views are built from the plan,
//! which holds none.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};

use similar::DiffOp;

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
        if palette.is_plain() {
            write_writes_plain(w, plan, width)?;
        } else {
            for write in &plan.add {
                let line = format!("  + {:width$}  add       {}", safe(&write.name), Origin(write));
                writeln!(w, "{}", palette.added().apply_to(line))?;
            }
            for write in &plan.change {
                let why = change_reason(write.comparison);
                let line = format!("  ~ {:width$}  change    {}: {why}", safe(&write.name), Origin(write));
                writeln!(w, "{}", palette.changed().apply_to(line))?;
            }
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
            writeln!(w, "    {:width$}  {}", safe(&write.name), palette.dim().apply_to(Origin(write)))?;
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

/// A unified diff of the redacted remote and the redacted desired state: a line per variable on
/// each side, sorted by name, values replaced by a mask. A changed variable's two lines differ in
/// their annotation only, so the diff shows it changed without showing a value.
///
/// Written in one walk over the plan's lists merged by name (each is sorted, and a name is in
/// one list only): no view of either side is built, nothing is sorted and no line is compared.
/// Lines are grouped into hunks with three lines of context as `similar` groups an edit script
/// (between two lines the same on both sides, the remote's lines are removed before the desired
/// state's are added), under similar's hunk header. A plan whose lists are not in order, or name
/// a variable twice (only a saved plan written by hand can be), is written from sorted views
/// instead ([`write_diff_by_views`]).
fn write_diff(w: &mut dyn Write, plan: &Plan, subject: Subject<'_>, palette: &Palette) -> io::Result<()> {
    let lists = lists(plan);
    let Some(order) = merged(&lists) else { return write_diff_by_views(w, plan, subject, palette) };
    // A line is written in several pieces: into a buffer of a known type, not through `dyn Write`
    // for each piece.
    let w = &mut io::BufWriter::with_capacity(64 * 1024, w);
    write_diff_header(w, subject, palette)?;
    let mut hunks = Hunks::new(w, palette);
    let mut at = [0usize; 8];
    for list in order {
        let (names, line) = lists[usize::from(list)];
        let item = at[usize::from(list)];
        at[usize::from(list)] += 1;
        hunks.take(names.name(item), line(names.item(item)))?;
    }
    hunks.finish()?;
    w.flush()
}

/// The additions' and changes' lines, uncoloured, written as bytes into a buffer of a known type
/// (there may be a hundred thousand): each the name padded to `width` characters, the action and
/// where the value comes from.
fn write_writes_plain(w: &mut dyn Write, plan: &Plan, width: usize) -> io::Result<()> {
    let w = &mut io::BufWriter::with_capacity(64 * 1024, w);
    let line = |w: &mut io::BufWriter<&mut dyn Write>, sign: &[u8], write: &PlanWrite, action: &[u8]| {
        w.write_all(sign)?;
        let name = safe(&write.name);
        w.write_all(name.as_bytes())?;
        for _ in name.chars().count()..width {
            w.write_all(b" ")?;
        }
        w.write_all(action)?;
        Origin(write).write_to(w)
    };
    for write in &plan.add {
        line(w, b"  + ", write, b"  add       ")?;
        w.write_all(b"\n")?;
    }
    for write in &plan.change {
        line(w, b"  ~ ", write, b"  change    ")?;
        w.write_all(b": ")?;
        w.write_all(change_reason(write.comparison).as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// The diff's first two lines: which side is which.
fn write_diff_header(w: &mut impl Write, subject: Subject<'_>, palette: &Palette) -> io::Result<()> {
    writeln!(w, "{}", palette.heading().apply_to(format!("--- remote   {}", safe(subject.remote))))?;
    writeln!(w, "{}", palette.heading().apply_to(format!("+++ desired  profile {}", safe(subject.profile))))
}

/// The edit script from `old` to `new`, both sorted, found by comparing their lines.
fn edit_script(old: &[(&str, &str)], new: &[(&str, &str)]) -> Vec<DiffOp> {
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    // The run of removals and additions since the last equal line.
    let flush = |ops: &mut Vec<DiffOp>,
                 (del_from, del_to): (usize, usize),
                 (ins_from, ins_to): (usize, usize)| {
        if del_to > del_from {
            ops.push(DiffOp::Delete { old_index: del_from, old_len: del_to - del_from, new_index: ins_from });
        }
        if ins_to > ins_from {
            ops.push(DiffOp::Insert { old_index: del_to, new_index: ins_from, new_len: ins_to - ins_from });
        }
    };
    // Most lines of the two views are the same strings of the plan: compared by address first.
    let same = |a: &str, b: &str| std::ptr::eq(a, b) || a == b;
    let (mut del_from, mut ins_from) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if same(a.0, b.0) && same(a.1, b.1) => {
                flush(&mut ops, (del_from, i), (ins_from, j));
                match ops.last_mut() {
                    Some(DiffOp::Equal { old_index, len, .. }) if *old_index + *len == i => *len += 1,
                    _ => ops.push(DiffOp::Equal { old_index: i, new_index: j, len: 1 }),
                }
                (i, j) = (i + 1, j + 1);
                (del_from, ins_from) = (i, j);
            }
            (Some(a), Some(b)) if same(a.0, b.0) => (i, j) = (i + 1, j + 1),
            (Some(a), Some(b)) if a < b => i += 1,
            (Some(_), None) => i += 1,
            _ => j += 1,
        }
    }
    flush(&mut ops, (del_from, i), (ins_from, j));
    ops
}

/// The redacted views of the remote and the desired state, sorted.
fn redacted_views(plan: &Plan) -> (View<'_>, View<'_>) {
    // Sized up front: a hundred thousand lines each.
    let both = plan.change.len()
        + plan.unchanged.len()
        + plan.kept.len()
        + plan.unmanaged.len()
        + plan.ignored.len();
    let mut remote: Vec<(&str, &str)> = Vec::with_capacity(both + plan.remove.len() + plan.cleanup.len());
    let mut desired: Vec<(&str, &str)> = Vec::with_capacity(both + plan.add.len());
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
    // Each list of the plan is sorted already: a stable sort merges the runs instead of sorting
    // anew.
    remote.sort();
    desired.sort();
    (remote, desired)
}

/// The diff written from the two views, sorted, and their edit script, grouped into hunks by
/// `similar`: for a plan whose lists are out of order or name a variable twice (a saved plan
/// written by hand), which [`write_diff`] cannot merge. For the planner's plans it writes what
/// `write_diff` writes (a proptest holds the two to it).
fn write_diff_by_views(
    w: &mut dyn Write,
    plan: &Plan,
    subject: Subject<'_>,
    palette: &Palette,
) -> io::Result<()> {
    // A line is written in several pieces: into a buffer of a known type, not through `dyn Write`
    // for each piece.
    let w = &mut io::BufWriter::with_capacity(64 * 1024, w);
    let (remote, desired) = redacted_views(plan);
    let script = edit_script(&remote, &desired);
    write_diff_header(w, subject, palette)?;
    for hunk in similar::group_diff_ops(script, 3) {
        writeln!(w, "{}", palette.hunk().apply_to(similar::udiff::UnifiedHunkHeader::new(&hunk)))?;
        for op in &hunk {
            let (sign, lines) = match *op {
                DiffOp::Equal { old_index, len, .. } => (' ', &remote[old_index..old_index + len]),
                DiffOp::Delete { old_index, old_len, .. } => ('-', &remote[old_index..old_index + old_len]),
                DiffOp::Insert { new_index, new_len, .. } => ('+', &desired[new_index..new_index + new_len]),
                DiffOp::Replace { .. } => unreachable!("the edit script has no replacements"),
            };
            for &(name, note) in lines {
                DiffLine { sign, name, note }.write(w, palette)?;
            }
        }
    }
    w.flush()
}

/// A redacted view: a variable's name and its line's annotation, a line each.
type View<'a> = Vec<(&'a str, &'a str)>;

/// Lines of context around a change.
const CONTEXT: usize = 3;

/// What a variable of the plan is in the diff.
#[derive(Clone, Copy)]
enum Line<'a> {
    /// A line of the desired state only.
    Added,
    /// A line of the remote only.
    Removed,
    /// A line on each side, different in their annotation only.
    Changed,
    /// The same line on both sides, with this annotation.
    Same(&'a str),
}

/// A line of a view: a variable's name and its line's annotation.
type ViewLine<'a> = (&'a str, &'a str);

/// What each of a plan's lists' variables is in the diff.
type LineOf = for<'x> fn(Item<'x>) -> Line<'x>;

/// The plan's lists, with what their variables are in the diff.
fn lists(plan: &Plan) -> [(Names<'_>, LineOf); 8] {
    fn unchanged(item: Item<'_>) -> Line<'static> {
        match item {
            Item::Write(w) if w.comparison == Comparison::SameAsLastApply => Line::Same(" (not verified)"),
            _ => Line::Same(""),
        }
    }
    [
        (Names::Writes(&plan.add), |_| Line::Added),
        (Names::Writes(&plan.change), |_| Line::Changed),
        (Names::Writes(&plan.unchanged), unchanged),
        (Names::Strings(&plan.remove), |_| Line::Removed),
        (Names::Cleanups(&plan.cleanup), |_| Line::Removed),
        (Names::Strings(&plan.kept), |_| Line::Same(" (not set here: kept)")),
        (Names::Strings(&plan.unmanaged), |_| Line::Same(" (deploy-owned)")),
        (Names::Strings(&plan.ignored), |_| Line::Same(" (ignored)")),
    ]
}

/// The lists merged by name: the list each next variable comes from. Each step takes the least
/// of the lists' first names. `None` when the names do not come strictly in order: a list out of
/// order, or a variable in two lists.
fn merged(lists: &[(Names<'_>, LineOf)]) -> Option<Vec<u8>> {
    let mut order = Vec::with_capacity(lists.iter().map(|(names, _)| names.len()).sum());
    // The lists not yet walked to their end: which, where, and the name there.
    let mut heads: Vec<(u8, usize, &str)> = (0u8..)
        .zip(lists)
        .filter(|(_, (names, _))| names.len() > 0)
        .map(|(list, (names, _))| (list, 0, names.name(0)))
        .collect();
    let mut previous: Option<&str> = None;
    while !heads.is_empty() {
        let mut least = 0;
        for (i, head) in heads.iter().enumerate().skip(1) {
            if head.2 < heads[least].2 {
                least = i;
            }
        }
        let (list, at, name) = heads[least];
        if previous.is_some_and(|previous| previous >= name) {
            return None;
        }
        previous = Some(name);
        order.push(list);
        let names = lists[usize::from(list)].0;
        if at + 1 < names.len() {
            heads[least] = (list, at + 1, names.name(at + 1));
        } else {
            heads.swap_remove(least);
        }
    }
    Some(order)
}

/// One of the plan's lists of names.
#[derive(Clone, Copy)]
enum Names<'a> {
    Writes(&'a [PlanWrite]),
    Strings(&'a [String]),
    Cleanups(&'a [crate::plan::Cleanup]),
}

/// An item of one of the plan's lists.
enum Item<'a> {
    Write(&'a PlanWrite),
    Other,
}

impl<'a> Names<'a> {
    fn len(self) -> usize {
        match self {
            Names::Writes(list) => list.len(),
            Names::Strings(list) => list.len(),
            Names::Cleanups(list) => list.len(),
        }
    }

    fn name(self, at: usize) -> &'a str {
        match self {
            Names::Writes(list) => &list[at].name,
            Names::Strings(list) => &list[at],
            Names::Cleanups(list) => &list[at].name,
        }
    }

    fn item(self, at: usize) -> Item<'a> {
        match self {
            Names::Writes(list) => Item::Write(&list[at]),
            _ => Item::Other,
        }
    }
}

/// The diff's hunks, written as the lines come.
struct Hunks<'a, 'w, W: Write> {
    w: &'w mut W,
    palette: &'w Palette,
    /// The lines the same on both sides since the last change: the context after the open
    /// hunk's changes, or (at most [`CONTEXT`] of them) before the next hunk's.
    same: VecDeque<ViewLine<'a>>,
    /// The open hunk, if any.
    hunk: Option<Hunk<'a>>,
    /// The run of changes since the last line the same on both sides: the remote's lines, then
    /// the desired state's.
    removed: Vec<ViewLine<'a>>,
    added: Vec<ViewLine<'a>>,
    /// The lines of the remote and of the desired state so far.
    old_at: usize,
    new_at: usize,
}

/// A hunk being gathered: where it starts on each side, and its lines with their signs.
struct Hunk<'a> {
    old_start: usize,
    new_start: usize,
    lines: Vec<(char, ViewLine<'a>)>,
}

impl<'a, 'w, W: Write> Hunks<'a, 'w, W> {
    fn new(w: &'w mut W, palette: &'w Palette) -> Self {
        Hunks {
            w,
            palette,
            same: VecDeque::with_capacity(2 * CONTEXT + 1),
            hunk: None,
            removed: Vec::new(),
            added: Vec::new(),
            old_at: 0,
            new_at: 0,
        }
    }

    /// The next variable, in name order.
    fn take(&mut self, name: &'a str, line: Line<'a>) -> io::Result<()> {
        match line {
            Line::Same(note) => {
                self.end_run();
                self.same.push_back((name, note));
                (self.old_at, self.new_at) = (self.old_at + 1, self.new_at + 1);
                if self.hunk.is_some() && self.same.len() > 2 * CONTEXT {
                    // Too long a stretch without a change: the hunk ends three lines into it.
                    let hunk = self.hunk.take().map(|mut hunk| {
                        hunk.lines.extend(self.same.drain(..CONTEXT).map(|line| (' ', line)));
                        hunk
                    });
                    if let Some(hunk) = hunk {
                        self.write(&hunk)?;
                    }
                }
                if self.hunk.is_none() && self.same.len() > CONTEXT {
                    self.same.pop_front();
                }
            }
            change => {
                let (same, old_at, new_at) = (self.same.len(), self.old_at, self.new_at);
                let hunk = self.hunk.get_or_insert_with(|| Hunk {
                    old_start: old_at - same,
                    new_start: new_at - same,
                    lines: Vec::new(),
                });
                hunk.lines.extend(self.same.drain(..).map(|line| (' ', line)));
                match change {
                    Line::Added => self.added.push((name, "")),
                    Line::Removed => self.removed.push((name, "")),
                    _ => {
                        self.removed.push((name, " (current value)"));
                        self.added.push((name, " (new value)"));
                    }
                }
                let removed = usize::from(!matches!(change, Line::Added));
                let added = usize::from(!matches!(change, Line::Removed));
                (self.old_at, self.new_at) = (self.old_at + removed, self.new_at + added);
            }
        }
        Ok(())
    }

    /// Puts the run of changes into the open hunk: removals first, then additions.
    fn end_run(&mut self) {
        if let Some(hunk) = &mut self.hunk {
            hunk.lines.extend(self.removed.drain(..).map(|line| ('-', line)));
            hunk.lines.extend(self.added.drain(..).map(|line| ('+', line)));
        }
    }

    /// Writes the open hunk, if any, with at most three lines of context after its changes.
    fn finish(mut self) -> io::Result<()> {
        self.end_run();
        match self.hunk.take() {
            Some(mut hunk) => {
                let after = self.same.len().min(CONTEXT);
                hunk.lines.extend(self.same.drain(..after).map(|line| (' ', line)));
                self.write(&hunk)
            }
            None => Ok(()),
        }
    }

    fn write(&mut self, hunk: &Hunk<'_>) -> io::Result<()> {
        let old_len = hunk.lines.iter().filter(|(sign, _)| *sign != '+').count();
        let new_len = hunk.lines.iter().filter(|(sign, _)| *sign != '-').count();
        // The hunk's span on each side, as one op: similar writes its header.
        let span = DiffOp::Replace { old_index: hunk.old_start, old_len, new_index: hunk.new_start, new_len };
        let (w, palette) = (&mut *self.w, self.palette);
        writeln!(w, "{}", palette.hunk().apply_to(similar::udiff::UnifiedHunkHeader::new(&[span])))?;
        for &(sign, (name, note)) in &hunk.lines {
            DiffLine { sign, name, note }.write(w, palette)?;
        }
        Ok(())
    }
}

/// One line of the redacted diff, written without building a string first.
struct DiffLine<'a> {
    sign: char,
    name: &'a str,
    note: &'a str,
}

impl DiffLine<'_> {
    /// The line, coloured by its sign unless the palette is plain.
    fn write(&self, w: &mut impl Write, palette: &Palette) -> io::Result<()> {
        if palette.is_plain() {
            return self.write_to(w);
        }
        let style = match self.sign {
            '-' => palette.removed(),
            '+' => palette.added(),
            _ => palette.dim(),
        };
        writeln!(w, "{}", style.apply_to(self))
    }

    /// The line and its line break, written as bytes (a hundred thousand lines go this way when
    /// nothing is coloured).
    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut sign = [0u8; 4];
        w.write_all(self.sign.encode_utf8(&mut sign).as_bytes())?;
        w.write_all(safe(self.name).as_bytes())?;
        w.write_all(b" = ")?;
        w.write_all(REDACTED.as_bytes())?;
        w.write_all(self.note.as_bytes())?;
        w.write_all(b"\n")
    }
}

impl fmt::Display for DiffLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Write::write_char(f, self.sign)?;
        f.write_str(&safe(self.name))?;
        f.write_str(" = ")?;
        f.write_str(REDACTED)?;
        f.write_str(self.note)
    }
}

/// A name fit for a terminal: control characters (a newline, an escape sequence) in a name read
/// from a remote are shown escaped, so they cannot forge or hide lines of the plan.
pub(crate) fn safe(name: &str) -> Cow<'_, str> {
    // Printable ASCII (almost every name) needs no look at each character.
    let printable = |b: &u8| (b' '..=b'~').contains(b);
    if !name.as_bytes().iter().all(printable) && name.chars().any(|c| c.is_control() || is_invisible(c)) {
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
pub(crate) fn is_invisible(c: char) -> bool {
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

/// Where a written value came from, as the plan says it.
struct Origin<'a>(&'a PlanWrite);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.source, &self.0.key) {
            (Source::PreviousVersion, _) => f.write_str("as in the previous version"),
            (Source::Derived, _) | (_, None) => {
                f.write_str("derived: the sorted list of custom secret names")
            }
            (Source::File, Some(key)) => write!(f, "from secrets.json `{key}`"),
            (Source::DotEnv, Some(key)) => {
                write!(f, "from .env ({}, overrides secrets.json)", read_names(key))
            }
            (Source::Environment, Some(key)) => write!(f, "from the environment ({})", read_names(key)),
            (Source::CommandLine, Some(_)) => f.write_str("given to set"),
        }
    }
}

impl Origin<'_> {
    /// Written as bytes where it is a key of secrets.json (almost every line), else formatted.
    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        match (self.0.source, &self.0.key) {
            (Source::File, Some(key)) => {
                w.write_all(b"from secrets.json `")?;
                w.write_all(key.as_bytes())?;
                w.write_all(b"`")
            }
            _ => write!(w, "{self}"),
        }
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
    use proptest::prelude::*;

    proptest! {
        /// The merge walk's edit script turns the old view into the new one, keeps every line the
        /// two share, and is as short as an edit script can be.
        #[test]
        fn the_edit_script_turns_old_into_new_keeping_every_shared_line(
            old in proptest::collection::btree_map("[A-E]{1,3}", 0u8..3, 0..40),
            new in proptest::collection::btree_map("[A-E]{1,3}", 0u8..3, 0..40),
        ) {
            let notes = ["", " (current value)", " (new value)"];
            let view = |m: &std::collections::BTreeMap<String, u8>| -> Vec<(String, &str)> {
                m.iter().map(|(k, v)| (k.clone(), notes[*v as usize])).collect()
            };
            let (old, new) = (view(&old), view(&new));
            let old_refs: Vec<(&str, &str)> = old.iter().map(|(k, n)| (k.as_str(), *n)).collect();
            let new_refs: Vec<(&str, &str)> = new.iter().map(|(k, n)| (k.as_str(), *n)).collect();
            let (mut rebuilt_new, mut rebuilt_old) = (Vec::new(), Vec::new());
            let mut equal = 0;
            // Each op starts where the one before it ended, on both sides.
            let (mut at_old, mut at_new) = (0, 0);
            for op in edit_script(&old_refs, &new_refs) {
                prop_assert_eq!((op.old_range().start, op.new_range().start), (at_old, at_new));
                (at_old, at_new) = (op.old_range().end, op.new_range().end);
                match op {
                    DiffOp::Equal { old_index, len, .. } => {
                        rebuilt_new.extend_from_slice(&old_refs[old_index..old_index + len]);
                        rebuilt_old.extend_from_slice(&old_refs[old_index..old_index + len]);
                        equal += len;
                    }
                    DiffOp::Insert { new_index, new_len, .. } => {
                        rebuilt_new.extend_from_slice(&new_refs[new_index..new_index + new_len]);
                    }
                    DiffOp::Delete { old_index, old_len, .. } => {
                        rebuilt_old.extend_from_slice(&old_refs[old_index..old_index + old_len]);
                    }
                    DiffOp::Replace { .. } => prop_assert!(false, "no replacements"),
                }
            }
            prop_assert_eq!((at_old, at_new), (old_refs.len(), new_refs.len()));
            prop_assert_eq!(&rebuilt_new, &new_refs);
            prop_assert_eq!(&rebuilt_old, &old_refs);
            let shared = old_refs.iter().filter(|line| new_refs.contains(line)).count();
            prop_assert_eq!(equal, shared);
        }
    }

    use super::*;
    use crate::plan::Cleanup;

    proptest! {
        /// Uncoloured, the additions' and changes' lines written as bytes are the lines formatted.
        #[test]
        fn uncoloured_writes_written_as_bytes_are_the_formatted_lines(
            writes in proptest::collection::vec(
                ("[A-Za-z_é\u{1}\u{200B}\u{7f}]{0,12}", proptest::option::of("[a-z_é`]{0,6}"), 0u8..6, 0u8..7, any::<bool>()),
                0..10,
            ),
            extra in 0usize..6,
        ) {
            let sources = [Source::File, Source::DotEnv, Source::Environment, Source::CommandLine, Source::PreviousVersion, Source::Derived];
            let comparisons = [Comparison::Absent, Comparison::Equal, Comparison::Differs, Comparison::DriftedOnRemote, Comparison::SameAsLastApply, Comparison::ChangedSinceLastApply, Comparison::Unverifiable];
            let mut plan = Plan::default();
            for (name, key, source, comparison, added) in writes {
                let write = PlanWrite { name, key, source: sources[source as usize], comparison: comparisons[comparison as usize] };
                if added { plan.add.push(write) } else { plan.change.push(write) }
            }
            let width = name_width(&plan) + extra;
            let mut expected = String::new();
            for write in &plan.add {
                expected.push_str(&format!("  + {:width$}  add       {}\n", safe(&write.name), Origin(write)));
            }
            for write in &plan.change {
                let why = change_reason(write.comparison);
                expected.push_str(&format!("  ~ {:width$}  change    {}: {why}\n", safe(&write.name), Origin(write)));
            }
            let mut out = Vec::new();
            write_writes_plain(&mut out, &plan, width).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    /// A plan with each name put in the list its number says (in the order given): 0 to 7 one
    /// list each, any other unchanged and equal.
    fn placed_in_lists(placed: impl IntoIterator<Item = (String, u8)>) -> Plan {
        let mut plan = Plan::default();
        for (name, list) in placed {
            let write =
                |comparison| PlanWrite { name: name.clone(), key: None, source: Source::File, comparison };
            match list {
                0 => plan.add.push(write(Comparison::Absent)),
                1 => plan.change.push(write(Comparison::Differs)),
                2 => plan.unchanged.push(write(Comparison::SameAsLastApply)),
                3 => plan.remove.push(name),
                4 => plan.cleanup.push(Cleanup { name, reason: CleanupReason::Stale }),
                5 => plan.kept.push(name),
                6 => plan.unmanaged.push(name),
                7 => plan.ignored.push(name),
                _ => plan.unchanged.push(write(Comparison::Equal)),
            }
        }
        plan
    }

    /// The diff of `plan` as `write_diff` writes it, and as written from sorted views.
    fn both_diffs(plan: &Plan, palette: &Palette) -> (String, String) {
        let subject = Subject { profile: "prod", remote: "file:store.json", whole: true };
        let (mut written, mut by_views) = (Vec::new(), Vec::new());
        write_diff(&mut written, plan, subject, palette).unwrap();
        write_diff_by_views(&mut by_views, plan, subject, palette).unwrap();
        (String::from_utf8(written).unwrap(), String::from_utf8(by_views).unwrap())
    }

    proptest! {
        /// The diff written as the plan's lists are merged is the one written from sorted views
        /// and their edit script, with colours and without: the same lines, hunks and headers.
        #[test]
        fn the_diff_written_in_one_walk_is_the_one_from_sorted_views(
            placed in proptest::collection::btree_map("[A-F]{1,4}", 0u8..30, 0..150),
        ) {
            // Mostly unchanged (from 8 on), so that hunks end and begin.
            let plan = placed_in_lists(placed);
            for palette in [Palette::plain(), Palette::choose(crate::cli::ColorChoice::Always, false, false)] {
                let (walked, by_views) = both_diffs(&plan, &palette);
                prop_assert_eq!(walked, by_views);
            }
        }
    }

    proptest! {
        /// Lists out of order, and a variable in two of them, as a saved plan written by hand can
        /// have: the diff is the one written from sorted views, as it always was.
        #[test]
        fn a_plan_out_of_order_is_written_from_sorted_views(
            placed in proptest::collection::vec(("[A-C]{1,2}", 0u8..9), 0..40),
        ) {
            let (written, by_views) = both_diffs(&placed_in_lists(placed), &Palette::plain());
            prop_assert_eq!(written, by_views);
        }
    }

    #[test]
    fn a_plan_out_of_order_is_not_merged() {
        let add = |names: &[&str]| names.iter().map(|n| write(n, "k")).collect::<Vec<_>>();
        let out_of_order = Plan { add: add(&["B", "A"]), ..Plan::default() };
        assert!(merged(&lists(&out_of_order)).is_none());
        let out = render(&out_of_order, Detail::Normal);
        assert!(out.contains("+A = <redacted>\n+B = <redacted>\n"), "{out}");
        let twice = Plan { add: add(&["X"]), unchanged: add(&["X"]), ..Plan::default() };
        assert!(merged(&lists(&twice)).is_none());
        let in_order = Plan { add: add(&["A"]), unchanged: add(&["B"]), ..Plan::default() };
        assert_eq!(merged(&lists(&in_order)), Some(vec![0, 2]));
    }

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
