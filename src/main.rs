//! The `portal` command. Each subcommand is one call into the library.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use portal::accounts::AccountError;
use portal::error::AppError;
use portal::infra::audit;
use portal::infra::audit::Actor;
use portal::infra::mail::{TestOutcome, TryOutcome};
use portal::{AppState, Config};

/// The longest a command waits on the mail server; what is not sent by then stays
/// queued for the running portal.
const COMMAND_MAIL_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "portal",
    version,
    about = "Self-hosted client portal for tax and accounting firms"
)]
struct Cli {
    /// Configuration file (optional; defaults are used for anything it leaves out).
    #[arg(
        long,
        short,
        global = true,
        env = "PORTAL_CONFIG",
        default_value = "portal.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal (web server, mail delivery, housekeeping).
    Serve,
    /// Create the data directory, database and keys, then exit.
    Init,
    /// Manage staff members.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect the mail queue.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Rebuild the document search index from the database and the stored files.
    Reindex {
        /// Also read again the text of PDFs whose reading failed or was interrupted
        /// (for instance after raising `documents.extract_memory_mb`).
        #[arg(long)]
        retry_failed: bool,
    },
    /// Run portal maintenance (document retention) once, now.
    Maintain,
    /// Check or export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check a theme before deploying it.
    #[command(subcommand)]
    Theme(ThemeCommand),
    /// Check a task-type plugin, or list the installed ones.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Internal: read a PDF on standard input and print its text. The server
    /// runs this in a resource-limited child process; it reads no configuration.
    #[command(hide = true)]
    ExtractText {
        /// Refuse a PDF with a compressed stream that inflates beyond this (MiB).
        #[arg(long, default_value_t = 128)]
        max_stream_mb: u64,
    },
}

