//! `validate`, and the same checks run before every plan: the platform's rules for the desired
//! state, cloud-secrets' advice, and the safety of the local secrets files.

use std::io::Write;

use super::{Streams, stdout_error};
use crate::config::{Config, Output};
use crate::credentials;
use crate::error::{Error, Location, Result, display_path, exit};
use crate::project::Validation;
use crate::safety::{self, Concern};
use crate::sources::Loaded;
use crate::validate::{self, Finding};

/// What the checks found.
pub(super) struct Review {
    mode: Validation,
    findings: Vec<Finding>,
    concerns: Vec<Concern>,
    /// The desired state comes from the environment alone: a required key it lacks may be kept
    /// on the remote, so that is a warning offline.
    partial: bool,
}

impl Review {
    /// Runs every check on the desired state and the profile's files.
    pub(super) fn of(config: &Config, loaded: &Loaded) -> Self {
        let mode = config.settings.validation;
        let secrets = config.profile.secrets_path();
        let described = if loaded.partial {
            Location::named("the environment (no secrets file)")
        } else {
            Location::named(config.profile.secrets_display())
        };
        let findings = validate::check(&loaded.entries, &described, mode);
        let mut concerns = Vec::new();
        if !loaded.partial {
            let shown = |mut concern: Concern| {
                let real = display_path(&secrets);
                concern.message = concern.message.replace(&real, &config.profile.secrets_display());
                concern.fix = concern.fix.replace(&real, &config.profile.secrets_display());
                concern
            };
            concerns.extend(safety::permissions(&secrets).into_iter().map(shown));
            concerns.extend(safety::tracked_by_git(&secrets).into_iter().map(shown));
        }
        if let Some(root) = &config.root {
            concerns.extend(safety::permissions(&credentials::path(root)));
        }
        Self { mode, findings, concerns, partial: loaded.partial }
    }

    /// No findings and no concerns: for a plan whose checks were made elsewhere.
    pub(super) fn none(config: &Config) -> Self {
        Self { mode: config.settings.validation, findings: Vec::new(), concerns: Vec::new(), partial: false }
    }

    /// Keeps only the concerns about files: for a profile without a desired state to check.
    pub(super) fn without_findings(mut self) -> Self {
        self.findings.clear();
        self
    }

    /// Adds findings about values given on the command line (`set`).
    pub(super) fn with(mut self, findings: Vec<Finding>) -> Self {
        self.findings.extend(findings);
        self
    }

    /// Whether a finding is an error offline (`validate`): the platform's rules always (a missing
    /// key only when a secrets file is the desired state), advice under `strict`.
    fn is_error(&self, finding: &Finding) -> bool {
        if finding.rule.is_required_key() {
            !self.partial
        } else {
            finding.rule.is_platform() || self.mode == Validation::Strict
        }
    }

    fn is_concern_error(&self, concern: &Concern) -> bool {
        self.mode == Validation::Strict && concern.strict_error
    }

    fn errors(&self) -> usize {
        self.findings.iter().filter(|f| self.is_error(f)).count()
            + self.concerns.iter().filter(|c| self.is_concern_error(c)).count()
    }

    fn warnings(&self) -> usize {
        self.findings.len() + self.concerns.len() - self.errors()
    }
}

/// Before a plan: prints what the checks found on stderr, and stops if any is an error. A
/// missing required key is left to [`gate_required`], once the plan shows whether the remote
/// keeps the variable.
pub(super) fn gate(config: &Config, review: &Review, output: &Output, err: &mut dyn Write) -> Result<()> {
    let palette = &output.stderr;
    let mut errors = 0;
    for finding in review.findings.iter().filter(|f| !f.rule.is_required_key()) {
        if review.is_error(finding) {
            errors += 1;
            let _ = writeln!(err, "{} {finding}", palette.error().apply_to("error:"));
        } else if !output.quiet {
            let _ = writeln!(err, "{} {finding}", palette.warning().apply_to("warning:"));
        }
    }
    for concern in &review.concerns {
        let error = review.is_concern_error(concern);
        errors += usize::from(error);
        let label =
            if error { palette.error().apply_to("error:") } else { palette.warning().apply_to("warning:") };
        if error || !output.quiet {
            let _ = writeln!(err, "{label} {}", concern.message);
            let _ = writeln!(err, "  {} {}", palette.dim().apply_to("fix:"), concern.fix);
        }
    }
    let platform = review.findings.iter().any(|f| f.rule.is_platform() && !f.rule.is_required_key());
    match errors {
        0 => Ok(()),
        n => Err(Error::Config {
            message: format!("{n} problem(s) with profile `{}`; nothing was planned", config.profile.name),
            hint: Some(if platform {
                "fix them (cloud-secrets validate lists them): the platform's own rules hold whatever `validation` says"
                    .to_owned()
            } else {
                format!(
                    "fix them (cloud-secrets validate lists them); advice checks follow `validation` in {}",
                    display_path(&config.settings.path)
                )
            }),
        }),
    }
}

