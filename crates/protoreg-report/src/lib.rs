//! Renders checker findings: buf's `text` and `json`, GitHub Actions workflow commands,
//! JUnit XML, SARIF 2.1.0 (GitHub code scanning) and a `pretty` format with the source line
//! and a fix hint. Renderers only read findings; the engine never formats.

use std::fmt::Write as _;

use protoreg_check::{Finding, RULES};

/// The output formats of `protoreg breaking --error-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    GithubActions,
    Junit,
    Sarif,
    Pretty,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "text" => Format::Text,
            "json" => Format::Json,
            "github-actions" => Format::GithubActions,
            "junit" => Format::Junit,
            "sarif" => Format::Sarif,
            "pretty" => Format::Pretty,
            _ => {
                return Err(format!(
                    "unknown format {s:?} (text, json, github-actions, junit, sarif, pretty)"
                ));
            }
        })
    }
}

/// Renders findings; `source` returns a file's text by display path (for `pretty`); `color`
/// adds ANSI colours to `pretty` (the machine formats never have them).
pub fn render(
    format: Format,
    findings: &[Finding],
    source: &dyn Fn(&str) -> Option<String>,
    color: bool,
) -> String {
    match format {
        Format::Text => text(findings),
        Format::Json => json(findings),
        Format::GithubActions => github(findings),
        Format::Junit => junit(findings),
        Format::Sarif => sarif(findings),
        Format::Pretty => pretty(findings, source, color),
    }
}

fn location(f: &Finding) -> String {
    let s = f.span;
    match &f.path {
        Some(p) => format!("{p}:{}:{}", s.start_line, s.start_column),
        None => "<input>".to_string(),
    }
}

/// buf's text format: `path:line:col:message`; a finding without a file (a deleted file or
/// package) is `<input>:1:1:message`, as buf prints it, so scripts can always split on `:`.
pub fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let at = match &f.path {
            Some(_) => location(f),
            None => "<input>:1:1".to_string(),
        };
        match &f.accepted {
            // buf's format has no severity: an accepted break says so after the message.
            Some(a) => {
                let _ = writeln!(out, "{at}:{} (accepted: {})", f.message, a.reason);
            }
            None => {
                let _ = writeln!(out, "{at}:{}", f.message);
            }
        }
    }
    out
}

/// buf's JSON format: one object a line.
pub fn json(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let mut obj = serde_json::Map::new();
        if let Some(p) = &f.path {
            obj.insert("path".into(), p.clone().into());
        }
        obj.insert("start_line".into(), f.span.start_line.into());
        obj.insert("start_column".into(), f.span.start_column.into());
        obj.insert("end_line".into(), f.span.end_line.into());
        obj.insert("end_column".into(), f.span.end_column.into());
        obj.insert("type".into(), f.rule.into());
        obj.insert("message".into(), f.message.clone().into());
        // Beyond buf's fields: the element (what an exemption names) and, for an accepted
        // break, why.
        if !f.element.is_empty() {
            obj.insert("element".into(), f.element.clone().into());
        }
        if let Some(a) = &f.accepted {
            obj.insert("accepted".into(), true.into());
            obj.insert("reason".into(), a.reason.clone().into());
            if let Some(by) = &a.by {
                obj.insert("accepted_by".into(), by.clone().into());
            }
        }
        let _ = writeln!(out, "{}", serde_json::Value::Object(obj));
    }
    out
}

/// Escapes text for a GitHub Actions workflow command (`property`: a `key=value` property,
/// where `:` and `,` are escaped too).
pub fn gh_escape(s: &str, property: bool) -> String {
    let s = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        s.replace(':', "%3A").replace(',', "%2C")
    } else {
        s
    }
}

