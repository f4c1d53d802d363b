//! Per-stage throughput of the import: split, extract, transform (batch + polars), write (Parquet).
//! `cargo bench --bench stages` (or `make bench-stages`); every stage counts the dump bytes it stands for.

use std::path::Path;
use std::sync::OnceLock;

use arrow::record_batch::RecordBatch;
use divan::counter::BytesCount;
use divan::Bencher;
use quarry::contract::Table;
use quarry::extract::page::extract_raw;
use quarry::extract::record::Record;
use quarry::extract::split::{PageSplitter, RawPage, DEFAULT_MAX_PAGE_BYTES};
use quarry::gen::{generate, GenOptions};
use quarry::load::parquet::{properties, TableWriter};
use quarry::pipeline::Pipeline;
use quarry::transform::derive::posts_batch;

fn main() {
    divan::main();
}

/// Pages of the benchmark corpus (clean, as `quarry gen --noise 0` writes them).
const PAGES: u64 = 2_000;

struct Fixture {
    pipeline: Pipeline,
    dump: Vec<u8>,
    pages: Vec<RawPage>,
    records: Vec<Record<'static>>,
    batch: RecordBatch,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pipeline = Pipeline::load(Path::new("pipelines/alphanode.toml")).expect("pipeline");
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = GenOptions {
            pages: PAGES,
            seed: 7,
            out: dir.path().to_path_buf(),
            noise: 0.0,
            files: 1,
            batches: 1,
            minimal: false,
        };
        generate(&opts).expect("corpus");
        let dump = std::fs::read(dir.path().join("dump-000.txt")).expect("dump");
        let pages: Vec<RawPage> = PageSplitter::new(&dump[..], &pipeline.trailer).map(|p| p.expect("page")).collect();
        let records: Vec<Record<'static>> = pages
            .iter()
            .map(|pg| extract_raw(&pipeline, pg, DEFAULT_MAX_PAGE_BYTES).expect("clean page").into_owned())
            .collect();
        let batch = posts_batch(&pipeline, records.clone()).expect("posts batch");
        Fixture { pipeline, dump, pages, records, batch }
    })
}

fn bytes() -> BytesCount {
    BytesCount::new(fixture().dump.len())
}

#[divan::bench(sample_count = 20)]
fn split(b: Bencher) {
    let f = fixture();
    b.counter(bytes()).bench_local(|| PageSplitter::new(&f.dump[..], &f.pipeline.trailer).count());
}

#[divan::bench(sample_count = 20)]
fn extract(b: Bencher) {
    let f = fixture();
    b.counter(bytes()).bench_local(|| {
        f.pages.iter().map(|pg| extract_raw(&f.pipeline, pg, DEFAULT_MAX_PAGE_BYTES)).filter(Result::is_ok).count()
    });
}

#[divan::bench(sample_count = 20)]
fn transform(b: Bencher) {
    let f = fixture();
    b.counter(bytes())
        .with_inputs(|| f.records.clone())
        .bench_local_values(|r| posts_batch(&f.pipeline, r).expect("posts batch"));
}

#[divan::bench(sample_count = 10)]
fn write(b: Bencher) {
    let f = fixture();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("posts.parquet");
    b.counter(bytes()).bench_local(|| {
        let props = properties(&f.pipeline.output, Table::Posts).expect("properties");
        let mut w = TableWriter::create(&path, Table::Posts.schema(), props).expect("writer");
        w.write(&f.batch).expect("write");
        w.close().expect("close").bytes
    });
}
