//! `.env` parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloud_secrets::sources::parse_dotenv(std::path::Path::new(".env"), data);
});
