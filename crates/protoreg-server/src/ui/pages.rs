//! The pages: subjects, a subject's timeline, a version's files, a file, a diff with its
//! findings next to their lines, and the rules.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::index::{TypeRef, VersionIndex};
use super::{UiError, UiResult};
use super::{esc, page, seg};
use crate::AppState;
use crate::api::{FindingBody, rfc3339};
use crate::service::{self, domain};

/// Subjects a page lists.
const PAGE_SIZE: i64 = 100;

/// A page handler's result: the page, or the error as a page.
pub(super) fn respond(r: UiResult<Html<String>>) -> Response {
    match r {
        Ok(html) => html.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ListQuery {
    q: String,
    after: Option<String>,
}

pub(super) async fn subjects(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Response {
    respond(subjects_page(&state, &q).await)
}

async fn subjects_page(state: &AppState, q: &ListQuery) -> UiResult<Html<String>> {
    let filter = q.q.trim().to_lowercase();
    let mut rows = String::new();
    let mut after = q.after.clone();
    let mut shown = 0;
    let mut last_shown: Option<String> = None;
    let mut page_subjects = Vec::new();
    let mut more_exist = false;
    // Filtering reads on until a page is full (names are listed in order).
    'pages: loop {
        let list = state.store.subjects(after.as_deref(), PAGE_SIZE).await?;
        let done = list.len() < PAGE_SIZE as usize;
        for s in &list {
            after = Some(s.name.clone());
            if !filter.is_empty() && !s.name.to_lowercase().contains(&filter) {
                continue;
            }
            if shown == PAGE_SIZE {
                more_exist = true;
                break 'pages;
            }
            shown += 1;
            last_shown = Some(s.name.clone());
            page_subjects.push(s.clone());
        }
        if done {
            break;
        }
    }
    let global = state.global_config().await?;
    for s in &page_subjects {
        let policy = state
            .store
            .config(&s.name)
            .await?
            .unwrap_or_else(|| global.clone());
        let latest = match s.latest_version {
            Some(n) => state.store.version_meta(&s.name, Some(n), false).await?,
            None => None,
        };
        let (version, pushed, labels) = match &latest {
            Some(m) => (
                format!("v{}", m.version),
                rfc3339(m.created_at),
                m.labels
                    .iter()
                    .map(|(k, v)| format!("<span class=\"label\">{}={}</span>", esc(k), esc(v)))
                    .collect::<String>(),
            ),
            None => ("—".into(), String::new(), String::new()),
        };
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/subjects/{}\">{}</a></td><td>{version}</td><td><code>{}</code></td>\
             <td>{pushed}</td><td>{labels}</td><td>{}</td></tr>",
            seg(&s.name),
            esc(&s.name),
            esc(policy.mode.as_str()),
            state.store.dependent_count(&s.name).await?
        );
    }
    let more = match (more_exist, last_shown) {
        // The next page starts after the last name shown.
        (true, Some(last)) => format!(
            "<p><a rel=\"next\" href=\"/ui/?q={}&amp;after={}\">next page</a></p>",
            esc(&seg(&q.q)),
            esc(&seg(&last))
        ),
        _ => String::new(),
    };
    let body = format!(
        "<h1>Subjects</h1><form class=\"filter\" method=\"get\" action=\"/ui/\">\
         <label>Filter <input name=\"q\" value=\"{}\" autofocus></label> <button>Filter</button></form>\
         <table><thead><tr><th>Subject</th><th>Latest</th><th>Policy</th><th>Last push</th>\
         <th>Labels</th><th>Dependents</th></tr></thead>\
         <tbody>{rows}</tbody></table>{}{more}",
        esc(&q.q),
        if shown == 0 {
            "<p class=\"muted\">No subjects.</p>"
        } else {
            ""
        }
    );
    Ok(page("subjects", &[], &body))
}

pub(super) async fn subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> Response {
    respond(subject_page(&state, &subject).await)
}

async fn subject_page(state: &AppState, subject: &str) -> UiResult<Html<String>> {
    let subject = service::check_subject(subject)?;
    let versions = state.store.versions(subject, true).await?;
    if versions.is_empty() {
        return Err(UiError::not_found(format!("no subject {subject:?}")));
    }
    let config = state.effective_config(subject).await?;
    let accepted = state.store.accepted_breaks(subject, None).await?;
    // Which services run which version now.
    let mut running: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for d in state.store.subject_consumers(subject).await? {
        for p in d.pins.iter().filter(|p| p.subject == subject) {
            running.entry(p.version).or_default().push(format!(
                "<a href=\"/ui/environments/{}\">{}</a>: {} ({})",
                seg(&d.environment),
                esc(&d.environment),
                esc(&d.service),
                esc(&p.role)
            ));
        }
    }
    let mut rows = String::new();
    for v in versions.iter().rev() {
        let mut labels: String = v
            .labels
            .iter()
            .map(|(k, val)| format!("<span class=\"label\">{}={}</span>", esc(k), esc(val)))
            .collect();
        if let Some(a) = accepted.get(&v.version) {
            labels.push_str(&accepted_break_html(a));
        }
        let deps: String = v
            .deps
            .iter()
            .map(|d| {
                format!(
                    "<a href=\"/ui/subjects/{}/versions/{}\">{}@{}</a> ",
                    seg(&d.subject),
                    d.version,
                    esc(&d.subject),
                    d.version
                )
            })
            .collect();
        let class = if v.deleted { " class=\"deleted\"" } else { "" };
        let _ = write!(
            rows,
            "<tr{class}><td><a href=\"/ui/subjects/{s}/versions/{n}\">v{n}</a>{}</td><td>{}</td>\
             <td class=\"digest\">{}</td><td>{labels}</td><td>{deps}</td><td>{}</td></tr>",
            if v.deleted { " (deleted)" } else { "" },
            rfc3339(v.created_at),
            esc(&v.digest.chars().take(19).collect::<String>()),
            running
                .get(&v.version)
                .map(|r| r.join("<br>"))
                .unwrap_or_default(),
            s = seg(subject),
            n = v.version,
        );
    }
    let dependents = state.store.latest_dependents(subject).await?;
    let dependents: String = dependents
        .iter()
        .map(|d| {
            format!(
                "<li><a href=\"/ui/subjects/{}/versions/{}\">{}@{}</a></li>",
                seg(&d.subject),
                d.version,
                esc(&d.subject),
                d.version
            )
        })
        .collect();
    let mut refused = String::new();
    for (i, r) in state.refusals(subject).await?.iter().enumerate() {
        let labels: String = r
            .labels
            .iter()
            .map(|(k, val)| format!("<span class=\"label\">{}={}</span>", esc(k), esc(val)))
            .collect();
        let findings: String = r.findings.iter().map(finding_line).collect();
        let _ = write!(
            refused,
            "<details id=\"refusal-{n}\"><summary>{} — {} finding(s) under <code>{}</code> {labels}</summary>{findings}</details>",
            esc(&r.created_at),
            r.findings.len(),
            esc(&r.policy.mode),
            n = i + 1
        );
    }
    if refused.is_empty() {
        refused = "<p class=\"muted\">No refused pushes.</p>".into();
    }
    let body = format!(
        "<h1>{}</h1><p>Policy: <code>{}</code> over <code>{}</code></p>\
         <h2>Versions</h2><table><thead><tr><th>Version</th><th>Created</th><th>Digest</th>\
         <th>Labels</th><th>Dependencies</th><th>Runs in</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Refused pushes</h2>{refused}<h2>Depended on by</h2>{}",
        esc(subject),
        esc(config.mode.as_str()),
        esc(&config.categories.join(", ")),
        if dependents.is_empty() {
            "<p class=\"muted\">No subject's latest version depends on it.</p>".to_string()
        } else {
            format!("<ul>{dependents}</ul>")
        }
    );
    Ok(page(subject, &[(subject.to_string(), None)], &body))
}

/// One finding as a line: rule, place, message.
pub(super) fn finding_line(f: &crate::api::FindingBody) -> String {
    format!(
        "<div class=\"finding\"><code>{}</code> {}:{}:{}: {}</div>",
        esc(&f.rule),
        esc(f.path.as_deref().unwrap_or("<input>")),
        f.start_line,
        f.start_column,
        esc(&f.message)
    )
}

/// A break accepted on purpose: who, why, and the findings it let through.
fn accepted_break_html(a: &protoreg_store::AcceptedBreak) -> String {
    let findings: Vec<crate::api::FindingBody> =
        serde_json::from_value(a.findings.clone()).unwrap_or_default();
    let list: String = findings.iter().map(finding_line).collect();
    format!(
        "<details class=\"accepted\"><summary>accepted {} breaking change(s) — {} (by {})</summary>{list}</details>",
        findings.len(),
        esc(&a.reason),
        esc(&a.by)
    )
}

pub(super) async fn version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    respond(version_page(&state, &subject, &version).await)
}

