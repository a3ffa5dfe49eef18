//! The report: the targets table, the informational rows, the machine, and docs/performance.md,
//! whose generated part sits between two markers so that the hand-written rest is kept.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::stats::{self, Pairs};

/// Where the generated part of docs/performance.md begins.
pub const BEGIN: &str = "<!-- bench:begin -->";
/// Where it ends.
pub const END: &str = "<!-- bench:end -->";

/// One target: a figure of the tool against a limit.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The tool's figure, as shown.
    pub tool: String,
    /// What it is compared with, as shown.
    pub floor: String,
    /// The figure judged (a ratio, or megabytes).
    pub value: f64,
    /// `value` as shown.
    pub shown: String,
    /// The ratio of the two medians, shown beside the median of the pairwise ratios.
    pub of_medians: Option<f64>,
    /// The smallest and the largest pairwise ratio.
    pub range: Option<(f64, f64)>,
    /// Requests per run: the tool's and the floor's.
    pub requests: Option<(usize, usize)>,
    /// The limit `value` must not exceed.
    pub limit: f64,
    /// The limit as shown.
    pub limit_shown: String,
}

impl Target {
    /// A ratio of interleaved runs: the median of the pairwise ratios against `limit`.
    pub fn ratio(what: &str, floor: &str, pairs: &Pairs, limit: f64) -> Self {
        let ratio = pairs.ratio();
        Self {
            what: what.to_owned(),
            tool: ms(stats::median_wall(&pairs.tool)),
            floor: format!("{} ({floor})", ms(stats::median_wall(&pairs.floor))),
            value: ratio,
            shown: format!("{ratio:.2}×"),
            of_medians: Some(pairs.ratio_of_medians()),
            range: Some(pairs.range()),
            requests: None,
            limit,
            limit_shown: format!("≤ {limit}×"),
        }
    }

    /// Whether the figure is within the limit.
    pub fn pass(&self) -> bool {
        self.value <= self.limit
    }

    fn verdict(&self) -> &'static str {
        if self.pass() { "PASS" } else { "MISS" }
    }
}

/// One informational line.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub what: String,
    /// The median wall time.
    pub wall: Duration,
    /// The largest peak memory, in KiB.
    pub max_rss_kb: u64,
    /// Requests the emulator received per run, where it is the remote.
    pub requests: Option<usize>,
}

/// How the runs were made, for the report's first lines.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The command, as typed.
    pub command: String,
    /// Pairs per target at 10,000 variables and for the local store.
    pub runs: usize,
    /// Pairs per target at 100,000 variables, and runs of each informational row.
    pub big_runs: usize,
    /// `cloud-secrets --version`.
    pub tool_version: String,
    /// The source revision measured, if given.
    pub revision: Option<String>,
    /// `curl --version`'s first line.
    pub curl_version: String,
    /// The one-minute load average when the benchmark started.
    pub load_at_start: String,
}

/// The generated part of docs/performance.md (also what is printed).
pub fn generate(setup: &Setup, targets: &[Target], rows: &[Row]) -> String {
    let mut out = String::new();
    intro(&mut out, setup);
    targets_table(&mut out, targets);
    if !rows.is_empty() {
        rows_table(&mut out, rows);
    }
    out
}

