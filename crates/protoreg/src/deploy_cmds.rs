//! `record-deployment`, `undeploy` and `can-i-deploy`: which service runs which pinned
//! contract where, and whether a service built with its locks may be deployed next to what
//! runs there now. The registry does the checking; these commands send the locks and print.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::seg;
use crate::registry_cmds::RegistryArgs;

/// `can-i-deploy` answered no (as `breaking` exits when it finds breaking changes).
const EXIT_NO: u8 = 100;
/// `can-i-deploy` could not tell: a counterpart's pinned version is deleted or unreadable.
/// Never 0; distinct from "no"; clap's usage errors exit 2.
const EXIT_UNKNOWN: u8 = 1;

#[derive(clap::Args)]
pub struct DeploymentArgs {
    /// The service's name.
    #[arg(long)]
    service: String,
    /// The environment (`record-deployment` creates it on first use).
    #[arg(long = "env")]
    environment: String,
    /// The service's lock files (repeatable; each pins one subject, serves or calls).
    #[arg(long = "lock", default_value = "protoreg.lock")]
    locks: Vec<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    target: DeploymentArgs,
    /// Label as key=value (repeatable), e.g. --label build=$GITHUB_RUN_ID.
    #[arg(long = "label", value_parser = crate::registry_cmds::parse_label)]
    labels: Vec<(String, String)>,
}

#[derive(clap::Args)]
pub struct UndeployArgs {
    #[arg(long)]
    service: String,
    #[arg(long = "env")]
    environment: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct CanIDeployArgs {
    #[command(flatten)]
    target: DeploymentArgs,
    /// pretty, json or github-actions.
    #[arg(long, default_value = "pretty")]
    error_format: String,
}

/// The pins of the lock files, as the API takes them.
fn pins(locks: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for path in locks {
        let lock = protoreg_schema::Lock::read(path)?;
        out.push(json!({
            "subject": lock.subject,
            "version": lock.version,
            "digest": lock.digest,
            "role": lock.role(),
        }));
    }
    Ok(out)
}

pub fn record(a: RecordArgs) -> anyhow::Result<ExitCode> {
    let t = &a.target;
    let labels: serde_json::Map<String, Value> = a
        .labels
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let body = json!({"service": t.service, "pins": pins(&t.locks)?, "labels": labels});
    let reply = t.registry.client().post_gzip(
        &format!("/v1/environments/{}/deployments", seg(&t.environment)),
        &body,
    )?;
    if reply.status != 201 {
        bail!(
            "recording {} in {}: {}",
            t.service,
            t.environment,
            reply.error_message()
        );
    }
    let d = reply.json()?;
    let pinned: Vec<String> = d["pins"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {}@{}",
                p["role"].as_str().unwrap_or_default(),
                p["subject"].as_str().unwrap_or_default(),
                p["version"]
            )
        })
        .collect();
    println!(
        "{} runs in {} ({})",
        t.service,
        t.environment,
        pinned.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn undeploy(a: UndeployArgs) -> anyhow::Result<ExitCode> {
    let reply = a.registry.client().delete(&format!(
        "/v1/environments/{}/services/{}",
        seg(&a.environment),
        seg(&a.service)
    ))?;
    if reply.status != 200 {
        bail!(
            "undeploying {} from {}: {}",
            a.service,
            a.environment,
            reply.error_message()
        );
    }
    println!("{} no longer runs in {}", a.service, a.environment);
    Ok(ExitCode::SUCCESS)
}

pub fn can_i_deploy(a: CanIDeployArgs) -> anyhow::Result<ExitCode> {
    let t = &a.target;
    if !matches!(
        a.error_format.as_str(),
        "pretty" | "json" | "github-actions"
    ) {
        bail!(
            "unknown format {:?} (pretty, json, github-actions)",
            a.error_format
        );
    }
    let body = json!({"service": t.service, "pins": pins(&t.locks)?});
    let reply = t.registry.client().post_gzip(
        &format!("/v1/environments/{}/can-i-deploy", seg(&t.environment)),
        &body,
    )?;
    if reply.status != 200 {
        bail!(
            "can-i-deploy {} to {}: {}",
            t.service,
            t.environment,
            reply.error_message()
        );
    }
    let answer = reply.json()?;
    let out = match a.error_format.as_str() {
        "json" => format!("{answer}\n"),
        "github-actions" => github(&answer),
        _ => pretty(&answer),
    };
    print!("{out}");
    Ok(
        match answer["answer"].as_str().context("the registry's answer")? {
            "yes" => ExitCode::SUCCESS,
            "no" => ExitCode::from(EXIT_NO),
            _ => ExitCode::from(EXIT_UNKNOWN),
        },
    )
}

fn rows(answer: &Value) -> Vec<Value> {
    answer["matrix"].as_array().cloned().unwrap_or_default()
}

fn counterpart(r: &Value) -> String {
    match r["instance"].as_str() {
        Some(i) => format!(
            "{} (instance {i})",
            r["service"].as_str().unwrap_or_default()
        ),
        None => r["service"].as_str().unwrap_or_default().to_string(),
    }
}

/// A table of counterparts, then each incompatible one's findings.
fn pretty(answer: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let service = answer["service"].as_str().unwrap_or_default();
    let env = answer["environment"].as_str().unwrap_or_default();
    let rows = rows(answer);
    let verdict = match answer["answer"].as_str() {
        Some("yes") => "yes",
        Some("no") => "no",
        _ => "unknown",
    };
    let _ = writeln!(out, "can {service} be deployed to {env}? {verdict}");
    if rows.is_empty() {
        let _ = writeln!(out, "  no deployed service there shares a contract with it");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<28} {:<28} {:<7} {:>8} {:>9}  status",
        "counterpart", "subject", "role", "version", "deploying"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "  {:<28} {:<28} {:<7} {:>8} {:>9}  {}{}",
            counterpart(r),
            r["subject"].as_str().unwrap_or_default(),
            r["role"].as_str().unwrap_or_default(),
            format!("v{}", r["version"]),
            format!("v{}", r["deploying"]),
            r["status"].as_str().unwrap_or_default(),
            r["reason"]
                .as_str()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        );
    }
    for r in rows.iter().filter(|r| r["status"] == "incompatible") {
        let _ = writeln!(
            out,
            "\n{} ({} {}@{}) would break:",
            counterpart(r),
            r["role"].as_str().unwrap_or_default(),
            r["subject"].as_str().unwrap_or_default(),
            r["version"]
        );
        for f in r["findings"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {}:{}:{}: {} [{}]",
                f["path"].as_str().unwrap_or("<input>"),
                f["start_line"],
                f["start_column"],
                f["message"].as_str().unwrap_or_default(),
                f["type"].as_str().unwrap_or_default()
            );
        }
    }
    out
}