#[derive(Subcommand)]
enum ThemeCommand {
    /// Render every page and email with sample data and report problems per file
    /// (syntax errors, undefined variables, emails without a `Subject:` line).
    /// Exits with 1 when there are problems.
    Check {
        /// The theme directory to check (default: `theme.dir` of the configuration).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Load a plugin file as the portal would (no data directory needed), print
    /// its interface version, imports, exports, size and timings, and run each
    /// export on sample data showing its log lines. Exits with 1 when a call fails.
    Check {
        /// The plugin's `.wasm` file.
        file: PathBuf,
    },
    /// List the plugins in `plugins.dir` and each file that failed to load, with the reason.
    List,
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Add a staff member. The password is read from standard input when
    /// `--password-stdin` is given; otherwise a strong one is generated and printed.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List staff members.
    List,
    /// Lift a staff member's lockout after too many wrong passwords or codes.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Make a staff member enrol a new authenticator app at the next sign-in.
    ResetTotp {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client portal and email the client an invitation.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
    },
    /// Send the invitation again.
    Invite {
        #[arg(long)]
        email: String,
    },
    /// List clients.
    List,
}

#[derive(Subcommand)]
enum MailCommand {
    /// Show pending, sent, failed and dropped mail, and the last delivery error.
    Status,
    /// Send a test message now (not through the queue) and show the SMTP conversation.
    Test {
        /// Where to send the test message.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of the audit log.
    Verify,
    /// Print the audit log as JSON lines.
    Export,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::ExtractText { max_stream_mb } = cli.command {
        return portal::infra::extract::child_main(max_stream_mb);
    }
    let loaded = match Config::load(Some(&cli.config)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("portal: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut level = loaded.config.log.level.clone();
    if matches!(cli.command, Command::Plugin(PluginCommand::Check { .. })) {
        // `plugin check` prints the plugin's own log lines beside each call.
        level.push_str(",plugin=off");
    }
    init_logging(&level);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portal: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, loaded.config));
    // Work that cannot be cancelled (a blocking call) does not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portal: {}", admin_message(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Log lines go to standard error, so that standard output holds only what a
/// command prints (JSON Lines for `audit export`); colour only on a terminal
/// and without `NO_COLOR`.
fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .init();
}

/// An error in words for the admin: the cause of an internal error rather than
/// the apology the web pages show.
fn admin_message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<AppError>() {
        Some(AppError::Internal(cause)) => format!("{cause:#}"),
        Some(other) => other.to_string(),
        None => format!("{e:#}"),
    }
}

fn account(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Internal(e) => e.into(),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    // Checking a theme or a plugin needs no data directory, and must run on a broken one.
    let command = match command {
        Command::Theme(ThemeCommand::Check { dir }) => return theme_check(config, dir),
        Command::Plugin(cmd) => return plugin(cmd, &config),
        other => other,
    };
    let state = AppState::open(config)?;
    match command {
        Command::Serve => {
            let addr = state.config.server.listen;
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            println!(
                "Portal is running at {} (listening on {addr})",
                state.config.base_url()
            );
            portal::serve(state, listener, portal::shutdown_signal()).await
        }
        Command::Init => {
            println!(
                "Data directory ready at {}",
                state.config.storage.data_dir.display()
            );
            Ok(())
        }
        Command::Staff(cmd) => staff(cmd, &state).await,
        Command::Reindex { retry_failed } => {
            hold_index(
                &state,
                "the search index was not rebuilt",
                "it rebuilds the index at start when it has drifted from the database",
            )
            .await?;
            if retry_failed {
                let n = portal::documents::content::retry_failed_extractions(&state).await?;
                println!("Reading the text of {n} PDFs again.");
            }
            let n = portal::documents::content::reindex(&state).await?;
            println!("Indexed {n} documents.");
            Ok(())
        }
        Command::Maintain => {
            let every = state.config.retention.run_every_minutes;
            let hint = format!(
                "it runs this maintenance itself every {every} minutes (retention.run_every_minutes)"
            );
            hold_index(&state, "maintenance did not run", &hint).await?;
            let n = portal::documents::retention::run(&state).await?;
            println!("Removed {n} documents (each removal is in the audit log).");
            Ok(())
        }
        Command::Client(cmd) => client(cmd, &state).await,
        Command::Mail(MailCommand::Status) => mail_status(&state).await,
        Command::Mail(MailCommand::Test { to }) => mail_test(&state, &to).await,
        Command::Theme(_) | Command::Plugin(_) => Ok(()),
        Command::ExtractText { .. } => {
            anyhow::bail!("extract-text runs before the configuration is loaded")
        }
        Command::Audit(cmd) => audit_command(cmd, &state).await,
    }
}

async fn audit_command(cmd: AuditCommand, state: &AppState) -> anyhow::Result<()> {
    let records = state
        .db
        .read(|conn| audit::all(conn).map_err(portal::infra::db::DbError::from))
        .await?;
    match cmd {
        AuditCommand::Verify => match audit::verify(&records) {
            Ok(n) => {
                println!("audit log intact: {n} entries");
                Ok(())
            }
            Err(e) => anyhow::bail!("audit log damaged: {e}"),
        },
        AuditCommand::Export => {
            for r in records {
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(())
        }
    }
}

async fn staff(cmd: StaffCommand, state: &AppState) -> anyhow::Result<()> {
    match cmd {
        StaffCommand::Add {
            email,
            name,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                (s.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                (
                    portal::infra::crypto::random_token()[..24].to_string(),
                    true,
                )
            };
            let staff = portal::firm::add_staff(state, &email, &name, &password)
                .await
                .map_err(account)?;
            println!("Added staff member {} <{}>.", staff.name, staff.email);
            if generated {
                println!("Password (shown once): {password}");
            }
            println!(
                "Sign in at {}/staff/signin; you will set up an authenticator app on first sign-in.",
                state.config.base_url()
            );
            Ok(())
        }
        StaffCommand::List => {
            let staff = portal::firm::list_staff(state).await.map_err(account)?;
            print_people(staff.iter().map(|s| {
                let totp = s
                    .totp_enabled_at
                    .map_or("no authenticator yet", |_| "authenticator set up");
                (&s.name, &s.email, totp)
            }));
            Ok(())
        }
        StaffCommand::Unlock { email } => {
            let s = portal::firm::unlock_staff(state, &email)
                .await
                .map_err(account)?;
            println!("{} can sign in again.", s.email);
            Ok(())
        }
        StaffCommand::ResetTotp { email } => {
            let s = portal::firm::reset_staff_totp(state, &email)
                .await
                .map_err(account)?;
            println!(
                "{} will set up a new authenticator at the next sign-in.",
                s.email
            );
            Ok(())
        }
    }
}

async fn client(cmd: ClientCommand, state: &AppState) -> anyhow::Result<()> {
    use portal::accounts::invite;
    match cmd {
        ClientCommand::Add { name, email } => {
            let c = invite::invite_client(state, &name, &email, Actor::System, "")
                .await
                .map_err(account)?;
            println!("Created the portal for {} <{}>.", c.name, c.email);
            send_now(state, &c.email, "invitation").await;
            Ok(())
        }
        ClientCommand::Invite { email } => {
            let c = invite::resend_invitation(state, &email, Actor::System, "")
                .await
                .map_err(account)?;
            send_now(state, &c.email, "new invitation").await;
            Ok(())
        }
        ClientCommand::List => {
            let clients = invite::list_clients(state).await.map_err(account)?;
            print_people(clients.iter().map(|c| {
                let status = c.signed_up_at.map_or("invited", |_| "active");
                (&c.name, &c.email, status)
            }));
            Ok(())
        }
    }
}

/// Prints one line per person: `Name <email> (status)`.
fn print_people<'a>(people: impl Iterator<Item = (&'a String, &'a String, &'a str)>) {
    for (name, email, status) in people {
        println!("{name} <{email}> ({status})");
    }
}

fn plugin(cmd: PluginCommand, config: &Config) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        PluginCommand::Check { file } => portal::plugin_cli::check(&file, config, &mut out),
        PluginCommand::List => portal::plugin_cli::list(config, &mut out),
    }
}

