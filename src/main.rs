//! The `quarry` command line: parses arguments and calls the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quarry::load::location::Location;
use quarry::pipeline::Pipeline;
use quarry::run::progress::Progress;
use quarry::run::{RunOptions, RunSummary};
use quarry::{Error, Exit};

/// Many small allocations cross threads (pages, cells): mimalloc keeps them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc: sets an option unless the environment (`MIMALLOC_<NAME>`) already did.
    fn mi_option_set_default(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in `mi_option_e` of mimalloc.h (the same index in v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Keeps freed memory for reuse for 2 s before handing it back to the kernel. A run frees and
/// allocates the same batch-sized buffers over and over, milliseconds apart; handed back at once
/// (mimalloc's 10 ms), they come back as fresh (transparent huge) pages that the kernel zeroes
/// again, which cost up to a third of the run's time in system CPU. Never handed back (-1), what a
/// long run leaves fragmented stays resident: a 16 GB run peaked at ~271 MB, against ~248 MB with
/// 2 s (a 1 GB run: ~235 MB either way; time on the 4x corpus within 2%).
fn keep_freed_memory() {
    // SAFETY: plain option setters, called before any other thread exists.
    unsafe {
        mi_option_set_default(MI_OPTION_PURGE_DELAY, 2000);
    }
    // zstd (the Parquet codec) allocates its contexts with the C allocator, a few per column chunk.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// `quarry --version`: the crate's version and the warehouse format it writes.
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!("{} (warehouse format {})", env!("CARGO_PKG_VERSION"), quarry::contract::WAREHOUSE_FORMAT)
    })
}

#[derive(Parser)]
#[command(name = "quarry", version = version(), about = "Import alphanode page dumps into a Parquet warehouse")]
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

/// The warehouse `import` writes into when `--output` is not given.
const DEFAULT_WAREHOUSE: &str = "warehouse";

