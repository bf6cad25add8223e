//! Argument parsing and the commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use protoreg_schema::{Input, OutputFormat, SchemaError};

#[derive(Parser)]
#[command(
    name = "protoreg",
    version,
    about = "Protobuf schema registry and breaking-change checker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a module (directory, file or descriptor set) to a descriptor set.
    Build(BuildArgs),
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
    /// Include imported files (well-known types, dependencies) in the output.
    #[arg(long)]
    include_imports: bool,
    /// Include source code info (locations and comments) in the output.
    #[arg(long)]
    include_source_info: bool,
}

/// Exit statuses, as buf: 0 clean, 1 usage or compile error, 100 findings.
pub const EXIT_ERROR: u8 = 1;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(a) => build(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Prints an error; compile diagnostics get their source line and a caret.
fn report_error(e: &anyhow::Error) {
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    if let Some(SchemaError::Compile(diags)) = e.downcast_ref::<SchemaError>() {
        let color = std::env::var_os("NO_COLOR").is_none() && is_terminal();
        for d in &diags.0 {
            let _ = write!(out, "{}", d.render_pretty(color));
        }
        let _ = writeln!(out, "error: {} compile error(s)", diags.0.len());
    } else {
        let _ = writeln!(out, "error: {e:#}");
    }
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let image = if a.inputs.len() == 1 {
        Input::parse(&a.inputs[0])?.load(&a.include)?.image
    } else {
        let files: Vec<PathBuf> = a.inputs.iter().map(PathBuf::from).collect();
        protoreg_schema::SourceSet::from_files(&files, &a.include)?.compile()?
    };
    if let Some(out) = &a.output {
        let bytes = image.encode(
            OutputFormat::from_path(out),
            a.include_imports,
            a.include_source_info,
        )?;
        // Write to a temporary file beside the target, then rename: never a half-written file.
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
    }
    Ok(ExitCode::SUCCESS)
}
