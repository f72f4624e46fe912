use clap::Parser;

fn main() -> std::process::ExitCode {
    wott_mqtt::run(wott_mqtt::cli::Cli::parse()).into()
}
