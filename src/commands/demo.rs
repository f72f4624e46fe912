//! `demo`: runs [`demo::run`] on a current-thread runtime with Ctrl-C as
//! its interruption, and prints the steps in the tutorial's terms.

use std::fmt::Write as _;

use serde::Serialize;

use super::Config;
use crate::cli::DemoArgs;
use crate::error::Error;
use crate::output::{Human, Outcome, Paint, sanitize};
use crate::tutorial::demo::{self, DemoOptions, DemoReport, Step};

pub fn run(config: &Config, args: DemoArgs) -> Result<Outcome, Error> {
    let options = DemoOptions {
        image: super::server::image_request(args.image.image, args.image.mosquitto),
        keep: args.keep,
    };
    let (report, error) = crate::runtime::block_on(demo::run(&options, &config.output, async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler: Ctrl-C then ends the process the default way.
            std::future::pending::<()>().await;
        }
    }))?;
    let outcome = Outcome::report(DemoView(report));
    Ok(match error {
        Some(error) => outcome.with_error(error),
        None => outcome,
    })
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct DemoView(DemoReport);

impl Human for DemoView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        if !r.steps.is_empty() {
            let _ = writeln!(
                s,
                "{}\n",
                p.bold(
                    "The tutorial on this machine; a throwaway CA stands in for the WoTT agent."
                )
            );
        }
        for step in &r.steps {
            step_lines(&mut s, p, r, step);
        }
        if !r.steps.is_empty() {
            s.push('\n');
        }
        let seconds = r.elapsed_ms as f64 / 1000.0;
        let at = r.steps.last().map(|step| step.number).unwrap_or(0);
        if r.passed {
            let _ = writeln!(
                s,
                "{} {}",
                p.mark(true),
                p.bold(&format!(
                    "The tutorial works on this machine ({seconds:.1} s)."
                ))
            );
        } else if r.interrupted {
            let _ = writeln!(s, "Interrupted at step {at}.");
        } else if at > 0 {
            let _ = writeln!(s, "{} Stopped at step {at}.", p.mark(false));
        }
        if r.kept {
            kept(&mut s, r);
        } else {
            let mut removed = Vec::new();
            if r.cleanup.container_removed {
                removed.push(format!("the container {}", r.container));
            }
            if r.cleanup.workdir_removed
                && let Some(dir) = &r.workdir
            {
                removed.push(dir.display().to_string());
            }
            if !removed.is_empty() {
                let _ = writeln!(s, "Removed {}.", removed.join(" and "));
            }
        }
        if r.passed {
            let _ = writeln!(
                s,
                "Next, on real devices: the same steps, with the commands shown above \
                 (docs/guide.md), or `wott-mqtt setup`."
            );
        }
        s
    }
}

/// One step of the demo: its title, what it found, and its real-world command.
fn step_lines(s: &mut String, p: Paint, r: &DemoReport, step: &Step) {
    let _ = writeln!(
        s,
        "{} {}",
        p.mark(step.ok),
        p.bold(&format!("{}. {}", step.number, step.title))
    );
    let check_stages = r.check.as_ref().filter(|_| step.number == 6 && step.ok);
    match check_stages {
        Some(check) => {
            for line in Human::human(check, p).lines() {
                let _ = writeln!(s, "     {line}");
            }
        }
        // The error that stopped it follows on stderr, with its hint.
        None if !step.ok && !r.interrupted => {}
        None => {
            let _ = writeln!(s, "     {}", sanitize(&step.detail));
        }
    }
    let _ = writeln!(
        s,
        "     {}",
        p.dim(&format!("on the {}: {}", step.device, step.real_world))
    );
}

fn kept(s: &mut String, r: &DemoReport) {
    let _ = writeln!(s, "Kept, as --keep asked:");
    if r.container_id.is_some() {
        let _ = writeln!(s, "  the broker  {} on 127.0.0.1:{}", r.container, r.port);
    }
    if let Some(dir) = &r.workdir {
        let _ = writeln!(
            s,
            "  the files   {} (server/certs, server/mosquitto, client/certs)",
            dir.display()
        );
    }
    if !r.cleanup.try_commands.is_empty() {
        let _ = writeln!(s, "Try:");
        for command in &r.cleanup.try_commands {
            let _ = writeln!(s, "  {}", sanitize(command));
        }
    }
    let _ = writeln!(s, "Remove it all:");
    for command in &r.cleanup.commands {
        let _ = writeln!(s, "  {}", sanitize(command));
    }
}
