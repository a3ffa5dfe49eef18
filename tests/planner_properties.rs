//! Properties of the planner, for any desired and remote state: applying the plan reaches the
//! desired state for the managed keys, leaves ignored, deploy-owned and unmanaged keys alone,
//! and planning again finds nothing to do.

use std::collections::BTreeMap;

use cloud_secrets::desired::{Desired, Entry, Source};
use cloud_secrets::error::Location;
use cloud_secrets::plan::plan;
use cloud_secrets::policy::{self, Ignore, VarClass};
use cloud_secrets::remote::Remote;
use cloud_secrets::secret::SecretValue;
use proptest::prelude::*;

/// Keys drawn from a small pool, so that desired and remote collide often; the pool includes
/// the platform's special names.
const KEYS: [&str; 14] = [
    "openai",
    "gemini",
    "github",
    "database_url",
    "internal_database_url",
    "jwt_secret",
    "custom_a",
    "custom_b",
    "legacy_x",
    "fly_app_name",
    "systemprompt_api_url",
    "signing_key_pem",
    "systemprompt_custom_secrets",
    "oauth_at_rest_pepper",
];

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 1 => Just(Some(String::new())), 6 => "[a-c]{1,2}".prop_map(Some)]
}

fn desired_entries() -> impl Strategy<Value = Vec<(usize, Option<String>)>> {
    prop::collection::btree_map(0..KEYS.len(), value(), 0..KEYS.len()).prop_map(|m| m.into_iter().collect())
}

fn remote_state() -> impl Strategy<Value = BTreeMap<String, String>> {
    let names: Vec<String> = KEYS
        .iter()
        .map(|k| policy::variable_name(k))
        .chain(["SYSTEMPROMPT_API_TOKEN", "FLY_MACHINE_ID", "OTHER_1", "LEGACY_Y"].map(str::to_owned))
        .collect();
    prop::collection::btree_map(prop::sample::select(names), "[a-c]{1,2}", 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn applying_the_plan_reaches_the_desired_state(
        entries in desired_entries(),
        remote_vars in remote_state(),
        ignore_legacy in any::<bool>(),
    ) {
        let entries: Vec<Entry> = entries
            .into_iter()
            .map(|(i, v)| Entry {
                key: KEYS[i].to_owned(),
                value: v.map(SecretValue::new),
                source: Source::File,
                location: Location::named("secrets.json"),
            })
            .collect();
        let remote = Remote::with_values(
            remote_vars.iter().map(|(k, v)| (k.clone(), SecretValue::new(v.as_str()))).collect(),
            Some(1),
        );
        let ignore = if ignore_legacy { Ignore::new(&["LEGACY_*".into()]).unwrap() } else { Ignore::default() };
        let Ok(desired) = Desired::from_entries_ignoring(entries, &remote, ignore.clone()) else {
            // Two keys for one variable: refused before any plan.
            return Ok(());
        };
        let p = plan(&desired, &remote, None);
        let mut after: BTreeMap<String, SecretValue> =
            remote_vars.iter().map(|(k, v)| (k.clone(), SecretValue::new(v.as_str()))).collect();
        p.change_set(&desired).apply_to(&mut after);

        // Every desired variable holds its desired value.
        for (name, var) in &desired.vars {
            prop_assert_eq!(after.get(name), Some(&var.value), "{}", name);
        }
        for (name, before) in &remote_vars {
            let now = after.get(name).map(SecretValue::expose);
            let kept = desired.unset_names().any(|n| n == name) && !desired.vars.contains_key(name);
            match policy::classify(name) {
                // Ignored, deploy-owned and kept (not set here) variables are untouched.
                _ if ignore.matches(name) || kept => prop_assert_eq!(now, Some(before.as_str()), "{}", name),
                VarClass::DeployOwned => prop_assert_eq!(now, Some(before.as_str()), "{}", name),
                // System-managed and stale ones are cleaned up.
                VarClass::SystemManaged | VarClass::Stale => prop_assert_eq!(now, None, "{}", name),
                // Other managed ones are there only if desired.
                VarClass::Managed => prop_assert_eq!(now.is_some(), desired.vars.contains_key(name), "{}", name),
            }
        }
        // Nothing appears that is neither desired nor was there.
        for name in after.keys() {
            prop_assert!(desired.vars.contains_key(name) || remote_vars.contains_key(name), "{}", name);
        }
        // The plan never writes what the platform owns.
        for (name, _) in &p.change_set(&desired).upserts {
            prop_assert_eq!(policy::classify(name), VarClass::Managed, "{}", name);
            prop_assert!(!ignore.matches(name));
        }
        // Planning again finds nothing to do.
        let again = plan(&desired, &Remote::with_values(after, Some(2)), None);
        prop_assert!(again.is_empty(), "{:?}", again);
    }
}
