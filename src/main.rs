//! The `tapedeck` binary: parse the command line, run it, map the outcome to an exit code
//! (0 ok, 1 a check failed, 2 error). All logic lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    tapedeck::cli::main()
}
