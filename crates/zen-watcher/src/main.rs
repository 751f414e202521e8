//! The zen-watcher binary: parses the command line, loads configuration and wires the library
//! crates together. It holds no logic of its own beyond configuration and wiring; everything it
//! does is done by a library crate, and every failure ends in a one-line message and a non-zero
//! exit.

mod config;
mod daemon;

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use zen_model::{Context, Format, NormalizeConfig, Normalizer, Syntax, Timestamp};
use zen_server::auth::Scope;

use config::LogFormat;

/// jemalloc instead of the system allocator: under load a fifth of the daemon's CPU went to
/// glibc's malloc and free — events are allocated on the HTTP threads and freed on the sink's
/// (`docs/benchmarks.md`, "End to end"). Its options are set where it is built:
/// `JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The package's version and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ZEN_COMMIT"), ")");

/// Turns security and compliance signals into one normalised, de-duplicated stream of
/// Observations.
///
/// Run without a command, it is the daemon (`run`).
#[derive(Debug, Parser)]
#[command(
    name = "zen-watcher",
    version = VERSION,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default): HTTP ingestion, the pipeline and the store.
    Run(RunArgs),
    /// Read a payload of one source format and print its events as JSON lines.
    ///
    /// For debugging mappings: events go to stdout, one JSON object per line; per-item errors
    /// and a summary go to stderr. Exits 1 when nothing in the payload could be read.
    Normalize(NormalizeArgs),
    /// Check or print configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// What no sink could write, kept in the store's dead-letter table.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Write a performance report of a range as one self-contained HTML file, asked of the
    /// running daemon (at the configured `listen` address, with its token):
    /// `zen-watcher report --from -24h > report.html`.
    Report(ReportArgs),
    /// Print a shell's completion script: `zen-watcher completions bash >
    /// /etc/bash_completion.d/zen-watcher` (also in `deploy/completions/`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `zen-watcher man > zen-watcher.1` (also `deploy/man/`).
    Man,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Start of the range: before now (`-24h`, `-90m`, `-3600`), or seconds since 1970.
    #[arg(long, default_value = "-24h", allow_hyphen_values = true, value_parser = parse_when)]
    from: i64,
    /// End of the range, as `--from`; `0` or `now` is now.
    #[arg(long, default_value = "now", allow_hyphen_values = true, value_parser = parse_when)]
    to: i64,
    #[command(flatten)]
    run: RunArgs,
}

/// A time as the history API takes it: seconds since 1970, or at most 0 for seconds before now.
/// `-24h`, `-90m`, `-30s`, `-7d` and `now` are read too.
fn parse_when(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(0);
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if scale > 0 && n <= 0 => Ok(n * scale),
        _ => Err(format!(
            "expected seconds since 1970, `now`, or a time before now like -24h, -90m, -30s, -7d; got {text:?}"
        )),
    }
}