/// After a plan: a variable the platform requires that the remote would not hold is an error
/// (its runtime would not start); a required key that is not set here but that the remote keeps
/// is a warning.
pub(super) fn gate_required(
    config: &Config,
    review: &Review,
    missing: &[String],
    (remote_name, applying, rollback): (&str, bool, bool),
    output: &Output,
    err: &mut dyn Write,
) -> Result<()> {
    let palette = &output.stderr;
    for finding in review.findings.iter().filter(|f| f.rule.is_required_key()) {
        let name = finding.key.as_deref().map(crate::policy::variable_name).unwrap_or_default();
        if missing.contains(&name) {
            let _ = writeln!(err, "{} {finding}", palette.error().apply_to("error:"));
        } else if !output.quiet {
            let _ = writeln!(
                err,
                "{} {finding}; {remote_name} still holds {name} after this plan",
                palette.warning().apply_to("warning:")
            );
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let them = if missing.len() == 1 { "it" } else { "them" };
    let outcome = if applying { "; nothing was applied" } else { ": this plan must not be applied" };
    Err(Error::Config {
        message: format!(
            "after this plan {remote_name} would hold no {}: the platform's runtime does not start without \
             {them}{outcome}",
            missing.join(" and no "),
        ),
        hint: Some(if rollback {
            format!(
                "the version rolled back to lacks {them}: apply the profile instead (cloud-secrets apply), or set {them} \
                 on the remote first (cloud-secrets set NAME --stdin)"
            )
        } else if review.partial {
            format!(
                "export OAUTH_AT_REST_PEPPER (32 characters or more) and DATABASE_URL for this run, or create {}",
                config.profile.secrets_display()
            )
        } else {
            format!(
                "set oauth_at_rest_pepper (32 characters or more; cloud-secrets generate pepper --into \
                 oauth_at_rest_pepper makes one) and database_url in {}",
                config.profile.secrets_display()
            )
        }),
    })
}

/// `validate`: the checks, offline, as a report on stdout; exit 1 if any is an error.
pub(super) fn run(config: &Config, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    for warning in config.profile.warnings.iter().chain(&config.settings.warnings) {
        super::warn(output, streams.err, warning);
    }
    let loaded = super::stages::load_desired(config)?;
    let review = Review::of(config, &loaded);
    let out = &mut *streams.out;
    let palette = &output.stdout;
    let mode = match review.mode {
        Validation::Strict => "strict",
        Validation::Warn => "warn",
        Validation::Skip => "skip",
    };
    let print = |out: &mut dyn Write| -> std::io::Result<()> {
        if !output.quiet {
            writeln!(out, "Profile {} · validation: {mode}", config.profile.name)?;
            if review.mode == Validation::Skip {
                writeln!(
                    out,
                    "Only the platform's own rules are checked for this profile (validation: skip)."
                )?;
            }
            for finding in &review.findings {
                let label = if review.is_error(finding) {
                    palette.error().apply_to("error  ")
                } else {
                    palette.warning().apply_to("warning")
                };
                writeln!(out, "  {label} {finding}")?;
            }
            for concern in &review.concerns {
                let label = if review.is_concern_error(concern) {
                    palette.error().apply_to("error  ")
                } else {
                    palette.warning().apply_to("warning")
                };
                writeln!(out, "  {label} {}", concern.message)?;
                writeln!(out, "          {} {}", palette.dim().apply_to("fix:"), concern.fix)?;
            }
        }
        let (errors, warnings) = (review.errors(), review.warnings());
        let line = match (errors, warnings) {
            (0, 0) => "Valid: no errors, no warnings.".to_owned(),
            (0, w) => format!("Valid: no errors, {w} warning(s)."),
            (e, w) => format!("Invalid: {e} error(s), {w} warning(s)."),
        };
        writeln!(out, "{}", palette.heading().apply_to(line))
    };
    print(out).map_err(stdout_error)?;
    Ok(if review.errors() > 0 { exit::ERROR } else { exit::OK })
}
