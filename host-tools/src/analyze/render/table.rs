//! HTML tables and section scaffolding shared by every section.

use super::svg::escape;
use std::fmt::Write;

/// A table: `headers`, then `rows` of raw text (escaped here); columns from
/// `numeric_from` on are right-aligned numbers.
pub fn table(headers: &[&str], rows: &[Vec<String>], numeric_from: usize) -> String {
    let class = |j: usize| {
        if j >= numeric_from {
            " class=\"n\""
        } else {
            ""
        }
    };
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for (j, h) in headers.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", class(j), escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (j, cell) in row.iter().enumerate() {
            let _ = write!(out, "<td{}>{}</td>", class(j), escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A section: heading, the one sentence on how to read it, then `body`.
pub fn section(id: &str, title: &str, how_to_read: &str, body: &str) -> String {
    format!(
        "<section id=\"{}\"><h2>{}</h2><p class=\"read\">{}</p>{body}</section>",
        escape(id),
        escape(title),
        escape(how_to_read)
    )
}

/// A figure with a caption.
pub fn figure(svg: &str, caption: &str) -> String {
    format!(
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        escape(caption)
    )
}
