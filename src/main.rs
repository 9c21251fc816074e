fn main() -> std::process::ExitCode {
    hk8s::main_entry()
}
