//! Placeholder until the renderer lands.
use super::report::Report;
/// Renders the report.
pub fn html(report: &Report) -> String {
    format!(
        "<!doctype html><pre>{}</pre>",
        serde_json::to_string_pretty(report).unwrap_or_default()
    )
}
