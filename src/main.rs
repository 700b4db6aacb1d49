use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hisp_gateway::memory::keep_freed_memory();
    hisp_gateway::cli::main(hisp_gateway::cli::Cli::parse())
}
