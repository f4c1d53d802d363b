//! The `quarry` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use quarry::import::{import, ImportOptions};
use quarry::load::commit::{CommitError, LockedError};
use quarry::pipeline::{ConfigError, Pipeline};
use quarry::progress::Progress;

/// Many small allocations cross threads (pages, cells): mimalloc keeps them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc: sets an option unless the environment (`MIMALLOC_<NAME>`) already did.
    fn mi_option_set_default(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in `mi_option_e` of mimalloc.h (the same index in v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Keeps freed memory for reuse instead of handing it back to the kernel. A run frees and
/// allocates the same batch-sized buffers over and over; returned memory comes back as fresh
/// (transparent huge) pages that the kernel zeroes again, which cost up to a third of the run's
/// time in system CPU. Peak memory is unchanged: it is the same memory, kept.
fn keep_freed_memory() {
    // SAFETY: plain option setters, called before any other thread exists.
    unsafe {
        mi_option_set_default(MI_OPTION_PURGE_DELAY, -1);
    }
    // zstd (the Parquet codec) allocates its contexts with the C allocator, a few per column chunk.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Exit code: the run finished (rejected pages are data, not failure).
const EXIT_OK: u8 = 0;
/// Exit code: an input could not be read, or the output could not be written.
const EXIT_ERROR: u8 = 1;
/// Exit code: bad command line or pipeline file.
const EXIT_CONFIG: u8 = 2;
/// Exit code: another run holds the warehouse lock.
const EXIT_LOCKED: u8 = 3;
/// Exit code: the run finished, but some input file could not be read to its end (see rejects).
const EXIT_BAD_INPUT: u8 = 4;
/// Exit code: the run finished, but more pages were rejected than `--max-reject-ratio` allows.
const EXIT_REJECT_RATIO: u8 = 5;

/// A command-line value that makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

#[derive(Parser)]
#[command(name = "quarry", version, about = "Import alphanode page dumps into a Parquet warehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a run shows itself and shares the machine (import and replay).
#[derive(clap::Args)]
struct RunArgs {
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// More log lines: -v adds what became of each file's pages (RUST_LOG=debug does too).
    #[arg(long, short, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Wait for another run's lock instead of exiting.
    #[arg(long)]
    wait: bool,
    /// Threads the run works on (default: one per core; 1 runs everything on one thread).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Import dumps (files, folders or - for stdin) into a warehouse.
    Import {
        /// Pipeline file describing the dump layout.
        #[arg(long)]
        pipeline: PathBuf,
        /// Warehouse folder (created if missing).
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Write the run's summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report_json: Option<PathBuf>,
        /// Exit with code 5 when the share of rejected pages exceeds R (0 to 1).
        #[arg(long, value_name = "R")]
        max_reject_ratio: Option<f64>,
        /// Dump files (.txt, .txt.gz, .txt.zst), folders (recursive), or - for stdin.
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// Work on the stored rejects.
    Rejects {
        #[command(subcommand)]
        command: RejectsCommand,
    },
    /// Write deterministic synthetic dumps for load tests.
    Gen {
        /// Pages in all.
        #[arg(long)]
        pages: u64,
        /// Seed: the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Share of variations, 0 (clean pages) to 1.
        #[arg(long, default_value_t = 0.0)]
        noise: f64,
        /// Files per batch.
        #[arg(long, default_value_t = 1)]
        files: u32,
        /// Batches (folders batch-1, batch-2, … when more than one).
        #[arg(long, default_value_t = 1)]
        batches: u32,
    },
    /// Run polars SQL over the tables posts, rejects, duplicates and runs (finished runs only).
    Query {
        /// Warehouse folder.
        warehouse: PathBuf,
        /// One SQL statement, e.g. "SELECT topic, count(*) AS n FROM posts GROUP BY topic".
        sql: String,
        /// Print CSV (header row; null is an empty field).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print JSON Lines (one object per row).
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained HTML page of charts about the warehouse.
    Report {
        /// Warehouse folder.
        warehouse: PathBuf,
        /// The HTML file to write.
        #[arg(long)]
        html: PathBuf,
    },
    /// Validate a pipeline file.
    Check {
        /// Pipeline file.
        #[arg(long)]
        pipeline: PathBuf,
    },
}

#[derive(Subcommand)]
enum RejectsCommand {
    /// Run the pipeline over the raw text of the stored rejects, as a new run: pages that now
    /// parse move into posts (or duplicates), the rest stay.
    Replay {
        /// Warehouse folder.
        warehouse: PathBuf,
        /// Pipeline file (the fixed one).
        #[arg(long)]
        pipeline: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| {
        c.is::<ConfigError>()
            || c.is::<UsageError>()
            || c.downcast_ref::<quarry::query::QueryError>().is_some_and(quarry::query::QueryError::is_usage)
    }) {
        EXIT_CONFIG
    } else if e
        .chain()
        .any(|c| c.is::<LockedError>() || matches!(c.downcast_ref::<CommitError>(), Some(CommitError::Locked(_))))
    {
        EXIT_LOCKED
    } else {
        EXIT_ERROR
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Gen { pages, seed, out, noise, files, batches } => {
            let clock = std::time::Instant::now();
            let s = quarry::gen::generate(&quarry::gen::GenOptions {
                pages,
                seed,
                out: out.clone(),
                noise,
                files,
                batches,
            })
            .with_context(|| format!("{}: cannot write the corpus", out.display()))?;
            let secs = clock.elapsed().as_secs_f64();
            eprintln!(
                "quarry gen: {} pages, {} files, {:.1} MB in {:.2} s ({:.0} MB/s) into {}",
                s.pages,
                s.files,
                s.bytes as f64 / 1e6,
                secs,
                s.bytes as f64 / 1e6 / secs.max(1e-9),
                out.display()
            );
            Ok(EXIT_OK)
        }
        Command::Query { warehouse, sql, csv, json } => {
            let format = if csv {
                quarry::query::Format::Csv
            } else if json {
                quarry::query::Format::Json
            } else {
                quarry::query::Format::Table
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            quarry::query::query(&warehouse, &sql, format, &mut out)?;
            Ok(EXIT_OK)
        }
        Command::Report { warehouse, html } => {
            let charts = quarry::report::write_html(&warehouse, &html)?;
            eprintln!("quarry report: {} charts into {}", charts, html.display());
            Ok(EXIT_OK)
        }
        Command::Check { pipeline } => {
            let p = Pipeline::load(&pipeline)?;
            println!("{}: ok (pipeline {:?}, {} meta entries)", pipeline.display(), p.name, p.entries.len());
            Ok(EXIT_OK)
        }
        Command::Rejects { command: RejectsCommand::Replay { warehouse, pipeline, run } } => {
            let RunArgs { quiet, verbose, wait, threads } = run;
            let p = Pipeline::load(&pipeline)?;
            let mut opts = quarry::replay::ReplayOptions::new(pipeline, warehouse);
            opts.wait = wait;
            opts.threads = threads;
            let summary = quarry::replay::replay(&p, &opts, &Progress::for_cli(quiet, verbose))?;
            if !quiet {
                eprint!("{}", summary.render());
            }
            Ok(EXIT_OK)
        }
        Command::Import { pipeline, output, run, report_json, max_reject_ratio, inputs } => {
            let RunArgs { quiet, verbose, wait, threads } = run;
            if let Some(r) = max_reject_ratio.filter(|r| !(0.0..=1.0).contains(r)) {
                return Err(UsageError(format!("--max-reject-ratio {r}: expected a share between 0 and 1")).into());
            }
            let p = Pipeline::load(&pipeline)?;
            let mut opts = ImportOptions::new(pipeline, output, inputs);
            opts.wait = wait;
            opts.threads = threads;
            let summary = import(&p, &opts, &Progress::for_cli(quiet, verbose))?;
            if !quiet {
                eprint!("{}", summary.render());
            }
            if let Some(path) = report_json {
                let json = serde_json::to_string_pretty(&summary.report(&opts.output))?;
                std::fs::write(&path, json + "\n")
                    .with_context(|| format!("{}: cannot write the run report", path.display()))?;
            }
            let ratio = summary.reject_ratio();
            if let Some(max) = max_reject_ratio.filter(|max| ratio > *max) {
                eprintln!("quarry: {:.1}% of pages were rejected, more than --max-reject-ratio {max}", ratio * 100.0);
                return Ok(EXIT_REJECT_RATIO);
            }
            Ok(if summary.bad_files.is_empty() { EXIT_OK } else { EXIT_BAD_INPUT })
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(EXIT_OK);
            }
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let mut msg = chain[0].clone();
            for c in &chain[1..] {
                if !msg.contains(c.as_str()) {
                    msg += &format!(": {c}");
                }
            }
            eprintln!("quarry: error: {msg}");
            ExitCode::from(exit_code(&e))
        }
    }
}