/// GitHub Actions workflow commands (`::error file=...`).
pub fn github(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let s = f.span;
        let mut props = Vec::new();
        if let Some(p) = &f.path {
            props.push(format!("file={}", gh_escape(p, true)));
            props.push(format!(
                "line={},endLine={},col={},endColumn={}",
                s.start_line, s.end_line, s.start_column, s.end_column
            ));
        }
        props.push(format!("title={}", gh_escape(f.rule, true)));
        // An accepted break is a notice, not an error: it does not fail the job.
        let (level, message) = match &f.accepted {
            Some(a) => ("notice", format!("{} (accepted: {})", f.message, a.reason)),
            None => ("error", f.message.clone()),
        };
        let _ = writeln!(
            out,
            "::{level} {}::{}",
            props.join(","),
            gh_escape(&message, false)
        );
    }
    out
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one test suite per file, one failing test case per finding.
pub fn junit(findings: &[Finding]) -> String {
    let mut by_file: std::collections::BTreeMap<String, Vec<&Finding>> = Default::default();
    for f in findings {
        by_file
            .entry(f.path.clone().unwrap_or_else(|| "<input>".into()))
            .or_default()
            .push(f);
    }
    let failing = |fs: &[&Finding]| fs.iter().filter(|f| f.accepted.is_none()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all: Vec<&Finding> = findings.iter().collect();
    let _ = writeln!(
        out,
        "<testsuites name=\"protoreg breaking\" tests=\"{}\" failures=\"{}\">",
        findings.len(),
        failing(&all)
    );
    for (file, fs) in by_file {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\">",
            xml_escape(&file),
            fs.len(),
            failing(&fs)
        );
        for f in fs {
            let name = format!("{}:{}:{}", f.rule, f.span.start_line, f.span.start_column);
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\">",
                xml_escape(&file),
                xml_escape(&name)
            );
            match &f.accepted {
                // An accepted break passes; what was accepted and why stays in the report.
                Some(a) => {
                    let _ = writeln!(
                        out,
                        "      <system-out>accepted: {}: {}:{}</system-out>",
                        xml_escape(&a.reason),
                        xml_escape(&location(f)),
                        xml_escape(&f.message)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "      <failure message=\"{}\" type=\"{}\">{}:{}</failure>",
                        xml_escape(&f.message),
                        f.rule,
                        xml_escape(&location(f)),
                        xml_escape(&f.message)
                    );
                }
            }
            let _ = writeln!(out, "    </testcase>");
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

/// SARIF 2.1.0, one run, every rule described, one result per finding.
pub fn sarif(findings: &[Finding]) -> String {
    use serde_json::json;
    let rules: Vec<_> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": {"text": r.id},
                "fullDescription": {"text": r.purpose},
                "properties": {"categories": r.categories},
            })
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            let mut r = json!({
                "ruleId": f.rule,
                "level": "error",
                "message": {"text": f.message},
            });
            if let Some(a) = &f.accepted {
                // SARIF's own way to say "reviewed and let through".
                r["level"] = json!("note");
                r["suppressions"] =
                    json!([{"kind": "external", "status": "accepted", "justification": a.reason}]);
            }
            if let Some(p) = &f.path {
                r["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": {"uri": p},
                        "region": {
                            "startLine": f.span.start_line,
                            "startColumn": f.span.start_column,
                            "endLine": f.span.end_line,
                            "endColumn": f.span.end_column,
                        }
                    }
                }]);
            }
            r
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "protoreg", "informationUri": "https://github.com/protoreg/protoreg", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }]
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// ANSI styles of the `pretty` format (as rustc's diagnostics: red errors, blue gutters).
const RED_BOLD: &str = "\x1b[1;31m";
const BLUE_BOLD: &str = "\x1b[1;34m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// `text` in `style` when `color`, else as is.
fn paint(style: &str, text: &str, color: bool) -> String {
    if color {
        format!("{style}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// Human format: location, rule, message, the source line with a caret, and a fix hint.
pub fn pretty(
    findings: &[Finding],
    source: &dyn Fn(&str) -> Option<String>,
    color: bool,
) -> String {
    let mut out = String::new();
    let mut cache: std::collections::HashMap<String, Option<String>> = Default::default();
    for f in findings {
        match &f.accepted {
            Some(_) => {
                let head = format!("accepted[{}]", f.rule);
                let _ = writeln!(out, "{}: {}", paint(CYAN, &head, color), f.message);
            }
            None => {
                let head = format!("error[{}]", f.rule);
                let _ = writeln!(out, "{}: {}", paint(RED_BOLD, &head, color), f.message);
            }
        }
        let _ = writeln!(out, "  {} {}", paint(BLUE_BOLD, "-->", color), location(f));
        if let Some(p) = &f.path {
            let text = cache.entry(p.clone()).or_insert_with(|| source(p));
            if let Some(line) = text
                .as_deref()
                .and_then(|t| t.lines().nth(f.span.start_line as usize - 1))
            {
                let n = f.span.start_line.to_string();
                let pad = " ".repeat(n.len());
                let col = f.span.start_column as usize;
                let width = if f.span.end_line == f.span.start_line {
                    (f.span.end_column as usize).saturating_sub(col).max(1)
                } else {
                    line.chars().count().saturating_sub(col - 1).max(1)
                };
                let gutter = paint(BLUE_BOLD, &format!("{pad} |"), color);
                let _ = writeln!(out, "{gutter}");
                let _ = writeln!(out, "{} {line}", paint(BLUE_BOLD, &format!("{n} |"), color));
                let _ = writeln!(
                    out,
                    "{gutter} {}{}",
                    " ".repeat(col.saturating_sub(1)),
                    paint(RED_BOLD, &"^".repeat(width), color)
                );
            }
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "  {} {fix}", paint(CYAN, "= fix:", color));
        }
        if let Some(r) = RULES.iter().find(|r| r.id == f.rule) {
            let _ = writeln!(out, "  {} {}", paint(CYAN, "= why:", color), r.purpose);
        }
        if let Some(a) = &f.accepted {
            let by =
                a.by.as_deref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {}{by}",
                paint(CYAN, "= accepted:", color),
                a.reason
            );
        }
        out.push('\n');
    }
    let accepted = findings.iter().filter(|f| f.accepted.is_some()).count();
    match (findings.len() - accepted, accepted) {
        (0, 0) => {}
        (n, 0) => {
            let _ = writeln!(out, "{n} breaking change(s)");
        }
        (n, a) => {
            let _ = writeln!(out, "{n} breaking change(s), {a} accepted");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protoreg_check::Span;

    fn finding(path: Option<&str>, message: &str) -> Finding {
        Finding {
            path: path.map(str::to_string),
            span: Span {
                start_line: 3,
                start_column: 5,
                end_line: 3,
                end_column: 9,
            },
            rule: "FIELD_SAME_TYPE",
            message: message.to_string(),
            fix: Some("add a new field".into()),
            element: "acme.v1.User.id".into(),
            accepted: None,
            file_name: None,
            against_file_name: None,
            packages: (None, None),
        }
    }

    #[test]
    fn text_is_bufs_format() {
        assert_eq!(
            text(&[finding(Some("a/b.proto"), "changed")]),
            "a/b.proto:3:5:changed\n"
        );
        assert_eq!(text(&[finding(None, "gone")]), "<input>:1:1:gone\n");
    }

    #[test]
    fn json_omits_path_of_deleted_files() {
        let out = json(&[finding(None, "gone")]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert!(v.get("path").is_none());
        assert_eq!(v["type"], "FIELD_SAME_TYPE");
        assert_eq!(v["end_column"], 9);
    }

    #[test]
    fn github_escapes_workflow_command_syntax() {
        let out = github(&[finding(Some("a,b:c.proto"), "line1\nline2 100%")]);
        assert_eq!(
            out,
            "::error file=a%2Cb%3Ac.proto,line=3,endLine=3,col=5,endColumn=9,title=FIELD_SAME_TYPE::line1%0Aline2 100%25\n"
        );
    }

    #[test]
    fn junit_escapes_xml() {
        let out = junit(&[finding(Some("a.proto"), "<\"&'>")]);
        assert!(
            out.contains("message=\"&lt;&quot;&amp;&apos;&gt;\""),
            "{out}"
        );
        assert!(out.contains("tests=\"1\" failures=\"1\""), "{out}");
    }

    #[test]
    fn sarif_describes_every_rule() {
        let v: serde_json::Value = serde_json::from_str(&sarif(&[])).unwrap();
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .len(),
            RULES.len()
        );
        assert_eq!(v["runs"][0]["results"], serde_json::json!([]));
    }

    #[test]
    fn pretty_shows_source_and_caret() {
        let src = "a\nb\n    int32 x = 1;\n";
        let out = pretty(
            &[finding(Some("a.proto"), "changed")],
            &|_| Some(src.to_string()),
            false,
        );
        assert!(
            out.contains("3 |     int32 x = 1;\n  |     ^^^^\n"),
            "{out}"
        );
        assert!(out.contains("= fix: add a new field"), "{out}");
        assert!(!out.contains('\x1b'), "no colour unless asked: {out:?}");
    }

    #[test]
    fn pretty_colours_only_when_asked() {
        let out = pretty(&[finding(Some("a.proto"), "changed")], &|_| None, true);
        assert!(
            out.starts_with("\x1b[1;31merror[FIELD_SAME_TYPE]\x1b[0m: changed"),
            "{out:?}"
        );
        for f in [Format::Text, Format::Json, Format::Sarif] {
            let machine = render(f, &[finding(Some("a.proto"), "x")], &|_| None, true);
            assert!(!machine.contains('\x1b'), "{machine:?}");
        }
    }
}
