//! The `portal` command. Each subcommand is one call into the library.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use portal::infra::audit;
use portal::infra::audit::Actor;
use portal::{AppState, Config};

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
    /// Show pending, sent and failed mail.
    Status,
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
    init_logging(&loaded.config.log.level);
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
    match runtime.block_on(run(cli.command, loaded.config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portal: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    // Checking a theme needs no data directory, and must run on a broken one.
    if let Command::Theme(ThemeCommand::Check { dir }) = command {
        return theme_check(config, dir);
    }
    let state = AppState::open(config)?;
    match command {
        Command::Serve => {
            let addr = state.config.server.listen.clone();
            let listener = std::net::TcpListener::bind(&addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            println!(
                "Portal is running at {} (listening on {addr})",
                state.config.server.public_url
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
            if retry_failed {
                let n = portal::documents::content::retry_failed_extractions(&state).await?;
                println!("Reading the text of {n} PDFs again.");
            }
            let n = portal::documents::content::reindex(&state).await?;
            println!("Indexed {n} documents.");
            Ok(())
        }
        Command::Maintain => {
            let n = portal::documents::retention::run(&state).await?;
            println!("Removed {n} documents (each removal is in the audit log).");
            Ok(())
        }
        Command::Client(cmd) => client(cmd, &state).await,
        Command::Mail(MailCommand::Status) => {
            let status = portal::infra::mail::status(&state.db).await?;
            println!(
                "pending: {}\nsent: {}\nfailed: {}",
                status.pending,
                status.sent,
                status.failed.len()
            );
            for (id, to, error) in status.failed {
                println!("  #{id} to {to}: {error}");
            }
            Ok(())
        }
        Command::Theme(_) => Ok(()),
        Command::ExtractText { .. } => {
            anyhow::bail!("extract-text runs before the configuration is loaded")
        }
        Command::Audit(cmd) => {
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
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
            for s in portal::firm::list_staff(state)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let totp = if s.totp_enabled_at.is_some() {
                    "authenticator set up"
                } else {
                    "no authenticator yet"
                };
                println!("{} <{}> ({totp})", s.name, s.email);
            }
            Ok(())
        }
        StaffCommand::Unlock { email } => {
            let s = portal::firm::unlock_staff(state, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{} can sign in again.", s.email);
            Ok(())
        }
        StaffCommand::ResetTotp { email } => {
            let s = portal::firm::reset_staff_totp(state, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let deliver = async {
        // Deliver right away so the invitation does not wait for the server to run.
        state.mailer.deliver_due().await;
    };
    match cmd {
        ClientCommand::Add { name, email } => {
            let c = invite::invite_client(state, &name, &email, Actor::System, "")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            deliver.await;
            println!(
                "Created the portal for {} and emailed an invitation to {}.",
                c.name, c.email
            );
            println!(
                "(If mail is not configured, the invitation is in {}.)",
                state.config.outbox_dir().display()
            );
            Ok(())
        }
        ClientCommand::Invite { email } => {
            let c = invite::resend_invitation(state, &email, Actor::System, "")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            deliver.await;
            println!("Sent the invitation to {} again.", c.email);
            Ok(())
        }
        ClientCommand::List => {
            for c in invite::list_clients(state)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let status = if c.signed_up_at.is_some() {
                    "active"
                } else {
                    "invited"
                };
                println!("{} <{}> ({status})", c.name, c.email);
            }
            Ok(())
        }
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
