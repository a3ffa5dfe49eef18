//! `generate pepper` (64 random letters and digits, as the platform makes an
//! `oauth_at_rest_pepper`) and `generate jwt-secret` (48 random bytes, base64, as
//! `openssl rand -base64 48` gives).

use base64::Engine;
use ring::rand::SecureRandom;

use super::{Streams, stdout_error};
use crate::cli::{Cli, GenerateArgs, GenerateKind};
use crate::config::{Config, Env, Output};
use crate::error::{Error, Result, display_path, exit};
use crate::policy;
use crate::secret::SecretValue;

/// Runs `generate`.
pub(super) fn run(
    cli: &Cli,
    env: &Env,
    args: &GenerateArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    let secret = match args.kind {
        GenerateKind::Pepper => pepper()?,
        GenerateKind::JwtSecret => jwt_secret()?,
    };
    let Some(key) = &args.into else {
        // Printing is the point of this form, as with openssl rand.
        writeln!(streams.out, "{}", secret.expose()).map_err(stdout_error)?;
        return Ok(exit::OK);
    };
    let given = key;
    let key = if key.chars().any(|c| c.is_ascii_uppercase()) { policy::key_for(key) } else { key.clone() };
    if !crate::validate::is_snake_case(&key) {
        return Err(Error::usage(
            format!("--into `{}` is not a secrets.json key", given.escape_debug()),
            "name a snake_case key, such as jwt_secret or oauth_at_rest_pepper",
        ));
    }
    let config = Config::from_cli(cli, env)?;
    let path = config.profile.secrets_path();
    // Under strict validation, a secrets.json that git tracks gets no new secret.
    if let Ok(loaded) = super::stages::load_desired(&config) {
        let review = super::validate::Review::of(&config, &loaded).without_findings();
        super::validate::gate(&config, &review, output, streams.err)?;
    }
    // A live secret (a signing key every session depends on) is never replaced unasked, and
    // never lost: the previous value is kept beside the secrets file.
    let existing = crate::secrets_file::load(&path).map_err(|e| config.profile.shown(e))?.unwrap_or_default();
    let previous =
        existing.iter().find(|e| e.key == key).and_then(|e| e.value.clone()).filter(|v| !v.is_blank());
    let backup = previous_path(&path);
    let backup_shown = match &config.profile.secrets_shown {
        Some(_) => "a `.previous` file beside the secrets file".to_owned(),
        None => display_path(&backup),
    };
    if let Some(previous) = &previous {
        if !args.force {
            return Err(Error::Config {
                message: format!(
                    "`{key}` in {} already has a value; generating one would replace it (for a signing secret, \
                     every session signed with it ends); nothing was written",
                    config.profile.secrets_display()
                ),
                hint: Some(format!(
                    "to rotate it, run again with --force: the previous value is kept in {}",
                    backup_shown
                )),
            });
        }
        let mut kept = serde_json::Map::new();
        kept.insert(key.clone(), serde_json::Value::String(previous.expose().to_owned()));
        let text = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(&serde_json::Value::Object(kept))
                .expect("a map of strings serializes")
                + "\n",
        );
        crate::files::write_private(&backup, text.as_bytes())?;
    }
    crate::secrets_file::save_values(&path, &[(key.clone(), &secret)])
        .map_err(|e| config.profile.shown(e))?;
    if !output.quiet {
        let _ = writeln!(
            streams.err,
            "Wrote a new {}-character secret to `{key}` in {} (not shown). Run cloud-secrets plan to see the change.",
            secret.expose().len(),
            config.profile.secrets_display()
        );
        if previous.is_some() {
            let _ = writeln!(
                streams.err,
                "The previous value of `{key}` is kept in {} (mode 0600): copy it back into {} to undo.",
                backup_shown,
                config.profile.secrets_display()
            );
        }
    }
    Ok(exit::OK)
}

/// Where `generate --into --force` keeps the value it replaced: `<secrets file>.previous`.
fn previous_path(secrets: &std::path::Path) -> std::path::PathBuf {
    let mut name = secrets.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".previous");
    secrets.with_file_name(name)
}

/// 64 letters and digits from the system's secure random generator (each byte drawn until it
/// falls in the 62-character alphabet's largest multiple, so that every character is as likely).
pub fn pepper() -> Result<SecretValue> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random = ring::rand::SystemRandom::new();
    let mut out = zeroize::Zeroizing::new(String::with_capacity(64));
    let mut byte = [0u8; 1];
    while out.len() < 64 {
        random.fill(&mut byte).map_err(|_| Error::Config {
            message: "the system's random number generator failed".to_owned(),
            hint: None,
        })?;
        if usize::from(byte[0]) < 248 {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % 62]));
        }
    }
    Ok(SecretValue::new(out.as_str()))
}

/// 48 bytes from the system's secure random generator, base64 with padding: 64 characters.
fn jwt_secret() -> Result<SecretValue> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 48]);
    ring::rand::SystemRandom::new().fill(bytes.as_mut()).map_err(|_| Error::Config {
        message: "the system's random number generator failed".to_owned(),
        hint: None,
    })?;
    Ok(SecretValue::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_secrets_are_64_base64_characters_and_differ() {
        let (a, b) = (jwt_secret().unwrap(), jwt_secret().unwrap());
        assert_eq!(a.expose().len(), 64);
        let decoded = base64::engine::general_purpose::STANDARD.decode(a.expose()).unwrap();
        assert_eq!(decoded.len(), 48);
        assert_ne!(a, b);
    }

    #[test]
    fn peppers_are_64_letters_and_digits_and_differ() {
        let (a, b) = (pepper().unwrap(), pepper().unwrap());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
