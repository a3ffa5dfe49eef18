//! Where a credential may be sent. The checkout (profile.yaml, cloud-secrets.yaml,
//! credentials.json: anything a pull request can write) is a stranger's; the environment and the
//! command line are the owner's. A credential goes only to the address that came from the same
//! trusted place as the credential, or to the built-in default: an address from the checkout that
//! does not match is refused before anything is sent. A pure decision, tested here.

use crate::backend::redact_address;

/// Where a credential or an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The command line (`--remote`): the owner's.
    CommandLine,
    /// A process environment variable: the owner's.
    Environment,
    /// `.systemprompt/credentials.json`, written by the platform's login (it lives in the project,
    /// so a pull request can add one).
    CredentialsFile,
    /// cloud-secrets.yaml or profile.yaml: the checkout.
    Checkout,
    /// Built into cloud-secrets.
    Default,
}

impl From {
    fn describe(self) -> &'static str {
        match self {
            From::CommandLine => "the command line",
            From::Environment => "the environment",
            From::CredentialsFile => "credentials.json",
            From::Checkout => "the project's settings (cloud-secrets.yaml or profile.yaml)",
            From::Default => "the built-in default",
        }
    }
}

/// A credential about to be sent to an address, and where each came from.
#[derive(Debug, Clone)]
pub struct Destination<'a> {
    /// What the credential is, for messages (`SYSTEMPROMPT_API_TOKEN`, `VAULT_TOKEN`).
    pub credential: &'a str,
    /// Where the credential came from.
    pub credential_from: From,
    /// The address it would go to.
    pub address: &'a reqwest::Url,
    /// Where the address came from.
    pub address_from: From,
    /// The address the credential's own source names for it (`SYSTEMPROMPT_API_URL` beside an
    /// environment token, `api_url` beside a token in credentials.json, `VAULT_ADDR` beside
    /// `VAULT_TOKEN`), if it names one.
    pub paired: Option<&'a reqwest::Url>,
    /// The built-in address, trusted for any credential of its kind, if there is one.
    pub default: Option<&'a reqwest::Url>,
}

/// Why a credential may not go to an address: the two addresses and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What happened.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// Whether the credential may go to the address: always when the owner named the address (on the
/// command line or in the environment), or when credential and address came from the same place;
/// otherwise (an address written in the project) only when it is the one the credential's source
/// pairs with it, or the built-in default.
pub fn check(d: &Destination<'_>) -> Result<(), Refusal> {
    let owners = matches!(d.address_from, From::CommandLine | From::Environment | From::Default);
    let same_place = d.credential_from == d.address_from;
    let paired = d.paired.is_some_and(|p| same_origin(p, d.address));
    let default = d.default.is_some_and(|p| same_origin(p, d.address));
    if owners || same_place || paired || default {
        return Ok(());
    }
    let trusted = match (d.paired, d.default) {
        (Some(url), _) | (None, Some(url)) => format!("goes only to {}", origin(url)),
        (None, None) => "goes only to an address given on the command line".to_owned(),
    };
    Err(Refusal {
        message: format!(
            "{} from {} {trusted}, but {} names {}: nothing was sent",
            d.credential,
            d.credential_from.describe(),
            d.address_from.describe(),
            origin(d.address),
        ),
        hint: format!(
            "if you trust {}, pass it with --remote (or set the environment variable that pairs it with the \
             credential); otherwise remove it from the project's settings",
            origin(d.address)
        ),
    })
}

/// Whether two URLs are the same scheme, host and port.
pub fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL's scheme, host and port, as shown in messages (never a path or credentials).
fn origin(url: &reqwest::Url) -> String {
    let shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    let shown = match url.port() {
        Some(port) => format!("{shown}:{port}"),
        None => shown,
    };
    redact_address(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    fn destination<'a>(
        credential_from: From,
        address: &'a reqwest::Url,
        address_from: From,
        paired: Option<&'a reqwest::Url>,
        default: Option<&'a reqwest::Url>,
    ) -> Destination<'a> {
        Destination {
            credential: "SYSTEMPROMPT_API_TOKEN",
            credential_from,
            address,
            address_from,
            paired,
            default,
        }
    }

    #[test]
    fn an_address_from_the_checkout_gets_no_credential_it_was_not_paired_with() {
        let (evil, real, default) = (
            url("https://evil.example"),
            url("https://api-sandbox.systemprompt.io"),
            url("https://api.systemprompt.io"),
        );
        let refused =
            check(&destination(From::Environment, &evil, From::Checkout, Some(&real), Some(&default)));
        let refusal = refused.unwrap_err();
        assert_eq!(
            refusal.message,
            "SYSTEMPROMPT_API_TOKEN from the environment goes only to https://api-sandbox.systemprompt.io, but the \
             project's settings (cloud-secrets.yaml or profile.yaml) names https://evil.example: nothing was sent"
        );
        // credentials.json is in the project too.
        assert!(
            check(&destination(From::Environment, &evil, From::CredentialsFile, None, Some(&default)))
                .is_err()
        );
        // A token from credentials.json goes only to that file's api_url.
        assert!(
            check(&destination(From::CredentialsFile, &evil, From::Checkout, Some(&real), Some(&default)))
                .is_err()
        );
        // The environment is the owner's: an address there is the owner's choice for any credential.
        assert!(
            check(&destination(From::CredentialsFile, &evil, From::Environment, Some(&real), Some(&default)))
                .is_ok()
        );
    }

    #[test]
    fn the_owner_s_addresses_and_matching_ones_are_allowed() {
        let (other, real, default) = (
            url("https://other.example"),
            url("https://api-sandbox.systemprompt.io/"),
            url("https://api.systemprompt.io"),
        );
        assert!(
            check(&destination(From::Environment, &other, From::CommandLine, None, Some(&default))).is_ok()
        );
        assert!(
            check(&destination(From::Environment, &other, From::Environment, None, Some(&default))).is_ok()
        );
        assert!(
            check(&destination(From::CredentialsFile, &other, From::CredentialsFile, None, None)).is_ok()
        );
        let same = url("https://api-sandbox.systemprompt.io:443/v1");
        assert!(
            check(&destination(From::Environment, &same, From::Checkout, Some(&real), Some(&default)))
                .is_ok()
        );
        assert!(
            check(&destination(From::Environment, &default, From::Checkout, None, Some(&default))).is_ok()
        );
        // Another port or scheme is another origin.
        let port = url("https://api-sandbox.systemprompt.io:8443");
        assert!(check(&destination(From::Environment, &port, From::Checkout, Some(&real), None)).is_err());
        let plain = url("http://api-sandbox.systemprompt.io");
        assert!(check(&destination(From::Environment, &plain, From::Checkout, Some(&real), None)).is_err());
        // With nothing paired and no default, only the command line may name the address.
        let vault = url("https://vault.example:8200");
        let refusal = check(&Destination {
            credential: "VAULT_TOKEN",
            credential_from: From::Environment,
            address: &vault,
            address_from: From::Checkout,
            paired: None,
            default: None,
        })
        .unwrap_err();
        assert!(
            refusal.message.contains("goes only to an address given on the command line"),
            "{}",
            refusal.message
        );
    }
}