/// GitHub Actions workflow commands: an error per finding, a warning per unknown cell.
fn github(answer: &Value) -> String {
    use std::fmt::Write as _;
    let esc = |s: &str| protoreg_report::gh_escape(s, false);
    let mut out = String::new();
    for r in rows(answer) {
        let who = format!(
            "{} {} {}@{}",
            counterpart(&r),
            r["role"].as_str().unwrap_or_default(),
            r["subject"].as_str().unwrap_or_default(),
            r["version"]
        );
        match r["status"].as_str() {
            Some("incompatible") => {
                for f in r["findings"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        out,
                        "::error title=can-i-deploy {}::{}",
                        esc(f["type"].as_str().unwrap_or_default()),
                        esc(&format!(
                            "{who} would break: {}",
                            f["message"].as_str().unwrap_or_default()
                        ))
                    );
                }
            }
            Some("unknown") => {
                let _ = writeln!(
                    out,
                    "::warning title=can-i-deploy unknown::{}",
                    esc(&format!(
                        "{who}: {}",
                        r["reason"].as_str().unwrap_or_default()
                    ))
                );
            }
            _ => {}
        }
    }
    let _ = writeln!(
        out,
        "can-i-deploy {} to {}: {}",
        answer["service"].as_str().unwrap_or_default(),
        answer["environment"].as_str().unwrap_or_default(),
        answer["answer"].as_str().unwrap_or_default()
    );
    out
}
