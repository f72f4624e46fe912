//! `server up|down|status|logs|reload`: the broker's lifecycle.
//!
//! The only commands that talk to the container engine, so the only ones
//! that build an async runtime (current-thread) and a Docker client.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

mod views;

use views::{DownView, ImageView, LogLines, ReloadView, StatusView, UpView};

use super::Config;
use crate::broker::record::{self, Requested, Settings};
use crate::broker::{
    self, Context, DownOptions, ImageOptions, ImageRequest, ReloadOptions, UpOptions,
};
use crate::cli::{ServerCommand, ServerLogsArgs, UpRunArgs};
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::output::{Outcome, sanitize};

pub fn run(config: &Config, command: ServerCommand) -> Result<Outcome, Error> {
    let ctx = config.context();
    crate::runtime::block_on_interruptible(dispatch(&ctx, command))?
        .unwrap_or(Err(Error::Interrupted))
}

/// `--image` (or `WOTT_MQTT_IMAGE`) and `--mosquitto` as a request; empty
/// values count as unset.
pub(crate) fn image_request(image: Option<String>, mosquitto: Option<PathBuf>) -> ImageRequest {
    match image.filter(|i| !i.is_empty()) {
        Some(image) => ImageRequest::Given(image),
        None => ImageRequest::Default {
            mosquitto: non_empty(mosquitto),
        },
    }
}

/// A path flag, where an empty value counts as unset.
pub(crate) fn non_empty(path: Option<PathBuf>) -> Option<PathBuf> {
    path.filter(|p| !p.as_os_str().is_empty())
}

/// `server up`'s flags over the server dir's settings
/// ([`record::recall`]); `setup server` takes the same flags.
pub(crate) fn up_options(
    recorded: Option<Settings>,
    requested: Requested,
    run: UpRunArgs,
) -> UpOptions {
    let requested = Requested {
        memory: run.memory,
        pids_limit: run.pids_limit,
        ..requested
    };
    UpOptions::new(
        requested.over(recorded.as_ref()),
        run.replace,
        run.dry_run,
        Duration::from_secs(run.timeout),
    )
}

async fn dispatch(ctx: &Context<'_>, command: ServerCommand) -> Result<Outcome, Error> {
    match command {
        ServerCommand::Up(args) => {
            let requested = Requested {
                name: args.container.name,
                image: args.image.image,
                mosquitto: non_empty(args.image.mosquitto),
                bind: args.bind,
                port: args.port,
                ..Requested::default()
            };
            let recorded = record::recall(ctx.server_dir).await?;
            let options = up_options(recorded, requested, args.run);
            Ok(Outcome::report(UpView(broker::up(ctx, &options).await?)))
        }
        ServerCommand::Down(args) => {
            let options = DownOptions {
                name: args.container.name,
                purge: args.purge,
                dry_run: args.dry_run,
                graceful: true,
            };
            Ok(Outcome::report(DownView(
                broker::down(ctx, &options).await?,
            )))
        }
        ServerCommand::Reload(args) => {
            let options = ReloadOptions {
                name: args.container.name,
                dry_run: args.dry_run,
                timeout: Duration::from_secs(args.timeout),
            };
            Ok(Outcome::report(ReloadView(
                broker::reload(ctx, &options).await?,
            )))
        }
        ServerCommand::Status(args) => {
            let report = broker::status(
                ctx,
                args.container.name.as_deref(),
                Duration::from_secs(args.timeout),
            )
            .await?;
            // Like `systemctl status`: scripts can test whether the broker
            // serves, and whether it serves the files on disk.
            let code = if !report.running || report.served.is_none() {
                ExitCode::Failure
            } else if !report.drift.is_empty() {
                ExitCode::Drift
            } else {
                ExitCode::Success
            };
            let open = report.open_error();
            let outcome = Outcome::report(StatusView(report)).with_code(code);
            Ok(match open {
                // Loudly: every device may read and write every topic.
                Some(error) => outcome.with_error(error),
                None => outcome,
            })
        }
        ServerCommand::Logs(args) => logs(ctx, &args).await,
        ServerCommand::Image(args) => {
            let options = ImageOptions {
                tag: args.tag,
                mosquitto: args.mosquitto.filter(|m| !m.as_os_str().is_empty()),
                dry_run: args.dry_run,
            };
            Ok(Outcome::report(ImageView(
                broker::local_image(ctx.output, &options).await?,
            )))
        }
    }
}

/// `server logs`: printed as it arrives (sanitized, whole lines), or as one
/// JSON document.
async fn logs(ctx: &Context<'_>, args: &ServerLogsArgs) -> Result<Outcome, Error> {
    if args.follow && ctx.output.is_json() {
        return Err(Error::usage(
            "--follow cannot be combined with --json",
            Some(
                "drop --json to stream the log, or --follow to get it as one JSON document"
                    .to_string(),
            ),
        ));
    }
    if ctx.output.is_json() {
        let mut bytes = Vec::new();
        broker::logs(
            ctx,
            args.container.name.as_deref(),
            args.tail,
            false,
            &mut |chunk| {
                bytes.extend_from_slice(chunk);
                Ok(())
            },
        )
        .await?;
        let lines = String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect();
        return Ok(Outcome::report(LogLines { lines }));
    }
    let mut stdout = std::io::stdout().lock();
    let mut pending = Vec::new();
    broker::logs(
        ctx,
        args.container.name.as_deref(),
        args.tail,
        args.follow,
        &mut |chunk| {
            pending.extend_from_slice(chunk);
            // Whole lines only, so that sanitizing never splits a character.
            if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                let text = String::from_utf8_lossy(&pending[..=end]).into_owned();
                pending.drain(..=end);
                stdout.write_all(sanitize(&text).as_bytes())?;
                stdout.flush()?;
            }
            Ok(())
        },
    )
    .await?;
    if !pending.is_empty() {
        let text = String::from_utf8_lossy(&pending).into_owned();
        let _ = writeln!(stdout, "{}", sanitize(&text));
    }
    Ok(Outcome::report(LogLines { lines: Vec::new() }))
}