async fn version_page(state: &AppState, subject: &str, version: &str) -> UiResult<Html<String>> {
    let subject = service::check_subject(subject)?;
    // Only the manifest is read (no file text): a googleapis-size version lists in
    // milliseconds even when nothing of it is cached yet.
    let missing = || UiError::not_found(format!("no version {version} of subject {subject:?}"));
    let (n, _) = state
        .store
        .version_ref(
            subject,
            crate::api::parse_version(version).map_err(UiError::bad_request)?,
        )
        .await?
        .ok_or_else(missing)?;
    let meta = state
        .store
        .version_meta(subject, Some(n), false)
        .await?
        .ok_or_else(missing)?;
    let paths = state
        .store
        .version_paths(subject, n)
        .await?
        .ok_or_else(missing)?;
    let mut files = String::new();
    for path in &paths {
        let _ = write!(
            files,
            "<li><a href=\"/ui/subjects/{}/versions/{n}/files/{}\">{}</a></li>",
            seg(subject),
            esc(path),
            esc(path),
        );
    }
    let diff = if n > 1 {
        format!(
            "<p><a href=\"/ui/subjects/{}/diff?from={}&amp;to={n}\">Changes from v{} to v{n}</a></p>",
            seg(subject),
            n - 1,
            n - 1
        )
    } else {
        String::new()
    };
    let accepted = match state.store.accepted_break(subject, n).await? {
        Some(a) => format!("<h2>Accepted break</h2>{}", accepted_break_html(&a)),
        None => String::new(),
    };
    let runs: String = state
        .store
        .consumers(subject, n)
        .await?
        .iter()
        .map(|d| {
            let role = d
                .pins
                .iter()
                .filter(|p| p.subject == subject && p.version == n)
                .map(|p| p.role.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let instance = if d.instance.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"muted\">({})</span>", esc(&d.instance))
            };
            format!(
                "<li><a href=\"/ui/environments/{}\">{}</a>: {}{instance} — {}</li>",
                seg(&d.environment),
                esc(&d.environment),
                esc(&d.service),
                esc(&role)
            )
        })
        .collect();
    let runs = if runs.is_empty() {
        "<p class=\"muted\">No recorded deployment runs this version.</p>".to_string()
    } else {
        format!("<ul>{runs}</ul>")
    };
    let body = format!(
        "<h1>{} v{n}</h1><p class=\"digest\">{}</p><p>Created {}</p>{diff}{accepted}<h2>Runs in</h2>{runs}<h2>Files</h2><ul>{files}</ul>",
        esc(subject),
        esc(&meta.digest),
        rfc3339(meta.created_at),
    );
    Ok(page(
        &format!("{subject} v{n}"),
        &[
            (
                subject.to_string(),
                Some(format!("/ui/subjects/{}", seg(subject))),
            ),
            (format!("v{n}"), None),
        ],
        &body,
    ))
}

