//! Registry commands: serve, push, pull, subjects, log, diff, check.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use protoreg_check::{Finding, RULES, Span};
use protoreg_schema::{Image, OutputFormat, SourceSet};
use serde_json::{Value, json};

use crate::cli::EXIT_FINDINGS;
use crate::client::{Registry, subject_ref};
use crate::project::{DepsLock, Project, Resolver};

/// Where the registry is and how to authenticate.
#[derive(clap::Args, Clone)]
pub struct RegistryArgs {
    /// Registry base URL (default: protoreg.yaml's `registry`, else http://127.0.0.1:8080).
    #[arg(long, env = "PROTOREG_REGISTRY")]
    pub registry: Option<String>,
    /// Bearer token.
    #[arg(long, env = "PROTOREG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// The registry used when neither a flag, the environment nor protoreg.yaml names one.
pub const DEFAULT_REGISTRY: &str = "http://127.0.0.1:8080";

impl RegistryArgs {
    pub fn client(&self) -> Registry {
        self.client_for(None)
    }

    /// The registry named by the flag or environment, else by the project file.
    pub fn client_for(&self, project: Option<&Project>) -> Registry {
        let base = self
            .registry
            .clone()
            .or_else(|| project.and_then(|p| p.config.registry.clone()))
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_string());
        Registry::new(&base, self.token.clone(), Duration::from_secs(120))
    }
}

/// The files a local directory's imports resolve against: the dependencies of the
/// `protoreg.yaml` entry that holds it (none when there is no such entry).
pub fn imports_for(
    dir: &Path,
    registry: &RegistryArgs,
) -> anyhow::Result<BTreeMap<String, protoreg_schema::SourceFile>> {
    let Some((project, entry)) = Project::find_for(dir)? else {
        return Ok(BTreeMap::new());
    };
    if project.deps_of(&entry)?.is_empty() {
        return Ok(BTreeMap::new());
    }
    let client = registry.client_for(Some(&project));
    let resolver = Resolver::new(&project, Some(&client), true)?;
    Ok(resolver.resolve(&entry)?.imports)
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Database: a SQLite file (`sqlite://protoreg.db`, the default) or `postgres://...`.
    #[arg(
        long,
        env = "PROTOREG_DATABASE",
        default_value = "sqlite://protoreg.db"
    )]
    database: String,
    /// Address to listen on.
    #[arg(long, env = "PROTOREG_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// File of tokens, one `TOKEN ROLE` per line (roles: read, write, admin).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Listen on a non-loopback address without tokens.
    #[arg(long)]
    allow_anonymous: bool,
    /// Largest request body in bytes, as sent (a gzip body counts compressed). The default
    /// takes a googleapis-size push sent gzipped (about 10 MiB).
    #[arg(long, default_value_t = protoreg_server::DEFAULT_MAX_BODY)]
    max_body_bytes: usize,
    /// Largest request body once a gzip body is inflated.
    #[arg(long, default_value_t = protoreg_server::DEFAULT_MAX_INFLATED)]
    max_inflated_bytes: usize,
    /// Seconds a request may take before it is answered 503.
    #[arg(long, default_value_t = 120)]
    request_timeout_secs: u64,
}

