//! `completions` and `man`: generated from the same clap definitions as
//! `--help`, so the three never disagree.

use std::path::PathBuf;

use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::Error;
use crate::output::{Human, Outcome, Paint};

/// Generated text, printed as is.
#[derive(Debug, Serialize)]
struct Generated {
    #[serde(skip)]
    text: String,
    /// Files written by `man --dir`.
    files: Vec<PathBuf>,
}

impl Human for Generated {
    fn human(&self, _: Paint) -> String {
        self.text.clone()
    }
}

pub fn completions(args: &CompletionsArgs) -> Result<Outcome, Error> {
    // Into a buffer first: clap_complete panics when stdout is closed early.
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "wott-mqtt", &mut buffer);
    Ok(Outcome::report(Generated {
        text: String::from_utf8_lossy(&buffer).into_owned(),
        files: Vec::new(),
    }))
}

pub fn man(args: &ManArgs) -> Result<Outcome, Error> {
    let command = Cli::command();
    if let Some(dir) = &args.dir {
        let write_error = |e: std::io::Error| {
            Error::File(crate::files::FileError::Write {
                path: dir.clone(),
                source: e,
            })
        };
        std::fs::create_dir_all(dir).map_err(write_error)?;
        clap_mangen::generate_to(command, dir).map_err(write_error)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(write_error)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "1"))
            .collect();
        files.sort();
        let text = files.iter().map(|f| format!("{}\n", f.display())).collect();
        return Ok(Outcome::report(Generated { text, files }));
    }
    let mut buffer = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut buffer)
        .map_err(|e| Error::usage(format!("cannot render the man page: {e}"), None::<String>))?;
    Ok(Outcome::report(Generated {
        text: String::from_utf8_lossy(&buffer).into_owned(),
        files: Vec::new(),
    }))
}