pub(super) async fn file(
    State(state): State<AppState>,
    Path((subject, version, path)): Path<(String, String, String)>,
) -> Response {
    respond(file_page(&state, &subject, &version, &path).await)
}

async fn file_page(
    state: &AppState,
    subject: &str,
    version: &str,
    path: &str,
) -> UiResult<Html<String>> {
    let subject = service::check_subject(subject)?;
    let n = crate::api::parse_version(version).map_err(UiError::bad_request)?;
    let (v, descriptor) = state.load_version(subject, n).await?;
    let n = v.meta.version;
    let text = v
        .files
        .get(path)
        .ok_or_else(|| UiError::not_found(format!("no file {path:?} in {subject}@{n}")))?;
    let index = match state.ui.get(subject, n) {
        Some(i) => i,
        None => {
            let own: std::collections::BTreeSet<String> = v.files.keys().cloned().collect();
            let built = service::blocking(move || VersionIndex::build(&descriptor, &own))
                .await?
                .map_err(|e| {
                    UiError::from(service::Error::Internal(format!("corrupt index: {e}")))
                })?;
            let built = std::sync::Arc::new(built);
            state.ui.put(subject, n, built.clone());
            built
        }
    };
    // Files of dependencies link to the dependency's version.
    let providers = state
        .closures
        .get(&state.store, subject, &v.meta.deps)
        .await
        .map_err(service::Error::from)?;
    let link = |target: &str| -> Option<String> {
        let (file, line) = index.defs.get(target)?;
        if v.files.contains_key(file) {
            return Some(format!(
                "/ui/subjects/{}/versions/{n}/files/{}#L{line}",
                seg(subject),
                esc(file)
            ));
        }
        let provider = &providers.get(file)?.provider;
        let (dep, dep_n) = provider.rsplit_once('@')?;
        Some(format!(
            "/ui/subjects/{}/versions/{dep_n}/files/{}#L{line}",
            seg(dep),
            esc(file)
        ))
    };
    let no_refs = Vec::new();
    let refs = index.refs.get(path).unwrap_or(&no_refs);
    let mut docs = String::new();
    for d in index.docs.get(path).into_iter().flatten() {
        let _ = write!(
            docs,
            "<dt><a href=\"#L{}\">{} <code>{}</code></a></dt><dd>{}</dd>",
            d.line,
            d.kind,
            esc(&d.name),
            if d.comment.is_empty() {
                "<span class=\"muted\">(no comment)</span>".to_string()
            } else {
                esc(&d.comment).replace('\n', "<br>")
            }
        );
    }
    let body = format!(
        "<h1>{}</h1><details open><summary>Definitions</summary><dl class=\"docs\">{docs}</dl></details>\
         <pre class=\"src\">{}</pre>",
        esc(path),
        source_lines(text, refs, &link, &BTreeMap::new())
    );
    Ok(page(
        path,
        &[
            (
                subject.to_string(),
                Some(format!("/ui/subjects/{}", seg(subject))),
            ),
            (
                format!("v{n}"),
                Some(format!("/ui/subjects/{}/versions/{n}", seg(subject))),
            ),
            (path.to_string(), None),
        ],
        &body,
    ))
}

