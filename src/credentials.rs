//! The systemprompt cloud credentials: `.systemprompt/credentials.json` (written by the
//! platform's login), overridden by `SYSTEMPROMPT_API_TOKEN` and `SYSTEMPROMPT_API_URL`.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::project::PROJECT_DIR;
use crate::secret::SecretValue;

/// The credentials file of a project.
pub fn path(root: &Path) -> PathBuf {
    root.join(PROJECT_DIR).join("credentials.json")
}

/// What the credentials file holds that cloud-secrets uses. Other fields (`authenticated_at`,
/// `user_email`, `last_validated_at`) are left alone.
#[derive(Debug, Default)]
pub struct Credentials {
    /// `api_token`.
    pub api_token: Option<SecretValue>,
    /// `api_url`.
    pub api_url: Option<String>,
}

/// Reads the credentials file; a missing file holds nothing.
pub fn load(path: &Path) -> Result<Credentials> {
    let Some(bytes) = crate::files::read_limited(path, 1024 * 1024, "credentials.json")? else {
        return Ok(Credentials::default());
    };
    let bytes = Zeroizing::new(bytes);
    let hint = "log in again to rewrite it, or set SYSTEMPROMPT_API_TOKEN";
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(Error::input(
            Location::at(path, 1, 1),
            "the file starts with a UTF-8 byte-order mark, which JSON does not allow",
            "save it as UTF-8 without a byte-order mark",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(
            Location::at(path, e.line().max(1), e.column().max(1)),
            format!("invalid credentials.json: {}", crate::secrets_file::safe_json_message(&e)),
            hint,
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(Error::input(Location::at(path, 1, 1), "credentials.json must be a JSON object", hint));
    };
    let field = |name: &str| -> Result<Option<String>> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text.clone()).filter(|t| !t.is_empty())),
            Some(_) => Err(Error::input(locate(path, name), format!("`{name}` must be a string"), hint)),
        }
    };
    Ok(Credentials { api_token: field("api_token")?.map(SecretValue::new), api_url: field("api_url")? })
}

/// Where `"field"` is written in the credentials file, for messages about its value.
pub fn locate(path: &Path, field: &str) -> Location {
    let text =
        crate::files::read_limited(path, 1024 * 1024, "credentials.json").ok().flatten().unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    match text.find(&format!("\"{field}\"")) {
        Some(offset) => {
            let (line, column) = crate::secrets_file::line_column(&text, offset);
            Location::at(path, line, column)
        }
        None => Location::file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_token_and_url_and_ignores_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials.json");
        std::fs::write(
            &p,
            r#"{"api_token": "CANARY-token", "api_url": "https://api-sandbox.systemprompt.io",
                "authenticated_at": "2026-01-01T00:00:00Z", "user_email": "a@b.c", "last_validated_at": null}"#,
        )
        .unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.api_token.unwrap().expose(), "CANARY-token");
        assert_eq!(c.api_url.as_deref(), Some("https://api-sandbox.systemprompt.io"));
        assert!(load(&dir.path().join("missing.json")).unwrap().api_token.is_none());
    }

    #[test]
    fn a_malformed_file_is_located_without_quoting_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials.json");
        std::fs::write(&p, "{\"api_token\": 42}").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("credentials.json:1:"));
        std::fs::write(&p, "{\"api_token\": \"CANARY-token\" \"x\": 1}").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(!e.contains("CANARY"), "{e}");
    }
}
