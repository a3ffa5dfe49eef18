//! profile.yaml parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloud_secrets::project::parse_settings(std::path::Path::new("profile.yaml"), data.to_vec());
});