/// A file's lines with numbers and anchors (`#L42`), lightly highlighted, type names linked
/// to their definitions (`link` gives a target's URL); `notes` are HTML shown after the line
/// they name.
fn source_lines(
    text: &str,
    refs: &[TypeRef],
    link: &dyn Fn(&str) -> Option<String>,
    notes: &BTreeMap<usize, String>,
) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let _ = write!(
            out,
            "<span class=\"ln\" id=\"L{n}\"><a class=\"n\" href=\"#L{n}\">{n}</a>{}</span>",
            linked_line(line, refs.iter().filter(|r| r.line == i), link)
        );
        if let Some(note) = notes.get(&n) {
            out.push_str(note);
        }
    }
    out
}

/// One line, highlighted, with each type reference on it a link (when its text is the
/// type's name: spans that do not match are left unlinked).
fn linked_line<'r>(
    line: &str,
    refs: impl Iterator<Item = &'r TypeRef>,
    link: &dyn Fn(&str) -> Option<String>,
) -> String {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let byte_at = |col: usize| chars.get(col).map_or(line.len(), |(b, _)| *b);
    let mut refs: Vec<&TypeRef> = refs.collect();
    refs.sort_by_key(|r| r.start);
    let mut out = String::new();
    let mut done = 0;
    for r in refs {
        let (a, b) = (byte_at(r.start), byte_at(r.end));
        if a < done || b <= a {
            continue;
        }
        let written = &line[a..b];
        let short = r.target.rsplit('.').next().unwrap_or_default();
        let Some(href) =
            link(&r.target).filter(|_| written.trim_start_matches('.').ends_with(short))
        else {
            continue;
        };
        out.push_str(&highlight(&line[done..a]));
        let _ = write!(
            out,
            "<a class=\"type\" href=\"{href}\" title=\"{}\">{}</a>",
            esc(&r.target),
            esc(written)
        );
        done = b;
    }
    out.push_str(&highlight(&line[done..]));
    out
}

/// Protobuf keywords that get a class of their own.
const KEYWORDS: &[&str] = &[
    "syntax",
    "edition",
    "package",
    "import",
    "option",
    "message",
    "enum",
    "service",
    "rpc",
    "returns",
    "stream",
    "oneof",
    "map",
    "repeated",
    "optional",
    "required",
    "reserved",
    "extend",
    "extensions",
    "public",
    "weak",
    "group",
    "to",
    "max",
];

