//! Colour as a value with semantic roles, chosen once from `--color`, `NO_COLOR` and whether the
//! output is a terminal. Symbols carry the meaning; colour only helps.

use console::Style;

use crate::cli::ColorChoice;

/// The styles of each role in the output.
#[derive(Debug, Clone)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// Decides whether to colour. `no_color` is whether `NO_COLOR` is set to a non-empty value.
    pub fn choose(choice: ColorChoice, is_terminal: bool, no_color: bool) -> Self {
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        Self { enabled }
    }

    /// No colour at all.
    pub fn plain() -> Self {
        Self { enabled: false }
    }

    /// Whether nothing is coloured.
    pub fn is_plain(&self) -> bool {
        !self.enabled
    }

    fn style(&self, style: Style) -> Style {
        style.force_styling(self.enabled)
    }

    /// A variable being added.
    pub fn added(&self) -> Style {
        self.style(Style::new().green())
    }

    /// A variable being changed.
    pub fn changed(&self) -> Style {
        self.style(Style::new().yellow())
    }

    /// A variable being removed.
    pub fn removed(&self) -> Style {
        self.style(Style::new().red())
    }

    /// A variable being cleaned up.
    pub fn cleanup(&self) -> Style {
        self.style(Style::new().magenta())
    }

    /// Secondary text: context lines, reasons.
    pub fn dim(&self) -> Style {
        self.style(Style::new().dim())
    }

    /// Headings and the summary line.
    pub fn heading(&self) -> Style {
        self.style(Style::new().bold())
    }

    /// Diff hunk headers.
    pub fn hunk(&self) -> Style {
        self.style(Style::new().cyan())
    }

    /// Warnings.
    pub fn warning(&self) -> Style {
        self.style(Style::new().yellow().bold())
    }

    /// Errors.
    pub fn error(&self) -> Style {
        self.style(Style::new().red().bold())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(Palette::choose(ColorChoice::Auto, true, false).enabled);
        assert!(!Palette::choose(ColorChoice::Auto, true, true).enabled);
        assert!(!Palette::choose(ColorChoice::Auto, false, false).enabled);
        assert!(Palette::choose(ColorChoice::Always, false, true).enabled);
        assert!(!Palette::choose(ColorChoice::Never, true, false).enabled);
    }

    #[test]
    fn disabled_styles_add_no_escapes() {
        assert_eq!(Palette::plain().added().apply_to("x").to_string(), "x");
        let on = Palette::choose(ColorChoice::Always, false, false);
        assert!(on.added().apply_to("x").to_string().contains('\u{1b}'));
    }
}