pub fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PROTOREG_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut tokens = std::collections::HashMap::new();
    if let Some(f) = &a.token_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        tokens.extend(
            protoreg_server::parse_tokens(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| f.display().to_string())?,
        );
    }
    if let Ok(env) = std::env::var("PROTOREG_TOKENS") {
        tokens.extend(
            protoreg_server::parse_tokens(&env)
                .map_err(anyhow::Error::msg)
                .context("PROTOREG_TOKENS")?,
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(protoreg_server::serve(protoreg_server::ServeOptions {
        listen: a.listen,
        database: a.database,
        tokens,
        allow_anonymous: a.allow_anonymous,
        limits: protoreg_server::Limits {
            max_body: a.max_body_bytes,
            max_inflated: a.max_inflated_bytes,
            request_timeout: Duration::from_secs(a.request_timeout_secs),
        },
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a module directory's files as `path -> text` (honouring its buf.yaml).
fn module_files(dir: &Path) -> anyhow::Result<(BTreeMap<String, String>, SourceSet)> {
    let set = SourceSet::from_dir(dir, &dir.to_string_lossy())?;
    if set.files.is_empty() {
        bail!("{}: no .proto files found", dir.display());
    }
    let mut files = BTreeMap::new();
    for (name, f) in &set.files {
        let text = f
            .text
            .as_ref()
            .map_err(|_| anyhow::anyhow!("{}: file is not valid UTF-8", f.display))?;
        files.insert(name.clone(), text.to_string());
    }
    Ok((files, set))
}

/// Findings from the registry's JSON, for the local renderers.
fn findings_from_json(list: &[Value], display_prefix: &str) -> Vec<Finding> {
    list.iter()
        .map(|f| {
            let rule = RULES
                .iter()
                .find(|r| Some(r.id) == f["type"].as_str())
                .map(|r| r.id)
                .unwrap_or("UNKNOWN");
            let n = |k: &str| f[k].as_u64().unwrap_or(1) as u32;
            Finding {
                path: f["path"].as_str().map(|p| {
                    if display_prefix.is_empty() {
                        p.to_string()
                    } else {
                        format!("{}/{p}", display_prefix.trim_end_matches('/'))
                    }
                }),
                span: Span {
                    start_line: n("start_line"),
                    start_column: n("start_column"),
                    end_line: n("end_line"),
                    end_column: n("end_column"),
                },
                rule,
                message: f["message"].as_str().unwrap_or_default().to_string(),
                fix: f["fix"].as_str().map(str::to_string),
                element: f["element"].as_str().unwrap_or_default().to_string(),
                accepted: f["accepted"].as_bool().unwrap_or(false).then(|| {
                    protoreg_check::Accepted {
                        reason: f["reason"].as_str().unwrap_or_default().to_string(),
                        by: None,
                    }
                }),
                file_name: None,
                against_file_name: None,
                packages: (None, None),
            }
        })
        .collect()
}

/// An accepted break (a version's `accepted_break`): who, why, and its findings.
fn print_accepted_break(accepted: &Value, prefix: &str) -> anyhow::Result<()> {
    if accepted.is_null() {
        return Ok(());
    }
    let findings = accepted["findings"].as_array().cloned().unwrap_or_default();
    println!(
        "  accepted {} breaking change(s) by {}: {}",
        findings.len(),
        accepted["by"].as_str().unwrap_or_default(),
        accepted["reason"].as_str().unwrap_or_default()
    );
    let mut list = findings_from_json(&findings, prefix);
    let reason = accepted["reason"].as_str().unwrap_or_default().to_string();
    for f in &mut list {
        f.accepted = Some(protoreg_check::Accepted {
            reason: reason.clone(),
            by: accepted["by"].as_str().map(str::to_string),
        });
    }
    print!("{}", protoreg_report::text(&list));
    Ok(())
}

fn print_pretty(findings: &[Finding]) -> anyhow::Result<()> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let color = crate::cli::color_for(&std::io::stdout());
    let out = protoreg_report::render(protoreg_report::Format::Pretty, findings, &read, color);
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

fn print_diagnostics(body: &Value, prefix: &str) {
    if let Some(list) = body["error"]["details"]["diagnostics"].as_array() {
        for d in list {
            eprintln!(
                "{}/{}:{}:{}: {}",
                prefix.trim_end_matches('/'),
                d["path"].as_str().unwrap_or_default(),
                d["line"],
                d["column"],
                d["message"].as_str().unwrap_or_default()
            );
        }
    }
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// Module directory to push.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Subject to push to (e.g. acme.users.v1).
    #[arg(long, short)]
    subject: String,
    /// Label as key=value (repeatable), e.g. --label git_commit=$(git rev-parse HEAD).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Only check (dry run): print whether the push would be accepted.
    #[arg(long)]
    dry_run: bool,
    /// A dependency, `SUBJECT@N` or `SUBJECT[@latest]` (repeatable). Default: the `deps:`
    /// of the protoreg.yaml entry that holds DIR.
    #[arg(long = "dep")]
    deps: Vec<String>,
    /// Let the push through even if it breaks the subject's policy (needs an admin token);
    /// the findings, the reason and who accepted them are stored with the version.
    #[arg(long, requires = "reason")]
    accept_breaking: bool,
    /// Why the break is acceptable (with --accept-breaking).
    #[arg(long, requires = "accept_breaking")]
    reason: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label {s:?} is not key=value"))
}

pub fn push(a: PushArgs) -> anyhow::Result<ExitCode> {
    let (files, _) = module_files(&a.dir)?;
    let labels: BTreeMap<String, String> = a.labels.into_iter().collect();
    let project = Project::find_for(&a.dir)?;
    let deps = match &project {
        _ if !a.deps.is_empty() => a.deps.clone(),
        Some((p, entry)) if entry.subject == a.subject => p.deps_of(entry)?,
        _ => Vec::new(),
    };
    let client = a.registry.client_for(project.as_ref().map(|(p, _)| p));
    if !a.dry_run
        && deps.is_empty()
        && let Some(n) = latest_with_digest(&client, &a.subject, &protoreg_store::digest(&files))
    {
        // Nothing to send: the latest version already has this content.
        println!(
            "{}@{n} unchanged (same content as the latest version)",
            a.subject
        );
        return Ok(ExitCode::SUCCESS);
    }
    let path = if a.dry_run { "check" } else { "versions" };
    // Serialized from the files themselves (a large module's text is not copied again).
    #[derive(serde::Serialize)]
    struct PushBody<'a> {
        files: &'a BTreeMap<String, String>,
        labels: &'a BTreeMap<String, String>,
        deps: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        accept_breaking: Option<Value>,
    }
    let body = PushBody {
        files: &files,
        labels: &labels,
        deps: &deps,
        accept_breaking: match (a.accept_breaking, &a.reason) {
            (true, Some(reason)) => Some(json!({"reason": reason})),
            _ => None,
        },
    };
    let reply = client.post_gzip(
        &format!("/v1/subjects/{}/{path}", crate::client::seg(&a.subject)),
        &body,
    )?;
    let body = reply.json().unwrap_or(Value::Null);
    let prefix = a.dir.to_string_lossy().to_string();
    match reply.status {
        200 | 201 if a.dry_run => {
            let findings = body["findings"].as_array().cloned().unwrap_or_default();
            print_broken_dependents(&body);
            if findings.is_empty() {
                println!("compatible with {}", a.subject);
                Ok(ExitCode::SUCCESS)
            } else {
                print_pretty(&findings_from_json(&findings, &prefix))?;
                Ok(ExitCode::from(EXIT_FINDINGS))
            }
        }
        201 => {
            println!(
                "{}@{} created ({})",
                body["subject"].as_str().unwrap_or(&a.subject),
                body["version"],
                body["digest"].as_str().unwrap_or_default()
            );
            print_accepted_break(&body["accepted_break"], &prefix)?;
            print_broken_dependents(&body);
            Ok(ExitCode::SUCCESS)
        }
        200 => {
            println!(
                "{}@{} unchanged (same content as the latest version)",
                a.subject, body["version"]
            );
            Ok(ExitCode::SUCCESS)
        }
        409 => {
            let findings = body["findings"].as_array().cloned().unwrap_or_default();
            eprintln!("refused: {}", reply.error_message());
            print_deployed(&body["error"]["details"]["deployed"]);
            print_pretty(&findings_from_json(&findings, &prefix))?;
            Ok(ExitCode::from(EXIT_FINDINGS))
        }
        422 => {
            print_diagnostics(&body, &prefix);
            bail!("{}", reply.error_message())
        }
        _ => bail!(
            "push to {} failed: {}",
            client.base(),
            reply.error_message()
        ),
    }
}

/// The latest version of `subject` when its digest is `digest` (two small requests instead
/// of uploading a large module again); `None` on any doubt.
fn latest_with_digest(client: &Registry, subject: &str, digest: &str) -> Option<i64> {
    let latest = client
        .get_json(&format!("/v1/subjects/{}", crate::client::seg(subject)))
        .ok()?["latest_version"]
        .as_i64()?;
    let found = client.get_json(&format!("/v1/schemas/{digest}")).ok()?;
    found
        .as_array()?
        .iter()
        .any(|v| v["subject"] == subject && v["version"] == latest)
        .then_some(latest)
}

/// Dependents that would no longer compile against a pushed (or checked) version.
/// Deployments of other versions a push would break (`deployed` in a push's, a check's or
/// a refusal's answer).
fn print_deployed(list: &Value) {
    for w in list.as_array().into_iter().flatten() {
        eprintln!("warning: {}", w["message"].as_str().unwrap_or_default());
        for f in w["findings"].as_array().into_iter().flatten() {
            eprintln!(
                "  {}:{}:{}: {} [{}]",
                f["path"].as_str().unwrap_or("<input>"),
                f["start_line"],
                f["start_column"],
                f["message"].as_str().unwrap_or_default(),
                f["type"].as_str().unwrap_or_default()
            );
        }
    }
}

fn print_broken_dependents(body: &Value) {
    print_deployed(&body["deployed"]);
    for b in body["dependents"]["broken"]
        .as_array()
        .into_iter()
        .flatten()
    {
        eprintln!(
            "warning: {}@{} depends on this subject and would no longer compile:",
            b["subject"].as_str().unwrap_or_default(),
            b["version"]
        );
        for d in b["diagnostics"].as_array().into_iter().flatten() {
            match d["path"].as_str() {
                Some(p) => eprintln!(
                    "  {p}:{}:{}: {}",
                    d["line"],
                    d["column"],
                    d["message"].as_str().unwrap_or_default()
                ),
                None => eprintln!("  {}", d["message"].as_str().unwrap_or_default()),
            }
        }
    }
}

#[derive(clap::Args)]
pub struct PullArgs {
    /// SUBJECT[@VERSION] (default: latest).
    reference: String,
    /// Directory to write the files into.
    #[arg(short, long)]
    output: PathBuf,
    /// Also write the files of its dependencies (transitively).
    #[arg(long)]
    with_deps: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn pull(a: PullArgs) -> anyhow::Result<ExitCode> {
    let (subject, version) = subject_ref(&a.reference);
    let client = a.registry.client();
    let v = crate::project::version_from_json(&client.get_json(&format!(
        "/v1/subjects/{}/versions/{version}",
        crate::client::seg(&subject)
    ))?)?;
    let mut files = v.files.clone();
    if a.with_deps {
        let mut queue: std::collections::VecDeque<protoreg_store::DepRef> = v.deps.clone().into();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(d) = queue.pop_front() {
            if !seen.insert((d.subject.clone(), d.version)) {
                continue;
            }
            let dep = crate::project::version_from_json(&client.get_json(&format!(
                "/v1/subjects/{}/versions/{}",
                crate::client::seg(&d.subject),
                d.version
            ))?)?;
            for (path, text) in dep.files {
                match files.get(&path) {
                    Some(t) if *t != text => bail!(
                        "{path} is in {subject}@{} and in {}@{} with different content",
                        v.version,
                        d.subject,
                        d.version
                    ),
                    _ => {
                        files.insert(path, text);
                    }
                }
            }
            queue.extend(dep.deps);
        }
    }
    for (path, text) in &files {
        let dest = a.output.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = dest.with_extension("proto.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &dest)?;
    }
    println!(
        "{subject}@{} -> {} ({} files{})",
        v.version,
        a.output.display(),
        files.len(),
        if a.with_deps {
            ", dependencies included"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct SubjectsArgs {
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn subjects(a: SubjectsArgs) -> anyhow::Result<ExitCode> {
    let list = a.registry.client().get_all("/v1/subjects")?;
    for s in &list {
        println!(
            "{}\tlatest {}\t{} versions",
            s["name"].as_str().unwrap_or_default(),
            s["latest_version"],
            s["versions"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct LogArgs {
    subject: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn log(a: LogArgs) -> anyhow::Result<ExitCode> {
    let list = a.registry.client().get_all(&format!(
        "/v1/subjects/{}/versions",
        crate::client::seg(&a.subject)
    ))?;
    for v in list.iter().rev() {
        let labels: Vec<String> = v["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        println!(
            "{}@{}  {}  {}  {}",
            a.subject,
            v["version"],
            v["created_at"].as_str().unwrap_or_default(),
            v["digest"].as_str().unwrap_or_default(),
            labels.join(" ")
        );
        print_accepted_break(&v["accepted_break"], "")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// SUBJECT@FROM
    from: String,
    /// SUBJECT@TO (or just TO)
    to: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn diff(a: DiffArgs) -> anyhow::Result<ExitCode> {
    let (subject, from) = subject_ref(&a.from);
    let to = match a.to.split_once('@') {
        Some((s, v)) if s == subject => v.to_string(),
        Some((s, _)) => bail!("diff compares versions of one subject ({subject} vs {s})"),
        None => a.to.clone(),
    };
    let d = a.registry.client().get_json(&format!(
        "/v1/subjects/{}/diff?from={from}&to={to}",
        crate::client::seg(&subject)
    ))?;
    let mut out = std::io::stdout().lock();
    for f in d["files"].as_array().into_iter().flatten() {
        write!(out, "{}", f["diff"].as_str().unwrap_or_default())?;
    }
    let breaking = d["breaking"].as_array().cloned().unwrap_or_default();
    if breaking.is_empty() {
        writeln!(
            out,
            "\n{subject}@{} is compatible with @{}",
            d["to"], d["from"]
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "\n{} breaking change(s) from @{} to @{}:",
        breaking.len(),
        d["from"],
        d["to"]
    )?;
    drop(out);
    let text = protoreg_report::render(
        protoreg_report::Format::Text,
        &findings_from_json(&breaking, ""),
        &|_| None,
        false,
    );
    print!("{text}");
    Ok(ExitCode::from(EXIT_FINDINGS))
}

/// `registry:SUBJECT[@VERSION]` as an image: the version's descriptor set, its own files
/// as targets.
/// A registry version's image (its own files as targets) and its digest.
/// The descriptor set of `subject@n`.
fn fetch_descriptor(
    client: &crate::client::Registry,
    subject: &str,
    n: i64,
) -> anyhow::Result<Vec<u8>> {
    let reply = client.get(&format!(
        "/v1/subjects/{}/versions/{n}/descriptor",
        crate::client::seg(subject)
    ))?;
    if reply.status != 200 {
        bail!("{subject}@{n}: {}", reply.error_message());
    }
    Ok(reply.body)
}

/// A registry version's image and digest. Its descriptor set is kept in `cache` under the
/// version's digest (versions are immutable), so a later run asks only for the digest.
pub fn registry_image(
    spec: &str,
    registry: &RegistryArgs,
    cache: Option<&protoreg_cache::Cache>,
) -> anyhow::Result<(Image, String)> {
    let (subject, version) = subject_ref(spec);
    let client = registry.client();
    let meta = client.get_json(&format!(
        "/v1/subjects/{}/versions/{version}",
        crate::client::seg(&subject)
    ))?;
    let n = meta["version"].as_i64().context("version number")?;
    let digest = meta["digest"].as_str().unwrap_or_default().to_string();
    let key = (!digest.is_empty()).then(|| protoreg_cache::Cache::key(&digest));
    let cached = match (cache, &key) {
        (Some(c), Some(k)) => c.get("registry", k),
        _ => None,
    };
    let body = match cached {
        Some(body) => body,
        None => {
            let body = fetch_descriptor(&client, &subject, n)?;
            if let (Some(c), Some(k)) = (cache, &key) {
                // A cache that cannot be written only costs the next run a download.
                let _ = c.put("registry", k, &body);
            }
            body
        }
    };
    let mut image = Image::from_descriptor_set_bytes(
        body,
        OutputFormat::Binary,
        &format!("registry:{subject}@{n}"),
    )?;
    let own: Vec<&String> = meta["files"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    for f in &mut image.files {
        f.is_import = !own.iter().any(|p| p.as_str() == f.proto.name());
    }
    Ok((image, digest))
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The project file.
    #[arg(long, default_value = "protoreg.yaml")]
    config: PathBuf,
    /// Registry base URL (overrides protoreg.yaml).
    #[arg(long, env = "PROTOREG_REGISTRY")]
    registry: Option<String>,
    #[arg(long, env = "PROTOREG_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Pre-commit check: every configured directory against its subject in the registry, or
/// against git HEAD when the registry cannot be reached.
pub fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&a.config)?;
    let base = a
        .registry
        .clone()
        .or(project.config.registry.clone())
        .unwrap_or_else(|| DEFAULT_REGISTRY.into());
    let client = Registry::new(&base, a.token, Duration::from_secs(20));
    let root = project.root.clone();
    // Locked versions of the dependencies, so that the check sees what a build sees.
    let deps_lock = DepsLock::read(&project.lock_path())?;
    let mut failed = false;
    for s in &project.config.subjects {
        let dir = root.join(&s.dir);
        let (files, set) = module_files(&dir)?;
        let prefix = dir.to_string_lossy().to_string();
        let deps = project.deps_of(s)?;
        if let Some(lock) = &s.lock {
            let lock_path = root.join(lock);
            let pinned = protoreg_schema::Lock::read(&lock_path)?;
            let digest = protoreg_store::digest(&files);
            if pinned.subject == s.subject && pinned.digest != digest {
                failed = true;
                eprintln!(
                    "drift: {prefix} is not the contract pinned in {} ({}@{}); push it and run `protoreg pin {}` before committing",
                    lock_path.display(),
                    pinned.subject,
                    pinned.version,
                    s.subject
                );
            }
        }
        let locked: Vec<String> = match &deps_lock {
            Some(lock) => deps
                .iter()
                .map(|d| lock.pin(d))
                .collect::<anyhow::Result<_>>()?,
            None => deps.clone(),
        };
        match client.post_gzip(
            &format!("/v1/subjects/{}/check", crate::client::seg(&s.subject)),
            &json!({"files": files, "deps": locked}),
        ) {
            Ok(reply) if reply.status == 200 => {
                let body = reply.json()?;
                let findings = body["findings"].as_array().cloned().unwrap_or_default();
                print_broken_dependents(&body);
                if findings.is_empty() {
                    println!("ok: {} is compatible with {} in {base}", prefix, s.subject);
                } else {
                    failed = true;
                    eprintln!("breaking: {} against {} in {base}", prefix, s.subject);
                    print_pretty(&findings_from_json(&findings, &prefix))?;
                }
                // Not yet registered: say so, so a drift is caught before commit.
                let latest = client.get(&format!(
                    "/v1/subjects/{}/versions/latest",
                    crate::client::seg(&s.subject)
                ))?;
                if latest.status == 200 {
                    let deps: Vec<protoreg_store::DepRef> =
                        serde_json::from_value(body["deps"].clone()).unwrap_or_default();
                    let digest = protoreg_store::version_digest(&files, &deps);
                    if latest.json()?["digest"].as_str() != Some(digest.as_str()) {
                        println!(
                            "note: {prefix} differs from the latest registered {}; push it after merge",
                            s.subject
                        );
                    }
                }
            }
            Ok(reply) if reply.status == 422 => {
                failed = true;
                print_diagnostics(&reply.json()?, &prefix);
            }
            Ok(reply) => bail!("{}: {}", s.subject, reply.error_message()),
            Err(e) => {
                eprintln!(
                    "registry unreachable ({e:#}); checking {prefix} against git HEAD instead"
                );
                // Offline: dependencies from the lock and the cache.
                let imports = Resolver::new(&project, None, true)?.resolve(s)?.imports;
                let mut current = set.clone();
                current.imports = imports.clone();
                let current = current.compile()?;
                let git = protoreg_schema::GitRef {
                    dir: dir.clone(),
                    rev: "HEAD".into(),
                };
                let mut previous = git.load(&prefix)?;
                previous.imports = imports;
                let previous = previous.compile()?;
                let findings = protoreg_check::check(
                    &current,
                    &previous,
                    &protoreg_check::Options {
                        exclude_imports: true,
                        ..Default::default()
                    },
                )?;
                if !findings.is_empty() {
                    failed = true;
                    print_pretty(&findings)?;
                } else {
                    println!("ok: {prefix} is compatible with git HEAD");
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(clap::Args)]
pub struct DepArgs {
    #[command(subcommand)]
    command: DepCommand,
}

#[derive(clap::Subcommand)]
enum DepCommand {
    /// Resolve every subject's dependencies in the registry now and write
    /// protoreg.deps.lock (versions and digests), fetching them into the cache.
    Update(DepUpdateArgs),
}

#[derive(clap::Args)]
struct DepUpdateArgs {
    /// The project file.
    #[arg(long, default_value = "protoreg.yaml")]
    config: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn dep(a: DepArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        DepCommand::Update(u) => {
            let project = Project::load(&u.config)?;
            let client = u.registry.client_for(Some(&project));
            let resolver = Resolver::new(&project, Some(&client), false)?;
            let mut all = std::collections::BTreeSet::new();
            for entry in &project.config.subjects {
                let resolved = resolver.resolve(entry)?;
                all.extend(resolved.registry_versions);
            }
            let lock = DepsLock {
                version: 1,
                deps: all.into_iter().collect(),
            };
            // One version per subject: two that resolve one subject differently conflict.
            for w in lock.deps.windows(2) {
                if w[0].subject == w[1].subject {
                    bail!(
                        "{} is needed at versions {} and {}; pin one version in protoreg.yaml",
                        w[0].subject,
                        w[0].version,
                        w[1].version
                    );
                }
            }
            lock.write(&project.lock_path())?;
            for d in &lock.deps {
                println!("{}@{} {}", d.subject, d.version, d.digest);
            }
            println!(
                "wrote {} ({} dependencies)",
                project.lock_path().display(),
                lock.deps.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args)]
pub struct PinArgs {
    /// SUBJECT[@VERSION] (default: latest).
    reference: String,
    /// The lock file to write (its descriptor is cached beside it as LOCK.binpb).
    #[arg(long, default_value = "protoreg.lock")]
    lock: PathBuf,
    /// The service serves this contract (the default).
    #[arg(long, conflicts_with = "calls")]
    serves: bool,
    /// The service calls this contract (a client of it).
    #[arg(long)]
    calls: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Pins a service's contract to a registered version: writes the lock file and caches the
/// version's descriptor set beside it.
pub fn pin(a: PinArgs) -> anyhow::Result<ExitCode> {
    let (subject, version) = subject_ref(&a.reference);
    let client = a.registry.client();
    let meta = client.get_json(&format!(
        "/v1/subjects/{}/versions/{version}",
        crate::client::seg(&subject)
    ))?;
    let n = meta["version"].as_i64().context("version number")?;
    let digest = meta["digest"].as_str().context("digest")?.to_string();
    let descriptor = fetch_descriptor(&client, &subject, n)?;
    let lock = protoreg_schema::Lock {
        subject: subject.clone(),
        version: n,
        digest: digest.clone(),
        registry: client.base().to_string(),
        descriptor_sha256: protoreg_schema::pin::sha256_hex(&descriptor),
        role: Some(if a.calls { "calls" } else { "serves" }.to_string()),
    };
    lock.write(&a.lock, &descriptor)?;
    println!(
        "pinned {subject}@{n} ({digest}, {}) in {}",
        lock.role(),
        a.lock.display()
    );
    Ok(ExitCode::SUCCESS)
}
