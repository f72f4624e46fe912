fn main() -> std::process::ExitCode {
    wott_mqtt::main().into()
}
