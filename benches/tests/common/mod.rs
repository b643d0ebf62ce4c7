//! What the binary's tests share: the report read as a YCSB user's script
//! reads it.

use std::collections::BTreeMap;

/// Parses a report as three-field CSV, `[SECTION], Metric, Value`, as
/// YCSB's and go-ycsb's users do; panics on any other line. Answers the
/// values by section and metric.
pub fn parse_ycsb_csv(stdout: &str) -> BTreeMap<(String, String), String> {
    let mut m = BTreeMap::new();
    assert!(!stdout.trim().is_empty(), "an empty report");
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        assert_eq!(
            fields.len(),
            3,
            "not a [SECTION], Metric, Value line: {line:?}\n{stdout}"
        );
        let section = fields[0]
            .strip_prefix('[')
            .and_then(|f| f.strip_suffix(']'))
            .unwrap_or_else(|| panic!("no [SECTION] in {line:?}\n{stdout}"));
        assert!(
            !section.is_empty() && !fields[1].is_empty() && !fields[2].is_empty(),
            "an empty field in {line:?}"
        );
        m.insert(
            (section.to_string(), fields[1].to_string()),
            fields[2].to_string(),
        );
    }
    m
}
