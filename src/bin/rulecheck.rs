fn main() -> std::process::ExitCode {
    auditwatch::cli::main_rulecheck()
}