/// One line escaped, with keywords, strings and `//` comments wrapped in spans.
fn highlight(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        if rest.starts_with("//") {
            let _ = write!(out, "<span class=\"com\">{}</span>", esc(rest));
            break;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '"' || c == '\'' {
            let end = rest[1..].find(c).map(|i| i + 2).unwrap_or(rest.len());
            let _ = write!(out, "<span class=\"str\">{}</span>", esc(&rest[..end]));
            rest = &rest[end..];
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if KEYWORDS.contains(&word) {
                let _ = write!(out, "<span class=\"kw\">{word}</span>");
            } else {
                out.push_str(&esc(word));
            }
            rest = &rest[end..];
        } else {
            out.push_str(&esc(&rest[..c.len_utf8()]));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    from: String,
    to: String,
    page: Option<usize>,
    /// `split` for side by side; unified otherwise.
    view: Option<String>,
}

pub(super) async fn diff(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Response {
    respond(diff_page(&state, &subject, &q).await)
}

/// Changed files a diff page shows at once (long diffs are paged).
const DIFF_FILES_PER_PAGE: usize = 50;

async fn diff_page(state: &AppState, subject: &str, q: &DiffQuery) -> UiResult<Html<String>> {
    let subject = service::check_subject(subject)?;
    // Versions by number and digest only: their files are read from the manifests, the
    // texts only of the files a page shows, and the findings kept from an earlier
    // computation (the push that made `to` computes the default diff in the background).
    let find =
        |v: &str| {
            let v = v.to_string();
            async move {
                let n = crate::api::parse_version(&v).map_err(UiError::bad_request)?;
                state.store.version_ref(subject, n).await?.ok_or_else(|| {
                    UiError::not_found(format!("no version {v} of subject {subject:?}"))
                })
            }
        };
    let from = find(&q.from).await?;
    let to = find(&q.to).await?;
    let config = state.effective_config(subject).await?;
    let key = DiffKey {
        subject: subject.to_string(),
        from: from.clone(),
        to: to.clone(),
        policy: (config.mode.to_string(), config.categories.clone()),
    };
    let result = match state.ui.diff(&key) {
        Some(r) => r,
        None => {
            let missing = |v: &(i64, String)| {
                UiError::not_found(format!("no version {} of subject {subject:?}", v.0))
            };
            let old_files = state
                .store
                .version_text_digests(subject, from.0)
                .await?
                .ok_or_else(|| missing(&from))?;
            let new_files = state
                .store
                .version_text_digests(subject, to.0)
                .await?
                .ok_or_else(|| missing(&to))?;
            let findings = state.diff_findings(subject, &from, &to, &config).await?;
            let computed = std::sync::Arc::new(DiffResult {
                findings,
                changed: domain::changed_by_digest(&old_files, &new_files),
                old_files,
                new_files,
                texts: Default::default(),
            });
            state.ui.put_diff(key, computed.clone());
            computed
        }
    };
    let findings = &result.findings;
    let (a, b) = (from.0, to.0);
    // Findings by file and line of the new version.
    let mut by_file: BTreeMap<&str, BTreeMap<usize, Vec<&FindingBody>>> = BTreeMap::new();
    let mut summary: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *summary.entry(f.rule.as_str()).or_default() += 1;
        by_file
            .entry(f.path.as_deref().unwrap_or(""))
            .or_default()
            .entry(f.start_line as usize)
            .or_default()
            .push(f);
    }
    let mut body = format!(
        "<h1>{} v{a} → v{b}</h1><p>Breaking changes under the subject's policy \
         (<code>{}</code> rules), v{b} checked against v{a} (BACKWARD's direction): \
         <strong>{}</strong>.</p>",
        esc(subject),
        esc(&config.categories.join(", ")),
        findings.len()
    );
    if !summary.is_empty() {
        body.push_str("<table><thead><tr><th>Rule</th><th>Findings</th><th>Categories</th></tr></thead><tbody>");
        for (rule, count) in &summary {
            let cats = protoreg_check::RULES
                .iter()
                .find(|r| r.id == *rule)
                .map(|r| r.categories.join(", "))
                .unwrap_or_default();
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{count}</td><td>{}</td></tr>",
                esc(rule),
                esc(&cats)
            );
        }
        body.push_str("</tbody></table>");
    }
    // The page of changed files asked for; files with findings but no text change (or no
    // file: deletions) come after the changed ones.
    let changed: std::collections::HashMap<&str, &'static str> = result
        .changed
        .iter()
        .map(|(p, status)| (p.as_str(), *status))
        .collect();
    let mut sections: Vec<(&str, Option<&'static str>)> = result
        .changed
        .iter()
        .map(|(p, status)| (p.as_str(), Some(*status)))
        .collect();
    for path in by_file.keys() {
        if !changed.contains_key(path) {
            sections.push((path, None));
        }
    }
    let split = q.view.as_deref() == Some("split");
    let view_param = if split { "&amp;view=split" } else { "" };
    let pages = sections.len().div_ceil(DIFF_FILES_PER_PAGE).max(1);
    let current = q.page.unwrap_or(1).clamp(1, pages);
    let shown = sections
        .iter()
        .skip((current - 1) * DIFF_FILES_PER_PAGE)
        .take(DIFF_FILES_PER_PAGE);
    let nav = if pages > 1 {
        let link = |p: usize, label: &str| {
            format!(
                "<a href=\"/ui/subjects/{}/diff?from={a}&amp;to={b}&amp;page={p}{view_param}\">{label}</a>",
                seg(subject)
            )
        };
        format!(
            "<p class=\"pages\">Files {}–{} of {} {} {}</p>",
            (current - 1) * DIFF_FILES_PER_PAGE + 1,
            (current * DIFF_FILES_PER_PAGE).min(sections.len()),
            sections.len(),
            if current > 1 {
                link(current - 1, "previous")
            } else {
                String::new()
            },
            if current < pages {
                link(current + 1, "next")
            } else {
                String::new()
            },
        )
    } else {
        String::new()
    };
    body.push_str(&nav);
    let base = format!(
        "/ui/subjects/{}/diff?from={a}&amp;to={b}&amp;page={current}",
        seg(subject)
    );
    let _ = write!(
        body,
        "<p class=\"views\">{} · {}</p>",
        if split {
            format!("<a href=\"{base}\">unified</a>")
        } else {
            "<strong>unified</strong>".into()
        },
        if split {
            "<strong>side by side</strong>".into()
        } else {
            format!("<a href=\"{base}&amp;view=split\">side by side</a>")
        },
    );
    // The text diffs of this page's files (computed when first shown, then kept).
    let wanted: Vec<(String, &'static str)> = shown
        .clone()
        .filter_map(|(p, status)| status.map(|st| (p.to_string(), st)))
        .collect();
    let texts = result.texts_for(state, wanted).await?;
    for (path, status) in shown {
        let diff = status.and_then(|_| texts.get(*path));
        let notes: BTreeMap<usize, String> = by_file
            .get(path)
            .map(|lines| {
                lines
                    .iter()
                    .map(|(line, fs)| (*line, fs.iter().map(|f| finding_note(f)).collect()))
                    .collect()
            })
            .unwrap_or_default();
        match diff {
            Some(d) => {
                let _ = write!(
                    body,
                    "<h2 id=\"{}\">{} <span class=\"muted\">{}</span></h2>{}",
                    esc(&d.path),
                    esc(&d.path),
                    esc(&d.status),
                    if split {
                        split_lines(&d.diff, &notes)
                    } else {
                        format!(
                            "<pre class=\"src diff\">{}</pre>",
                            diff_lines(&d.diff, &notes)
                        )
                    }
                );
            }
            None => {
                let _ = write!(
                    body,
                    "<h2>{}</h2>{}",
                    esc(if path.is_empty() {
                        "(deleted files)"
                    } else {
                        path
                    }),
                    notes.values().cloned().collect::<String>()
                );
            }
        }
    }
    body.push_str(&nav);
    Ok(page(
        &format!("{subject} v{a} → v{b}"),
        &[
            (
                subject.to_string(),
                Some(format!("/ui/subjects/{}", seg(subject))),
            ),
            (format!("v{a} → v{b}"), None),
        ],
        &body,
    ))
}

/// What a diff page shows, computed once per (versions, policy) and kept: the findings and
/// which files changed; a file's text diff is made when a page first shows it.
pub struct DiffResult {
    findings: Vec<FindingBody>,
    changed: Vec<(String, &'static str)>,
    /// Both versions' own files: path → text digest.
    old_files: BTreeMap<String, String>,
    new_files: BTreeMap<String, String>,
    texts:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<crate::api::FileDiff>>>,
}

impl DiffResult {
    /// The text diffs of `files` (path, status), made now where not made before (reading
    /// only those files' texts).
    async fn texts_for(
        &self,
        state: &AppState,
        files: Vec<(String, &'static str)>,
    ) -> UiResult<std::collections::HashMap<String, std::sync::Arc<crate::api::FileDiff>>> {
        let missing: Vec<(String, &'static str)> = {
            let texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
            files
                .iter()
                .filter(|(p, _)| !texts.contains_key(p))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let digests: Vec<String> = missing
                .iter()
                .flat_map(|(p, _)| [self.old_files.get(p), self.new_files.get(p)])
                .flatten()
                .cloned()
                .collect();
            let bodies = state.store.texts(&digests).await?;
            let text = |side: &BTreeMap<String, String>, p: &str| {
                side.get(p)
                    .and_then(|d| bodies.get(d))
                    .cloned()
                    .unwrap_or_default()
            };
            let pairs: Vec<(String, &'static str, String, String)> = missing
                .iter()
                .map(|(p, st)| {
                    (
                        p.clone(),
                        *st,
                        text(&self.old_files, p),
                        text(&self.new_files, p),
                    )
                })
                .collect();
            let made = service::blocking(move || {
                pairs
                    .iter()
                    .map(|(p, st, old, new)| domain::text_diff(p, st, old, new))
                    .collect::<Vec<_>>()
            })
            .await?;
            let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
            for d in made {
                texts.insert(d.path.clone(), std::sync::Arc::new(d));
            }
        }
        let texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        Ok(files
            .iter()
            .filter_map(|(p, _)| texts.get(p).map(|d| (p.clone(), d.clone())))
            .collect())
    }
}

/// A diff's identity: both versions (with digests) and the policy it was checked under.
#[derive(Clone, PartialEq, Eq)]
pub struct DiffKey {
    subject: String,
    from: (i64, String),
    to: (i64, String),
    policy: (String, Vec<String>),
}

/// A finding as shown under its line: rule, message, why, fix.
fn finding_note(f: &FindingBody) -> String {
    let why = protoreg_check::RULES
        .iter()
        .find(|r| r.id == f.rule)
        .map(|r| r.purpose)
        .unwrap_or_default();
    format!(
        "<div class=\"finding\" role=\"note\"><code>{}</code> {}:{}: {}<br><span class=\"muted\">why: {}</span>{}</div>",
        esc(&f.rule),
        f.start_line,
        f.start_column,
        esc(&f.message),
        esc(why),
        f.fix
            .as_deref()
            .map(|x| format!("<br>fix: {}", esc(x)))
            .unwrap_or_default()
    )
}

/// A unified diff side by side: old lines left, new lines right (removed and added runs of a
/// hunk paired row by row), each finding in a row of its own under its new line.
fn split_lines(diff: &str, notes: &BTreeMap<usize, String>) -> String {
    let mut out = String::from("<table class=\"split src diff\"><tbody>");
    let (mut old_line, mut new_line) = (0usize, 0usize);
    let mut removed: Vec<(usize, &str)> = Vec::new();
    let mut added: Vec<(usize, &str)> = Vec::new();
    let cell = |side: Option<(usize, &str)>, class: &str| match side {
        Some((n, text)) => format!(
            "<td class=\"n\">{n}</td><td class=\"{class}\"><code>{}</code></td>",
            esc(text)
        ),
        None => "<td class=\"n\"></td><td></td>".to_string(),
    };
    let flush =
        |out: &mut String, removed: &mut Vec<(usize, &str)>, added: &mut Vec<(usize, &str)>| {
            for i in 0..removed.len().max(added.len()) {
                let (l, r) = (removed.get(i).copied(), added.get(i).copied());
                let _ = write!(out, "<tr>{}{}</tr>", cell(l, "del"), cell(r, "add"));
                if let Some(note) = r.and_then(|(n, _)| notes.get(&n)) {
                    let _ = write!(out, "<tr><td colspan=\"4\">{note}</td></tr>");
                }
            }
            removed.clear();
            added.clear();
        };
    for line in diff.lines() {
        if line.starts_with("---") || line.starts_with("+++") {
            continue;
        }
        if let Some(h) = line.strip_prefix("@@") {
            flush(&mut out, &mut removed, &mut added);
            let start = |sign: char| {
                h.split_whitespace()
                    .find_map(|p| p.strip_prefix(sign))
                    .and_then(|p| p.split(',').next())
                    .and_then(|p| p.parse::<usize>().ok())
                    .map_or(0, |n| n.saturating_sub(1))
            };
            (old_line, new_line) = (start('-'), start('+'));
            let _ = write!(
                out,
                "<tr><td colspan=\"4\" class=\"muted\">{}</td></tr>",
                esc(line)
            );
            continue;
        }
        match line.chars().next() {
            Some('-') => {
                old_line += 1;
                removed.push((old_line, &line[1..]));
            }
            Some('+') => {
                new_line += 1;
                added.push((new_line, &line[1..]));
            }
            _ => {
                flush(&mut out, &mut removed, &mut added);
                old_line += 1;
                new_line += 1;
                let text = line.get(1..).unwrap_or("");
                let _ = write!(
                    out,
                    "<tr>{}{}</tr>",
                    cell(Some((old_line, text)), ""),
                    cell(Some((new_line, text)), "")
                );
                if let Some(note) = notes.get(&new_line) {
                    let _ = write!(out, "<tr><td colspan=\"4\">{note}</td></tr>");
                }
            }
        }
    }
    flush(&mut out, &mut removed, &mut added);
    out.push_str("</tbody></table>");
    out
}

/// A unified diff with new-side line numbers, and each finding under the line it points at.
fn diff_lines(diff: &str, notes: &BTreeMap<usize, String>) -> String {
    let mut out = String::new();
    let mut new_line = 0usize;
    for line in diff.lines() {
        if let Some(h) = line.strip_prefix("@@") {
            // @@ -a,b +c,d @@
            new_line = h
                .split_whitespace()
                .find_map(|p| p.strip_prefix('+'))
                .and_then(|p| p.split(',').next())
                .and_then(|p| p.parse::<usize>().ok())
                .map(|n| n.saturating_sub(1))
                .unwrap_or(new_line);
            let _ = write!(out, "<span class=\"ln muted\">{}</span>", esc(line));
            continue;
        }
        if line.starts_with("---") || line.starts_with("+++") {
            continue;
        }
        let (class, counts) = match line.chars().next() {
            Some('+') => ("add", true),
            Some('-') => ("del", false),
            _ => ("", true),
        };
        if counts {
            new_line += 1;
        }
        let _ = write!(
            out,
            "<span class=\"ln {class}\">{}{}</span>",
            if counts {
                format!("<a class=\"n\">{new_line}</a>")
            } else {
                "<a class=\"n\"></a>".to_string()
            },
            esc(line)
        );
        if counts && let Some(note) = notes.get(&new_line) {
            out.push_str(note);
        }
    }
    out
}

pub(super) async fn rules() -> Html<String> {
    let mut rows = String::new();
    for r in protoreg_check::RULES {
        let _ = write!(
            rows,
            "<tr id=\"{id}\"><td><code>{id}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&r.categories.join(", ")),
            esc(r.purpose),
            id = esc(r.id)
        );
    }
    page(
        "rules",
        &[("rules".into(), None)],
        &format!(
            "<h1>Breaking rules</h1><table><thead><tr><th>Rule</th><th>Categories</th>\
             <th>Why it breaks clients</th></tr></thead><tbody>{rows}</tbody></table>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlighting_escapes_everything() {
        let h = highlight("  string name = 1; // <script>alert(1)</script>");
        assert!(
            h.contains("<span class=\"com\">// &lt;script&gt;alert(1)&lt;/script&gt;</span>"),
            "{h}"
        );
        assert!(!h.contains("<script>"));
        let h = highlight("option go_package = \"<b>\";");
        assert!(h.contains("<span class=\"kw\">option</span>"));
        assert!(
            h.contains("<span class=\"str\">&quot;&lt;b&gt;&quot;</span>"),
            "{h}"
        );
    }

    #[test]
    fn side_by_side_pairs_removed_and_added_lines() {
        let diff = "--- a/x.proto\n+++ b/x.proto\n@@ -1,3 +1,3 @@\n message A {\n-  string a = 1;\n+  int64 a = 1;\n }\n";
        let notes = BTreeMap::from([(2, "<div>NOTE</div>".to_string())]);
        let out = split_lines(diff, &notes);
        // One row holds the old line 2 and the new line 2; the note follows it.
        let row = out
            .find("<td class=\"n\">2</td><td class=\"del\"><code>  string a = 1;</code></td><td class=\"n\">2</td><td class=\"add\"><code>  int64 a = 1;</code></td>")
            .expect(&out);
        assert!(out.find("<div>NOTE</div>").unwrap() > row);
        assert!(
            out.contains("<td class=\"n\">3</td><td class=\"\"><code>}</code></td>"),
            "{out}"
        );
    }

    #[test]
    fn findings_sit_under_their_new_line() {
        let diff = "--- a/x.proto\n+++ b/x.proto\n@@ -1,3 +1,3 @@\n message A {\n-  string a = 1;\n+  int64 a = 1;\n }\n";
        let notes = BTreeMap::from([(2, "<div>NOTE</div>".to_string())]);
        let out = diff_lines(diff, &notes);
        let add = out.find("+  int64 a = 1;").unwrap();
        let note = out.find("<div>NOTE</div>").unwrap();
        assert!(note > add, "{out}");
        assert!(out.find("-  string a = 1;").unwrap() < add);
    }
}