fn theme_check(mut config: Config, dir: Option<PathBuf>) -> anyhow::Result<()> {
    if let Some(dir) = dir {
        anyhow::ensure!(dir.is_dir(), "--dir {} is not a directory", dir.display());
        config.theme.dir = dir.to_string_lossy().into_owned();
    }
    let report = portal::theme_check::check(&config);
    let theme = match config.theme.dir.as_str() {
        "" => "the default theme".to_string(),
        dir => format!("the theme in {dir} over the default theme"),
    };
    println!(
        "Checked {theme}: {} templates parsed, {} renderings with sample data.",
        report.templates, report.renderings
    );
    for problem in &report.problems {
        println!("{problem}");
    }
    match report.problems.len() {
        0 => {
            println!("No problems found.");
            Ok(())
        }
        1 => anyhow::bail!("1 problem found"),
        n => anyhow::bail!("{n} problems found"),
    }
}

/// Commands never wait long on a mail server: one short try now, and what is not
/// sent stays queued for the running portal's worker.
async fn send_now(state: &AppState, to: &str, what: &str) {
    let outbox = state.config.mail.smtp_host.is_empty();
    match state
        .mailer
        .try_deliver_latest(to, COMMAND_MAIL_LIMIT)
        .await
    {
        TryOutcome::Delivered if outbox => println!(
            "The {what} to {to} was written to {} (no SMTP server is configured).",
            state.config.outbox_dir().display()
        ),
        TryOutcome::Delivered => println!("Emailed the {what} to {to}."),
        TryOutcome::Queued(why) => println!(
            "The {what} to {to} is queued: it could not be sent just now ({why}). \
             The running portal keeps trying; see `portal mail status`."
        ),
        TryOutcome::NothingPending => println!("The {what} to {to} is queued."),
    }
}

/// Takes the search index's writer before a command changes anything: beside a
/// running portal, which holds it, the command then does nothing at all.
async fn hold_index(state: &AppState, not_done: &str, hint: &str) -> anyhow::Result<()> {
    let search = state.search.clone();
    let held = tokio::task::spawn_blocking(move || search.claim_writer()).await?;
    held.map_err(|e| {
        if e.is::<portal::infra::search::IndexInUse>() {
            anyhow::anyhow!(
                "{not_done}; nothing was changed. A running portal (`portal serve`) is using the data directory {}: stop it first, or let it do the work: {hint}.",
                state.config.storage.data_dir.display()
            )
        } else {
            anyhow::anyhow!("{not_done}; nothing was changed. The search index cannot be written: {e:#}")
        }
    })
}

/// A time as "2025-03-01 14:05 UTC (12 min ago)".
fn when(at: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let date = time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| at.to_string());
    format!("{date} ({} ago)", portal::infra::mail::age(at))
}

async fn mail_status(state: &AppState) -> anyhow::Result<()> {
    let status = portal::infra::mail::status(&state.db).await?;
    let h = &status.health;
    match h.oldest_pending_at {
        Some(at) => println!("pending: {} (oldest queued {})", status.pending, when(at)),
        None => println!("pending: 0"),
    }
    match h.last_sent_at {
        Some(at) => println!("sent: {} (last delivered {})", status.sent, when(at)),
        None => println!("sent: {}", status.sent),
    }
    println!("failed: {}", status.failed.len());
    for (id, to, error) in &status.failed {
        println!("  #{id} to {to}: {error}");
    }
    println!("dropped: {}", status.dropped.len());
    for d in &status.dropped {
        let last = d
            .last_error
            .as_deref()
            .map_or(String::new(), |e| format!("; last error: {e}"));
        println!(
            "  #{} to {}: its access code expired ({}) before it could be delivered{last}",
            d.id,
            d.to,
            when(d.expired_at)
        );
    }
    match (&h.last_error, h.last_error_at) {
        (Some(error), Some(at)) => println!("last delivery error: {} {error}", when(at)),
        _ => println!("last delivery error: none"),
    }
    Ok(())
}

async fn mail_test(state: &AppState, to: &str) -> anyhow::Result<()> {
    let email = state
        .email("mail_test", minijinja::context! { to })
        .map_err(|e| anyhow::anyhow!(admin_message(&e.into())))?;
    println!(
        "Sending a test message to {to} through the {}.",
        state.mailer.describe()
    );
    let mut log = |step: portal::infra::smtp::Step, reply: String| {
        println!("  ok      {:<14} {reply}", step.label());
    };
    match state.mailer.send_test(to, &email, &mut log).await {
        Ok(TestOutcome::Accepted) => {
            println!("The SMTP server accepted the test message for {to}.");
            Ok(())
        }
        Ok(TestOutcome::WrittenTo(path)) => {
            println!(
                "No SMTP server is configured (mail.smtp_host is empty): the test message was written to {}.",
                path.display()
            );
            Ok(())
        }
        Err(e) => {
            println!("  FAILED  {}", e.message);
            anyhow::bail!("the test message was not delivered: {}", e.message)
        }
    }
}
