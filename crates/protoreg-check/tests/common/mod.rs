//! Helpers shared by this crate's integration tests.

use protoreg_check::Options;
use protoreg_schema::BreakingConfig;

/// Every buf category (FILE, PACKAGE, WIRE_JSON, WIRE), imports checked too.
pub fn all_categories() -> Options {
    Options {
        config: BreakingConfig {
            version: "v2".into(),
            use_ids: ["FILE", "PACKAGE", "WIRE_JSON", "WIRE"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        },
        ..Default::default()
    }
}
