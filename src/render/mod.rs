//! Renderers: they turn a [`crate::plan::Plan`] into output on a writer they are given. Nothing
//! here touches stdout or stderr directly, so every output can be captured and snapshot-tested.

pub mod json;
pub mod markdown;
pub mod text;

/// What the plan is between, for headings.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The profile name.
    pub profile: &'a str,
    /// The remote, as the user named it (e.g. `file:store.json`).
    pub remote: &'a str,
    /// Whether the plan covers the whole desired state (`plan`, `apply`) rather than some keys
    /// (`set`, `unset`, `cleanup`).
    pub whole: bool,
}

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The summary line only.
    Summary,
    /// The plan.
    Normal,
    /// The plan and the unchanged variables.
    Verbose,
}
