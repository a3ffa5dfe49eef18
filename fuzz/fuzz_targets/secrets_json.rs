//! secrets.json parsing never panics, and what it accepts maps to a desired state or a clear
//! error.
#![no_main]

use cloud_secrets::desired::{Desired, Entry, Source};
use cloud_secrets::remote::Remote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("secrets.json");
    if let Ok(entries) = cloud_secrets::secrets_file::parse(path, data) {
        let entries = entries
            .into_iter()
            .map(|e| Entry { key: e.key, value: e.value, source: Source::File, location: e.location })
            .collect();
        let _ = Desired::from_entries(entries, &Remote::default());
    }
});
