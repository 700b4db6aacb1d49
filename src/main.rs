use std::process::ExitCode;

use clap::Parser;

/// Every request allocates and frees many small buffers on several threads; mimalloc does
/// that with less CPU than the system allocator and returns freed memory sooner (measured in
/// BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hisp_gateway::cli::main(hisp_gateway::cli::Cli::parse())
}