#[derive(Debug, Subcommand)]
enum DeadLettersCommand {
    /// Ask the running daemon (at the configured `listen` address, with its token) to submit
    /// every dead letter's events again; each letter is removed once its events are stored.
    /// Prints what was replayed; exits 1 when letters are left.
    Replay(RunArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file without starting anything.
    Check { file: PathBuf },
    /// Print the effective configuration: defaults, the file, `ZEN_*` variables and flags.
    Print(RunArgs),
}

/// Where the daemon's settings come from, beyond defaults and `ZEN_*` variables.
#[derive(Debug, Clone, Default, clap::Args)]
struct RunArgs {
    /// A YAML configuration file.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; `ZEN_LISTEN`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for the database (default ./zen-data; `ZEN_DATA_DIR`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log format (`ZEN_LOG_FORMAT`).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Follow a file of JSON lines as a source, e.g. `audit:/var/log/kubernetes/audit.log`
    /// (repeatable; added to the configuration file's `tail`).
    #[arg(long, value_name = "FORMAT:PATH")]
    tail: Vec<config::TailSpec>,
    /// Kubernetes mode: watch report custom resources (`ZEN_KUBE`; on by default in a cluster).
    #[arg(long)]
    kube: bool,
    /// Listen beyond loopback without any token (`ZEN_INSECURE_NO_AUTH`): anyone who reaches
    /// the port may ingest, read and change everything.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Serve HTTPS with this certificate chain (PEM; `ZEN_TLS_CERT_FILE`), reloaded when it
    /// changes; with `--tls-key`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM; `ZEN_TLS_KEY_FILE`).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl RunArgs {
    fn load(&self) -> Result<(config::DaemonConfig, Vec<String>)> {
        let mut overrides = Vec::new();
        if let Some(l) = &self.listen {
            overrides.push(("listen", l.clone()));
        }
        if let Some(d) = &self.data_dir {
            overrides.push(("data_dir", d.display().to_string()));
        }
        if let Some(f) = self.log_format {
            let name = if f == LogFormat::Json { "json" } else { "text" };
            overrides.push(("log_format", name.to_owned()));
        }
        if let Some(c) = &self.tls_cert {
            overrides.push(("tls.cert_file", c.display().to_string()));
        }
        if let Some(k) = &self.tls_key {
            overrides.push(("tls.key_file", k.display().to_string()));
        }
        let (mut config, warnings) =
            config::load(self.config.as_deref(), std::env::vars(), &overrides)?;
        config.tail.extend(self.tail.iter().cloned());
        if self.kube {
            config.kube.enabled = Some(true);
        }
        if self.insecure_no_auth {
            config.insecure_no_auth = true;
        }
        Ok((config, warnings))
    }
}

#[derive(Debug, clap::Args)]
struct NormalizeArgs {
    /// The source format of the payload.
    #[arg(long, short, value_parser = parse_format,
          help = "Source format: falco (or falcosidekick), audit, trivy, kyverno, kube-bench, checkov, generic")]
    source: Format,

    /// The payload file; `-` or nothing reads standard input.
    file: Option<PathBuf>,

    /// The syntax of the payload; `auto` takes JSON when it starts with `{` or `[`.
    #[arg(long, value_enum, default_value_t = InputSyntax::Auto)]
    input_format: InputSyntax,

    /// A YAML file of normaliser settings (`audit`, `checkov`, `generic` sections).
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,

    /// The node the payload came from (kube-bench output names none).
    #[arg(long)]
    node: Option<String>,

    /// The time of receipt (RFC 3339), for findings that carry no time; default now.
    #[arg(long, value_name = "TIME")]
    received_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InputSyntax {
    Auto,
    Json,
    Yaml,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: zen_model::UnknownName| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => cli
            .run
            .load()
            .and_then(|(c, w)| daemon::run(c, w))
            .map(|()| ExitCode::SUCCESS),
        Some(Command::Run(args)) => args
            .load()
            .and_then(|(c, w)| daemon::run(c, w))
            .map(|()| ExitCode::SUCCESS),
        Some(Command::Normalize(args)) => normalize(args),
        Some(Command::Config(ConfigCommand::Check { file })) => {
            config::load(Some(&file), Vec::new(), &[]).map(|_| {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            })
        }
        Some(Command::Config(ConfigCommand::Print(args))) => args.load().and_then(|(mut c, _)| {
            // A secret is never printed.
            if c.token.is_some() {
                c.token = Some("(redacted)".to_owned());
            }
            if c.store.url.is_some() {
                c.store.url = Some("(redacted)".to_owned());
            }
            print!("{}", serde_yaml_ng::to_string(&c)?);
            Ok(ExitCode::SUCCESS)
        }),
        Some(Command::DeadLetters(DeadLettersCommand::Replay(args))) => {
            args.load().and_then(|(c, _)| replay_dead_letters(&c))
        }
        Some(Command::Completions { shell }) => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut documented(), "zen-watcher", &mut text);
            print_all(&text)
        }
        Some(Command::Man) => {
            let mut text = Vec::new();
            clap_mangen::Man::new(documented())
                .render(&mut text)
                .context("rendering the manual page")
                .and_then(|()| print_all(&text))
        }
        Some(Command::Report(args)) => args.run.load().and_then(|(c, _)| {
            let path = format!("/api/v1/report?from={}&to={}", args.from, args.to);
            let (url, status, body) = ask_daemon(&c, "GET", &path, Scope::Read)?;
            anyhow::ensure!(status.is_success(), "{url} answered {status}: {body}");
            print!("{body}");
            Ok(ExitCode::SUCCESS)
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line as the completions and the manual page describe it: the version without
/// the commit, so that the committed copies change only when the interface does.
fn documented() -> clap::Command {
    <Cli as clap::CommandFactory>::command().version(env!("CARGO_PKG_VERSION"))
}

/// Writes to standard output; a closed pipe (`| head`) is an error, not a panic.
fn print_all(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Asks the running daemon (at the configured `listen` address, with the first configured
/// token whose scope allows `scope`) for `path`: the URL, the answer's status and its body.
fn ask_daemon(
    c: &config::DaemonConfig,
    method: &str,
    path: &str,
    scope: Scope,
) -> Result<(String, ureq::http::StatusCode, String)> {
    let mut addr = c.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}{path}");
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let tokens = &c.resolved_tokens;
    let auth = match tokens.first_allowing(scope) {
        Some(t) => Some(format!("Bearer {}", t.secret())),
        None if tokens.is_empty() => None,
        None => anyhow::bail!(
            "this needs a token of scope {scope}, and none is configured: ZEN_{}_TOKEN_FILE \
             (tokens.{scope}_file), or ZEN_ADMIN_TOKEN_FILE",
            scope.as_str().to_uppercase()
        ),
    };
    let sent = if method == "POST" {
        let mut request = agent.post(&url);
        if let Some(a) = &auth {
            request = request.header("Authorization", a);
        }
        request.send_empty()
    } else {
        let mut request = agent.get(&url);
        if let Some(a) = &auth {
            request = request.header("Authorization", a);
        }
        request.call()
    };
    let mut response = sent.with_context(|| format!("asking the daemon at {url}"))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    Ok((url, status, body))
}

fn replay_dead_letters(c: &config::DaemonConfig) -> Result<ExitCode> {
    let (url, status, body) = ask_daemon(c, "POST", "/api/v1/dead-letters/replay", Scope::Admin)?;
    println!("{body}");
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    let left = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["left"].as_u64())
        .unwrap_or(0);
    Ok(if left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn normalize(args: NormalizeArgs) -> Result<ExitCode> {
    let config = match &args.settings {
        None => NormalizeConfig::default(),
        Some(path) => {
            let text =
                fs::read(path).with_context(|| format!("reading settings {}", path.display()))?;
            serde_yaml_ng::from_slice(&text)
                .with_context(|| format!("reading settings {}", path.display()))?
        }
    };
    let normalizer = Normalizer::new(config).context("invalid normaliser settings")?;

    let (name, input) = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let input = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            (path.display().to_string(), input)
        }
        _ => {
            let mut input = Vec::new();
            io::stdin()
                .read_to_end(&mut input)
                .context("reading standard input")?;
            ("standard input".to_owned(), input)
        }
    };
    let syntax = match args.input_format {
        InputSyntax::Auto => Syntax::detect(&input),
        InputSyntax::Json => Syntax::Json,
        InputSyntax::Yaml => Syntax::Yaml,
    };
    let ctx = Context {
        received_at: args.received_at.unwrap_or_else(Timestamp::now),
        node: args.node,
    };
    let out = normalizer
        .normalize_text(args.source, syntax, &input, &ctx)
        .with_context(|| format!("{name} is unreadable"))?;

    let mut stdout = BufWriter::new(io::stdout().lock());
    for event in &out.events {
        serde_json::to_writer(&mut stdout, event)?;
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    for e in &out.errors {
        eprintln!("error: {e}");
    }
    eprintln!(
        "{name}: {} events, {} errors, {} ignored",
        out.events.len(),
        out.errors.len(),
        out.ignored
    );
    let nothing_read = out.events.is_empty() && out.ignored == 0 && !out.errors.is_empty();
    Ok(if nothing_read {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