fn intro(out: &mut String, setup: &Setup) {
    let revision = setup.revision.as_deref().map(|r| format!(" at {r}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "Measured with `{}`: {}{revision}, release build; {}.\n",
        setup.command, setup.tool_version, setup.curl_version
    );
    let _ = writeln!(
        out,
        "Machine: {}; load average {} at the start, {} at the end.\n",
        machine(),
        setup.load_at_start,
        load_average()
    );
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(
        out,
        "Each run is a process from start to exit against the cloud API emulator on 127.0.0.1 (listing \
         with digests, so that a changed value shows), timed by a wrapper process. The **floor** is \
         the same requests made by `curl` processes run one after the other against the same \
         emulator: the token exchange, then the listing (the wrapper reads the access token from the \
         first curl's answer), and for an apply the `PUT` of the very body the tool sent (taken from \
         the emulator's log, with the listing's `ETag` in `If-Match`). The tool's runs and the \
         floor's are interleaved, tool then floor, {} pairs at 10,000 variables and for the local \
         store, {} at 100,000. **Ratio** is the median of the pairwise ratios (tool run ÷ the floor \
         run just after it), so that a drift of the machine affects both sides; the ratio of the two \
         medians is shown beside it. Peak memory is the largest max RSS of the runs. Every plan \
         measured is checked first to report the changes it should (`--format json`, \
         `--detailed-exitcode`), and every request the floor sends is checked to be one the tool \
         sent, body included.\n",
        setup.runs, setup.big_runs
    );
}

fn targets_table(out: &mut String, targets: &[Target]) {
    let _ = writeln!(
        out,
        "| What | Tool (median) | Floor (median) | Ratio | Target | Verdict | Ratio of medians | Pairs' ratios | \
         Requests (tool / floor) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for t in targets {
        let of_medians = t.of_medians.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
        let range = t.range.map_or_else(|| "—".to_owned(), |(a, b)| format!("{a:.2}–{b:.2}"));
        let requests = t.requests.map_or_else(|| "—".to_owned(), |(a, b)| format!("{a} / {b}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {of_medians} | {range} | {requests} |",
            t.what,
            t.tool,
            t.floor,
            t.shown,
            t.limit_shown,
            t.verdict()
        );
    }
    let missed = targets.iter().filter(|t| !t.pass()).count();
    let _ = writeln!(out, "\n{} of {} targets met.\n", targets.len() - missed, targets.len());
    let _ = writeln!(
        out,
        "A tenth of the variables differ from the remote's in every plan measured, at every size \
         (variables are secrets.json's keys; the remote also holds the derived \
         `SYSTEMPROMPT_CUSTOM_SECRETS`). The scaling target divides the medians of the tool's text \
         plans at the two sizes (those runs are not interleaved with each other); its floor column \
         is the floor's own scaling. Peak memory is the largest max RSS of the tool's runs; its floor \
         column is curl's. The local store's floor is the tool's own `--help` in the same project. \
         The tool's apply makes one request more than its floor: it reads the listing again just \
         before writing.\n"
    );
}

fn rows_table(out: &mut String, rows: &[Row]) {
    let _ = writeln!(out, "## Other measurements\n");
    let _ =
        writeln!(out, "Informational: no target. Median wall time; peak memory is the largest max RSS.\n");
    let _ = writeln!(out, "| What | Wall (median) | Peak memory | Requests |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for row in rows {
        let requests = row.requests.map_or_else(|| "—".to_owned(), |n| n.to_string());
        let _ = writeln!(out, "| {} | {} | {} | {requests} |", row.what, ms(row.wall), mb(row.max_rss_kb));
    }
    let _ = writeln!(
        out,
        "\nThe apply of additions sends one PUT (after the token exchange, the listing, and the listing again \
         just before writing); removals are one DELETE each, 8 at once by default (`--parallelism`). OpenBao \
         is measured with fewer variables because a default listener refuses a request of more than 1000 JSON \
         strings; Secrets Manager because a secret holds 64 KB; Parameter Store because \
         `SYSTEMPROMPT_CUSTOM_SECRETS`, the list of custom names, must fit a 4 KB parameter.\n"
    );
}

/// Milliseconds, as shown.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Megabytes (10^6 bytes) from KiB, as shown.
pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", megabytes(kb))
}

/// Megabytes (10^6 bytes) from KiB.
pub fn megabytes(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

/// The CPU, the cores, the memory and the kernel.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(|| "unknown".to_owned(), |kb| format!("{} GiB", kb / 1024 / 1024));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    format!("{cpu}, {cores} cores, {memory} memory, Linux {kernel}")
}

/// The one-minute load average: other work on the machine widens the spread of the ratios.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Writes `generated` into `path` between the markers, keeping the rest of the file; a file that
/// does not exist yet is created with an empty `## Where the time goes` section after them.
pub fn write(path: &Path, generated: &str) -> Result<(), String> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let text = match existing {
        Some(text) => splice(&text, generated).ok_or_else(|| {
            format!(
                "{} has no `{BEGIN}` … `{END}` section: put the markers around the generated part (or remove \
                 the file to start anew); it was left as it is",
                path.display()
            )
        })?,
        None => format!(
            "# Performance\n\n{BEGIN}\n{generated}{END}\n\n## Where the time goes\n\n(filled in by hand from perf profiles)\n"
        ),
    };
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `text` with what lies between the markers replaced by `generated`, if it has both.
fn splice(text: &str, generated: &str) -> Option<String> {
    let begin = text.find(BEGIN)?;
    let end = begin + text[begin..].find(END)?;
    Some(format!("{}{BEGIN}\n{generated}{}", &text[..begin], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_generated_part_is_replaced() {
        let text = format!("# Performance\n\nintro\n{BEGIN}\nold\n{END}\n\n## Where the time goes\n\nmine\n");
        let new = splice(&text, "new\n").unwrap();
        assert_eq!(
            new,
            format!("# Performance\n\nintro\n{BEGIN}\nnew\n{END}\n\n## Where the time goes\n\nmine\n")
        );
        assert_eq!(splice("no markers", "new\n"), None);
        assert_eq!(splice(&format!("{END}\n{BEGIN}\n"), "new\n"), None);
    }

    #[test]
    fn a_missed_target_is_reported() {
        let target = |value: f64| Target {
            what: "x".to_owned(),
            tool: String::new(),
            floor: String::new(),
            value,
            shown: String::new(),
            of_medians: None,
            range: None,
            requests: None,
            limit: 1.3,
            limit_shown: String::new(),
        };
        assert!(target(1.3).pass());
        assert!(!target(1.31).pass());
        let setup = Setup {
            command: "./scripts/bench".to_owned(),
            runs: 9,
            big_runs: 5,
            tool_version: "cloud-secrets 0.1.0".to_owned(),
            revision: None,
            curl_version: "curl 8".to_owned(),
            load_at_start: "0.00".to_owned(),
        };
        let text = generate(&setup, &[target(1.0), target(2.0)], &[]);
        assert!(text.contains("| PASS |") && text.contains("| MISS |"));
        assert!(text.contains("1 of 2 targets met."));
    }
}