#[derive(Subcommand)]
enum Command {
    /// Import dumps (files, folders or - for stdin) into a warehouse.
    Import {
        /// Pipeline file describing the dump layout (default: the built-in alphanode pipeline).
        #[arg(long)]
        pipeline: Option<PathBuf>,
        /// Warehouse: a folder, file://…, or s3://bucket/prefix (created if missing).
        #[arg(long, default_value = DEFAULT_WAREHOUSE)]
        output: String,
        #[command(flatten)]
        run: RunArgs,
        /// Write the run's summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report_json: Option<PathBuf>,
        /// Import only this worker's share of the inputs, I of N (I from 0): each file goes to one
        /// shard, by its path below the input folder (e.g. --shard $JOB_COMPLETION_INDEX/4).
        #[arg(long, value_name = "I/N")]
        shard: Option<quarry::extract::read::Shard>,
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
        /// Output folder, or - for one stream on standard output (then --files and --batches are 1).
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
        /// Pages as small as the format allows (title, a sentence, five meta lines, a hash unique
        /// over the corpus and its seed): prefills big warehouses fast.
        #[arg(long)]
        minimal: bool,
    },
    /// Run polars SQL over the tables posts, rejects, duplicates and runs (finished runs only).
    Query {
        /// Warehouse: a folder, file://…, or s3://bucket/prefix.
        warehouse: String,
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
        /// Warehouse: a folder, file://…, or s3://bucket/prefix.
        warehouse: String,
        /// The HTML file to write.
        #[arg(long)]
        html: PathBuf,
    },
    /// Create a warehouse's tables (four empty Delta tables) before any run writes into it.
    Init {
        /// Warehouse: a folder, file://…, or s3://bucket/prefix.
        warehouse: String,
    },
    /// Validate a pipeline file (default: the built-in alphanode pipeline).
    Check {
        /// Pipeline file.
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RejectsCommand {
    /// Run the pipeline over the raw text of the stored rejects, as a new run: pages that now
    /// parse move into posts (or duplicates), the rest stay.
    Replay {
        /// Warehouse: a folder, file://…, or s3://bucket/prefix.
        warehouse: String,
        /// Pipeline file, the fixed one (default: the built-in alphanode pipeline).
        #[arg(long)]
        pipeline: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
}

/// The pipeline of `--pipeline FILE`, or the built-in one.
fn pipeline(file: Option<&Path>) -> Result<Pipeline, Error> {
    Ok(match file {
        Some(f) => Pipeline::load(f)?,
        None => Pipeline::builtin(),
    })
}

fn run_options(warehouse: &str, run: &RunArgs) -> Result<RunOptions, Error> {
    Ok(RunOptions { wait: run.wait, threads: run.threads, ..RunOptions::new(location(warehouse)?) })
}

/// A warehouse argument as a location. Parsed here rather than by clap, whose error would repeat
/// the argument as given, credentials and all.
fn location(arg: &str) -> Result<Location, Error> {
    arg.parse::<Location>().map_err(|e| Error::Usage(e.to_string()))
}

fn gen(opts: quarry::gen::GenOptions) -> Result<Exit, Error> {
    let clock = std::time::Instant::now();
    let out = opts.out.display().to_string();
    let s = quarry::gen::generate(&opts).map_err(Error::io(format!("{out}: cannot write the corpus")))?;
    let secs = clock.elapsed().as_secs_f64();
    eprintln!(
        "quarry gen: {} pages, {} files, {:.1} MB in {:.2} s ({:.0} MB/s) into {out}",
        s.pages,
        s.files,
        s.bytes as f64 / 1e6,
        secs,
        s.bytes as f64 / 1e6 / secs.max(1e-9),
    );
    Ok(Exit::Ok)
}

/// What `import` does after its run: the summary, the JSON report, the exit code of the outcome.
fn after_import(
    summary: &RunSummary,
    opts: &RunOptions,
    quiet: bool,
    report_json: Option<&Path>,
    max_reject_ratio: Option<f64>,
) -> Result<Exit, Error> {
    if !quiet {
        eprint!("{}", summary.render());
    }
    if let Some(path) = report_json {
        let json = serde_json::to_string_pretty(&summary.report(&opts.warehouse)).expect("a JSON value prints");
        std::fs::write(path, json + "\n")
            .map_err(Error::io(format!("{}: cannot write the run report", path.display())))?;
    }
    let exit = summary.exit_code(max_reject_ratio);
    if let (Exit::RejectRatio, Some(max)) = (exit, max_reject_ratio) {
        let ratio = summary.reject_ratio();
        eprintln!("quarry: {:.1}% of pages were rejected, more than --max-reject-ratio {max}", ratio * 100.0);
    }
    Ok(exit)
}

fn run(cli: Cli) -> Result<Exit, Error> {
    match cli.command {
        Command::Gen { pages, seed, out, noise, files, batches, minimal } => {
            if quarry::gen::is_stdout(&out) && (files > 1 || batches > 1) {
                return Err(Error::Usage(
                    "--out -: standard output holds one stream; --files and --batches must be 1".into(),
                ));
            }
            gen(quarry::gen::GenOptions { pages, seed, out, noise, files, batches, minimal })
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
            quarry::query::query(&location(&warehouse)?, &sql, format, &mut out)?;
            Ok(Exit::Ok)
        }
        Command::Report { warehouse, html } => {
            let charts = quarry::report::write_html(&location(&warehouse)?, &html)?;
            eprintln!("quarry report: {} charts into {}", charts, html.display());
            Ok(Exit::Ok)
        }
        Command::Init { warehouse } => {
            let warehouse = location(&warehouse)?;
            quarry::load::commit::init(&warehouse)?;
            eprintln!("quarry init: {warehouse}: tables {} (Delta Lake)", quarry::contract::Table::names());
            Ok(Exit::Ok)
        }
        Command::Check { pipeline: file } => {
            let p = pipeline(file.as_deref())?;
            println!("{}: ok (pipeline {:?}, {} meta entries)", p.source.display(), p.name, p.entries.len());
            Ok(Exit::Ok)
        }
        Command::Rejects { command: RejectsCommand::Replay { warehouse, pipeline: file, run } } => {
            let p = pipeline(file.as_deref())?;
            let opts = run_options(&warehouse, &run)?;
            let summary = quarry::run::replay(&p, &opts, &Progress::for_cli(run.quiet, run.verbose))?;
            if !run.quiet {
                eprint!("{}", summary.render());
            }
            Ok(Exit::Ok)
        }
        Command::Import { pipeline: file, output, run, report_json, max_reject_ratio, shard, inputs } => {
            if let Some(r) = max_reject_ratio.filter(|r| !(0.0..=1.0).contains(r)) {
                return Err(Error::Usage(format!("--max-reject-ratio {r}: expected a share between 0 and 1")));
            }
            let p = pipeline(file.as_deref())?;
            let opts = RunOptions { shard, ..run_options(&output, &run)? };
            let summary = quarry::run::import(&p, &opts, &inputs, &Progress::for_cli(run.quiet, run.verbose))?;
            after_import(&summary, &opts, run.quiet, report_json.as_deref(), max_reject_ratio)
        }
    }
}

/// An error and its causes on one line, each cause once (a message often repeats its source's).
fn message(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        let c_msg = c.to_string();
        if !msg.contains(c_msg.as_str()) {
            msg += &format!(": {c_msg}");
        }
        source = c.source();
    }
    msg
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => ExitCode::from(u8::from(exit)),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quarry: error: {}", message(&e));
            ExitCode::from(u8::from(e.exit_code()))
        }
    }
}
