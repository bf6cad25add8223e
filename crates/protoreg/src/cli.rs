//! Argument parsing and the commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use protoreg_schema::{Input, OutputFormat, SchemaError, SourceInfo};

#[derive(Parser)]
#[command(
    name = "protoreg",
    version,
    about = "Protobuf schema registry and breaking-change checker"
)]
struct Cli {
    /// When to colour diagnostics: auto (when writing to a terminal and NO_COLOR is unset),
    /// always, or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The `--color` choice, read by everything that prints diagnostics.
static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Whether to colour what goes to `stream` (stdout or stderr): `--color always|never`, else
/// a terminal without `NO_COLOR` (https://no-color.org: set and non-empty).
pub fn color_for(stream: &impl std::io::IsTerminal) -> bool {
    match COLOR.get().copied().unwrap_or(ColorChoice::Auto) {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stream.is_terminal()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Compile a module (directory, file or descriptor set) to a descriptor set.
    Build(BuildArgs),
    /// Report breaking changes of INPUT against another version (drop-in for `buf breaking`).
    Breaking(BreakingArgs),
    /// List every breaking rule with its categories and why it breaks clients.
    Rules(RulesArgs),
    /// The local cache of earlier checks: `cache clean`, `cache dir`.
    Cache(CacheArgs),
    /// Run the registry server (SQLite by default, or PostgreSQL).
    Serve(crate::registry_cmds::ServeArgs),
    /// Push a module directory as a new version of a subject (exit 100 when refused).
    Push(crate::registry_cmds::PushArgs),
    /// Write a registered version's files into a directory.
    Pull(crate::registry_cmds::PullArgs),
    /// List the registry's subjects.
    Subjects(crate::registry_cmds::SubjectsArgs),
    /// List a subject's versions, newest first.
    Log(crate::registry_cmds::LogArgs),
    /// Text diff and breaking changes between two versions: `diff S@1 S@2`.
    Diff(crate::registry_cmds::DiffArgs),
    /// Pre-commit check of the directories in protoreg.yaml against the registry (or git HEAD).
    Check(crate::registry_cmds::CheckArgs),
    /// Pin a service's contract to a registered version (writes protoreg.lock).
    Pin(crate::registry_cmds::PinArgs),
    /// Dependencies of the subjects in protoreg.yaml (`dep update` writes protoreg.deps.lock).
    Dep(crate::registry_cmds::DepArgs),
    /// Record that a service, built with its locks, now runs in an environment.
    RecordDeployment(crate::deploy_cmds::RecordArgs),
    /// Record that a service no longer runs in an environment.
    Undeploy(crate::deploy_cmds::UndeployArgs),
    /// May a service built with its locks be deployed next to what runs in an environment?
    /// Exit 0 yes, 100 no, 1 unknown (a counterpart's version deleted or unreadable).
    CanIDeploy(crate::deploy_cmds::CanIDeployArgs),
    /// Print shell completions: `protoreg completion bash > /etc/bash_completion.d/protoreg`.
    Completion(CompletionArgs),
}

#[derive(clap::Args)]
struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
struct BreakingArgs {
    /// The current version: a directory, a .proto file, a descriptor set, or DIR#ref=REV.
    #[arg(default_value = ".")]
    input: String,
    /// The previous version, in the same forms (`.git#ref=main` reads git objects), or
    /// `registry:SUBJECT[@VERSION]`.
    #[arg(long, required_unless_present = "against_git")]
    against: Option<String>,
    /// Shorthand for `--against INPUT#ref=REV`: the same directory at a git revision.
    #[arg(long, value_name = "REV", conflicts_with = "against")]
    against_git: Option<String>,
    /// text, json, github-actions, junit, sarif or pretty.
    #[arg(long, default_value = "text")]
    error_format: protoreg_report::Format,
    /// A buf.yaml to read the `breaking` section from (default: the input's own).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only check files of the input, not their imports.
    #[arg(long)]
    exclude_imports: bool,
    /// Only report findings in these files or directories (import paths; repeatable).
    #[arg(long = "path")]
    paths: Vec<String>,
    /// Do not report findings in these files or directories (repeatable).
    #[arg(long = "exclude-path")]
    exclude_paths: Vec<String>,
    /// Import path for files outside the inputs (repeatable).
    #[arg(short = 'I', long = "include")]
    include: Vec<PathBuf>,
    /// Also run these rules or categories (repeatable), on top of the buf.yaml's: e.g.
    /// protoreg's opt-in PROTOREG, HTTP, FIELD_BEHAVIOR, PROTOVALIDATE.
    #[arg(long = "use", value_name = "RULE_OR_CATEGORY")]
    use_ids: Vec<String>,
    /// Exemptions file (default: protoreg-accepted.yaml in the input directory, else beside
    /// the nearest protoreg.yaml).
    #[arg(long, value_name = "FILE")]
    accepted: Option<PathBuf>,
    /// Print an exemptions file accepting every finding (reasons left to fill in) instead
    /// of the findings.
    #[arg(long)]
    suggest_accepted: bool,
    /// Neither read nor fill the local cache ($PROTOREG_CACHE_DIR) of earlier checks.
    #[arg(long, env = "PROTOREG_NO_CACHE", value_parser = clap::builder::FalseyValueParser::new())]
    no_cache: bool,
    /// Say on stderr how much of the check the cache answered.
    #[arg(long)]
    cache_stats: bool,
    #[command(flatten)]
    registry: crate::registry_cmds::RegistryArgs,
}

#[derive(clap::Args)]
struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Remove the breaking checker's cached results.
    Clean,
    /// Print the cache directory.
    Dir,
}

#[derive(clap::Args)]
struct RulesArgs {
    /// Only rules of this category (buf's FILE, PACKAGE, WIRE_JSON, WIRE, CSR; protoreg's
    /// opt-in PROTOREG, HTTP, FIELD_BEHAVIOR, PROTOVALIDATE).
    #[arg(long)]
    category: Option<String>,
    /// Print as JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// A directory (honours buf.yaml), .proto files, or a descriptor set.
    #[arg(default_value = ".")]
    inputs: Vec<String>,
    /// Import path for files that are not part of the input (repeatable).
    #[arg(short = 'I', long = "include")]
    include: Vec<PathBuf>,
    /// Write the descriptor set here (.binpb/.pb binary, .json JSON); without it, only validate.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Leave imported files (well-known types, dependencies) out of the output. As with
    /// `buf build`, they are included by default.
    #[arg(long)]
    exclude_imports: bool,
    /// Leave source code info (locations and comments) out of the output (included by
    /// default, as with `buf build`).
    #[arg(long)]
    exclude_source_info: bool,
    /// Accepted for compatibility with earlier protoreg releases: imports are included by
    /// default.
    #[arg(long, hide = true, conflicts_with = "exclude_imports")]
    include_imports: bool,
    /// Accepted for compatibility with earlier protoreg releases: source info is included
    /// by default.
    #[arg(long, hide = true, conflicts_with = "exclude_source_info")]
    include_source_info: bool,
    /// Where dependencies named in protoreg.yaml are fetched from.
    #[command(flatten)]
    registry: crate::registry_cmds::RegistryArgs,
}

/// Exit statuses, as buf: 0 clean, 1 usage or compile error, 100 findings.
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_FINDINGS: u8 = 100;

pub fn main() -> ExitCode {
    set_sigpipe(libc::SIG_DFL);
    let cli = Cli::parse();
    let _ = COLOR.set(cli.color);
    if matches!(cli.command, Command::Serve(_)) {
        set_sigpipe(libc::SIG_IGN);
    } else {
        crate::keep_freed_memory();
    }
    let result = match cli.command {
        Command::Build(a) => build(a),
        Command::Breaking(a) => breaking(a),
        Command::Rules(a) => rules(a),
        Command::Cache(a) => cache(a),
        Command::Serve(a) => crate::registry_cmds::serve(a),
        Command::Push(a) => crate::registry_cmds::push(a),
        Command::Pull(a) => crate::registry_cmds::pull(a),
        Command::Subjects(a) => crate::registry_cmds::subjects(a),
        Command::Log(a) => crate::registry_cmds::log(a),
        Command::Diff(a) => crate::registry_cmds::diff(a),
        Command::Check(a) => crate::registry_cmds::check(a),
        Command::Pin(a) => crate::registry_cmds::pin(a),
        Command::Dep(a) => crate::registry_cmds::dep(a),
        Command::RecordDeployment(a) => crate::deploy_cmds::record(a),
        Command::Undeploy(a) => crate::deploy_cmds::undeploy(a),
        Command::CanIDeploy(a) => crate::deploy_cmds::can_i_deploy(a),
        Command::Completion(a) => completion(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A closed pipe (`protoreg rules | head -1`) ends the command quietly, as with other Unix
/// tools: with SIGPIPE at its default. Rust starts with it ignored, which turns every later
/// write into an error (and `print!` into a panic). The server keeps ignoring it (a client
/// going away is not its end).
fn set_sigpipe(disposition: libc::sighandler_t) {
    // SAFETY: changes a signal's disposition at start, before any thread is spawned.
    unsafe {
        libc::signal(libc::SIGPIPE, disposition);
    }
}

fn completion(a: CompletionArgs) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "protoreg", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints an error; compile diagnostics get their source line and a caret.
fn report_error(e: &anyhow::Error) {
    // A closed stdout is the reader's choice, not an error (`--json | head -1`).
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return;
    }
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    if let Some(SchemaError::Compile(diags)) = e.downcast_ref::<SchemaError>() {
        let color = color_for(&std::io::stderr());
        for d in &diags.0 {
            let _ = write!(out, "{}", d.render_pretty(color));
        }
        let _ = writeln!(out, "error: {} compile error(s)", diags.0.len());
    } else {
        let _ = writeln!(out, "error: {e:#}");
    }
}

fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let image = if a.inputs.len() == 1 {
        let input = Input::parse(&a.inputs[0])?;
        let imports = input_imports(&input, &a.registry)?;
        input
            .load_with(&a.include, &imports, SourceInfo::Full)?
            .image
    } else {
        let files: Vec<PathBuf> = a.inputs.iter().map(PathBuf::from).collect();
        protoreg_schema::SourceSet::from_files(&files, &a.include)?.compile()?
    };
    if let Some(out) = &a.output {
        let bytes = image.encode(
            OutputFormat::from_path(out),
            !a.exclude_imports,
            !a.exclude_source_info,
        )?;
        write_output(out, bytes)?;
    }
    // The process exits next: freeing a large image would only cost time.
    std::mem::forget(image);
    Ok(ExitCode::SUCCESS)
}

/// The dependency files of a directory input that a protoreg.yaml entry holds.
fn input_imports(
    input: &Input,
    registry: &crate::registry_cmds::RegistryArgs,
) -> anyhow::Result<std::collections::BTreeMap<String, protoreg_schema::SourceFile>> {
    match input {
        Input::Dir(dir) => crate::registry_cmds::imports_for(dir, registry),
        Input::Git(git) => crate::registry_cmds::imports_for(&git.dir, registry),
        Input::File(f) => match f.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => {
                crate::registry_cmds::imports_for(dir, registry)
            }
            _ => crate::registry_cmds::imports_for(std::path::Path::new("."), registry),
        },
        Input::DescriptorSet(_) => Ok(Default::default()),
    }
}

fn breaking(a: BreakingArgs) -> anyhow::Result<ExitCode> {
    let against_spec = match (&a.against, &a.against_git) {
        (Some(s), _) => s.clone(),
        (None, Some(rev)) => format!("{}#ref={rev}", a.input),
        (None, None) => anyhow::bail!("--against or --against-git is required"),
    };
    let mut against_ids = protoreg_check::accept::AgainstIds::default();
    let cache = (!a.no_cache).then(|| protoreg_cache::Cache::new(&crate::project::cache_dir()));
    let current = read_side(Input::parse(&a.input)?, &a.include, &a.registry)?;
    let previous = if let Some(spec) = against_spec.strip_prefix("registry:") {
        let (image, digest) =
            crate::registry_cmds::registry_image(spec, &a.registry, cache.as_ref())?;
        against_ids.registry_digest = Some(digest);
        Side::Compiled(Box::new(protoreg_schema::Loaded {
            image,
            config: None,
        }))
    } else {
        let input =
            Input::parse(&against_spec).with_context(|| format!("--against {against_spec}"))?;
        if let Input::Git(git) = &input {
            against_ids.git_commit = Some(git.commit_id()?);
        }
        read_side(input, &a.include, &a.registry)
            .with_context(|| format!("--against {against_spec}"))?
    };
    let config = match &a.config {
        Some(path) => protoreg_schema::BufConfig::from_file(path)?.breaking,
        None => current
            .config()
            .map(|c| c.breaking.clone())
            .unwrap_or_else(|| protoreg_schema::BreakingConfig {
                version: "v1".into(),
                ..Default::default()
            }),
    };
    let input_dir = input_dir(&a.input);
    let project = match &input_dir {
        Some(dir) => crate::project::Project::find_for(dir)?,
        None => None,
    };
    let mut config = config;
    let mut extra_use = a.use_ids.clone();
    let mut extra_except = Vec::new();
    if let Some((project, entry)) = &project {
        for b in [&project.config.breaking, &entry.breaking] {
            extra_use.extend(b.use_ids.iter().cloned());
            extra_except.extend(b.except.iter().cloned());
        }
    }
    if !extra_use.is_empty() && config.use_ids.is_empty() {
        config.use_ids.push("FILE".into());
    }
    config.use_ids.extend(extra_use);
    config.except.extend(extra_except);
    let opts = protoreg_check::Options {
        config,
        exclude_imports: a.exclude_imports,
        paths: a.paths,
        exclude_paths: a.exclude_paths,
    };
    let (mut findings, previous_image) = match (current, previous) {
        (Side::Sources(cur), Side::Sources(prev)) => {
            let report = protoreg_cache::check(&cur, &prev, &opts, cache.as_ref())?;
            if a.cache_stats {
                let s = report.stats;
                eprintln!(
                    "cache: {} of {} units reused, {} files compiled{}",
                    s.reused,
                    s.units,
                    s.compiled,
                    if s.full { " (everything)" } else { "" }
                );
            }
            (report.findings, PreviousImage::Sources(prev))
        }
        (cur, prev) => {
            // A descriptor set or a registry version on one side: compile what has sources
            // (both in parallel) and compare the images.
            let (cur, prev) = std::thread::scope(|scope| {
                let p = scope.spawn(|| prev.into_image());
                let c = cur.into_image();
                (
                    c,
                    p.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("loading --against failed"))),
                )
            });
            let (cur, prev) = (cur?, prev?);
            let findings = protoreg_check::check(&cur, &prev, &opts)?;
            std::mem::forget(cur);
            (findings, PreviousImage::Compiled(prev))
        }
    };
    let exemptions_path = a.accepted.clone().or_else(|| {
        let beside_input = input_dir
            .as_ref()
            .map(|d| d.join(protoreg_check::accept::FILE_NAME));
        let beside_project = project
            .as_ref()
            .map(|(p, _)| p.root.join(protoreg_check::accept::FILE_NAME));
        [beside_input, beside_project]
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
    });
    let exemptions = match &exemptions_path {
        Some(p) => Some(protoreg_check::accept::Exemptions::read(p)?),
        None => None,
    };
    let wants_content = a.suggest_accepted
        && against_ids.git_commit.is_none()
        && against_ids.registry_digest.is_none();
    if wants_content || exemptions.as_ref().is_some_and(|e| e.needs_content_id()) {
        against_ids.content = Some(protoreg_check::accept::content_id(
            &*previous_image.image()?,
        ));
    }
    if let Some(ex) = &exemptions {
        for e in ex.apply(&mut findings, &against_ids) {
            eprintln!(
                "note: {}: {} {} (against {}) matched no finding of this comparison",
                ex.path, e.rule, e.element, e.against
            );
        }
    }
    if a.suggest_accepted {
        let against = against_ids.preferred().unwrap_or_default();
        std::io::stdout()
            .lock()
            .write_all(protoreg_check::accept::suggest(&findings, &against).as_bytes())?;
        std::mem::forget(previous_image);
        return Ok(ExitCode::SUCCESS);
    }
    let sources = |display: &str| -> Option<String> { std::fs::read_to_string(display).ok() };
    let rendered = protoreg_report::render(
        a.error_format,
        &findings,
        &sources,
        color_for(&std::io::stdout()),
    );
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(rendered.as_bytes())?;
    stdout.flush()?;
    // The process exits next: freeing a large image would only cost time.
    std::mem::forget(previous_image);
    Ok(if findings.iter().all(|f| f.accepted.is_some()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

/// Writes `bytes` to `out` whole: to a temporary file beside it, then renamed (never a
/// half-written file); into it when it is a device or a pipe (`-o /dev/null`).
fn write_output(out: &std::path::Path, bytes: Vec<u8>) -> anyhow::Result<()> {
    // Renaming a file over a device would replace the device with a regular file.
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
        return Ok(());
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    // Freeing the encoded set would only cost time: the process exits next.
    std::mem::forget(bytes);
    Ok(())
}

/// One side of a comparison: its sources, or an image when it has none (a descriptor set,
/// a registry version).
enum Side {
    Sources(Box<protoreg_schema::SourceSet>),
    Compiled(Box<protoreg_schema::Loaded>),
}

impl Side {
    fn config(&self) -> Option<&protoreg_schema::BufConfig> {
        match self {
            Side::Sources(s) => s.config.as_ref(),
            Side::Compiled(l) => l.config.as_ref(),
        }
    }

    fn into_image(self) -> anyhow::Result<protoreg_schema::Image> {
        match self {
            Side::Sources(mut s) => {
                s.source_info = SourceInfo::OnDemand;
                Ok(s.compile()?)
            }
            Side::Compiled(l) => Ok(l.image),
        }
    }
}

/// The previous side, compiled only if an exemption needs its content.
enum PreviousImage {
    Sources(Box<protoreg_schema::SourceSet>),
    Compiled(protoreg_schema::Image),
}

impl PreviousImage {
    fn image(&self) -> anyhow::Result<std::borrow::Cow<'_, protoreg_schema::Image>> {
        Ok(match self {
            PreviousImage::Sources(s) => std::borrow::Cow::Owned(s.compile()?),
            PreviousImage::Compiled(i) => std::borrow::Cow::Borrowed(i),
        })
    }
}

/// Reads an input: its sources (with what its registry dependencies provide), or the image
/// of a descriptor set.
fn read_side(
    input: Input,
    include: &[PathBuf],
    registry: &crate::registry_cmds::RegistryArgs,
) -> anyhow::Result<Side> {
    let imports = input_imports(&input, registry)?;
    Ok(match input.read_with(include, &imports)? {
        Some(set) => Side::Sources(Box::new(set)),
        None => Side::Compiled(Box::new(input.load_with(
            include,
            &imports,
            SourceInfo::OnDemand,
        )?)),
    })
}

/// `protoreg cache clean|dir`.
fn cache(a: CacheArgs) -> anyhow::Result<ExitCode> {
    let dir = crate::project::cache_dir();
    match a.command {
        CacheCommand::Dir => println!("{}", dir.display()),
        CacheCommand::Clean => {
            let cleaned = protoreg_cache::Cache::new(&dir).clean()?;
            println!(
                "removed {} cached results ({} KiB) from {}",
                cleaned.files,
                cleaned.bytes.div_ceil(1024),
                dir.join("check").display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The directory an input names (a module directory, a git ref's directory, a file's
/// directory), where its `protoreg-accepted.yaml` and `protoreg.yaml` are looked for.
fn input_dir(input: &str) -> Option<PathBuf> {
    match Input::parse(input).ok()? {
        Input::Dir(d) => Some(d),
        Input::Git(g) => Some(g.dir),
        Input::File(f) => Some(
            f.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        ),
        Input::DescriptorSet(_) => None,
    }
}

fn rules(a: RulesArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for r in protoreg_check::RULES {
        if let Some(c) = &a.category
            && !r.categories.contains(&c.as_str())
        {
            continue;
        }
        if a.json {
            let v = serde_json::json!({"id": r.id, "categories": r.categories, "default": r.is_default(), "buf": r.is_buf(), "purpose": r.purpose});
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{:<48} {:<32} {}",
                r.id,
                r.categories.join(","),
                r.purpose
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
