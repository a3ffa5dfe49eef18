//! set, unset, cleanup, validate, generate, init, profiles; environment overrides.
