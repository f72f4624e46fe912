//! The `wott-mqtt` binary: the library does the work (see ARCHITECTURE.md).

fn main() -> std::process::ExitCode {
    wott_mqtt::main().into()
}
