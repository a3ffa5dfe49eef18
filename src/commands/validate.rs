//! `validate`, and the same checks run before every plan: the platform's rules for the desired
//! state, and the safety of the local secrets files.

use std::io::Write;

use super::{Streams, stdout_error};
use crate::config::{Config, Output};
use crate::credentials;
use crate::desired::Entry;
use crate::error::{Error, Location, Result, display_path, exit};
use crate::project::{SourceKind, Validation};
use crate::safety::{self, Concern};
use crate::sources::{self, Overrides};
use crate::validate::{self, Finding};

/// What the checks found.
pub(super) struct Review {
    mode: Validation,
    findings: Vec<Finding>,
    concerns: Vec<Concern>,
}

impl Review {
    /// Runs every check on the desired state's entries and the profile's files.
    pub(super) fn of(config: &Config, entries: &[Entry]) -> Self {
        let mode = config.profile.settings.secrets.validation;
        let from_env = config.profile.settings.secrets.source == SourceKind::Env;
        let secrets = config.profile.secrets_path();
        let described = if from_env { Location::named("the environment") } else { Location::file(&secrets) };
        let findings = validate::check(entries, &described, mode);
        let mut concerns = Vec::new();
        if !from_env {
            concerns.extend(safety::permissions(&secrets));
            concerns.extend(safety::tracked_by_git(&secrets));
        }
        if let Some(root) = &config.root {
            concerns.extend(safety::permissions(&credentials::path(root)));
        }
        Self { mode, findings, concerns }
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

    /// How many problems stop a plan: every finding and strict concern under `strict`.
    fn errors(&self) -> usize {
        match self.mode {
            Validation::Strict => {
                self.findings.len() + self.concerns.iter().filter(|c| c.strict_error).count()
            }
            _ => 0,
        }
    }

    fn warnings(&self) -> usize {
        self.findings.len() + self.concerns.len() - self.errors()
    }

    fn is_error(&self, concern: &Concern) -> bool {
        self.mode == Validation::Strict && concern.strict_error
    }
}

/// Before a plan: prints what the checks found on stderr, and stops under `strict` if any
/// finding is an error.
pub(super) fn gate(config: &Config, review: &Review, output: &Output, err: &mut dyn Write) -> Result<()> {
    let strict = review.mode == Validation::Strict;
    let palette = &output.stderr;
    for finding in &review.findings {
        if strict {
            let _ = writeln!(err, "{} {finding}", palette.error().apply_to("error:"));
        } else if !output.quiet {
            let _ = writeln!(err, "{} {finding}", palette.warning().apply_to("warning:"));
        }
    }
    for concern in &review.concerns {
        let label = if review.is_error(concern) {
            palette.error().apply_to("error:")
        } else {
            palette.warning().apply_to("warning:")
        };
        if review.is_error(concern) || !output.quiet {
            let _ = writeln!(err, "{label} {}", concern.message);
            let _ = writeln!(err, "  {} {}", palette.dim().apply_to("fix:"), concern.fix);
        }
    }
    match review.errors() {
        0 => Ok(()),
        n => Err(Error::Config {
            message: format!(
                "{n} problem(s) with profile `{}` under secrets.validation: strict; nothing was planned",
                config.profile.name
            ),
            hint: Some(
                "fix them (cloud-secrets validate lists them), or set secrets.validation: warn".to_owned(),
            ),
        }),
    }
}

/// `validate`: the checks, offline, as a report on stdout; exit 1 if any is an error.
pub(super) fn run(config: &Config, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    for warning in &config.profile.warnings {
        super::warn(output, streams.err, warning);
    }
    let entries = load_entries(config)?;
    let review = Review::of(config, &entries);
    let out = &mut *streams.out;
    let palette = &output.stdout;
    let mode = match review.mode {
        Validation::Strict => "strict",
        Validation::Warn => "warn",
        Validation::Skip => "skip",
    };
    let print = |out: &mut dyn Write| -> std::io::Result<()> {
        if !output.quiet {
            writeln!(out, "Profile {} · secrets.validation: {mode}", config.profile.name)?;
            if review.mode == Validation::Skip {
                writeln!(out, "The rules are not checked for this profile (secrets.validation: skip).")?;
            }
            let strict = review.mode == Validation::Strict;
            for finding in &review.findings {
                let label = if strict {
                    palette.error().apply_to("error  ")
                } else {
                    palette.warning().apply_to("warning")
                };
                writeln!(out, "  {label} {finding}")?;
            }
            for concern in &review.concerns {
                let label = if review.is_error(concern) {
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

/// The desired state's entries, each value from the first source that sets it.
pub(super) fn load_entries(config: &Config) -> Result<Vec<Entry>> {
    if config.profile.settings.secrets.source == SourceKind::Env {
        return sources::from_environment(&config.environment);
    }
    let path = config.profile.secrets_path();
    let file = crate::secrets_file::load(&path)?.ok_or_else(|| {
        Error::config(
            format!(
                "profile `{}` has no secrets file: {} does not exist",
                config.profile.name,
                display_path(&path)
            ),
            "create it with the profile's secrets as a JSON object (cloud-secrets init scaffolds one)",
        )
    })?;
    let dotenv = match &config.root {
        Some(root) => sources::load_dotenv(&root.join(".env"))?,
        None => Default::default(),
    };
    let overrides = Overrides { environment: config.environment.clone(), dotenv };
    Ok(sources::layer(file, &overrides))
}
