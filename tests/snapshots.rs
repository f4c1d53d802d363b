//! Golden tests: every `pipelines/*.toml` imports `samples/` with the built binary into a fresh
//! warehouse, and each table (`posts`, `rejects`, `duplicates`, `runs`), read back with the parquet
//! crate, must match its snapshot `tests/snapshots/<pipeline>__<table>.snap`: the table's files,
//! its Parquet schema and its rows, one `column: value` line each, run ids, timestamps, the
//! partition date and temp paths redacted.
//!
//! A new pipeline file is picked up by itself (its snapshots must then be accepted). To accept a
//! change, `INSTA_UPDATE=always cargo test --test snapshots` and review `git diff tests/snapshots`
//! (cargo-insta is not needed). In CI (`CI=true`) and under `make test` (`INSTA_UPDATE=no`) insta
//! writes nothing and fails on a mismatch or a missing snapshot; a snapshot of no pipeline, or a
//! pending `.snap.new`, fails `snapshot_folder_holds_only_the_snapshots_of_existing_pipelines`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

/// The warehouse tables of `shared/spec/warehouse.md`, each snapshotted per pipeline.
const TABLES: [&str; 4] = ["posts", "rejects", "duplicates", "runs"];

/// Columns that hold the time of the run, never the same twice.
const TIME_COLUMNS: [&str; 3] = ["ingested_at", "started_at", "finished_at"];

/// The rows of a table with these columns are sorted by them (file, then offset as a number).
const SORT_KEY: [&str; 2] = ["source_file", "source_offset"];

const SNAPSHOT_DIR: &str = "tests/snapshots";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `pipelines/*.toml`, sorted by name.
fn pipeline_files() -> Vec<PathBuf> {
    let dir = root().join("pipelines");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())).path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} holds no pipeline file (*.toml)", dir.display());
    out
}

fn stem(pipeline: &Path) -> &str {
    pipeline.file_stem().and_then(|s| s.to_str()).unwrap_or_else(|| panic!("{}: name is not UTF-8", pipeline.display()))
}

/// Every file below `dir`, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    let mut out = Vec::new();
    for e in entries {
        let p = e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())).path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Runs `quarry import --pipeline pipelines/<name> --output <warehouse> samples` from the repository.
fn import(pipeline: &Path, warehouse: &Path) {
    let rel = pipeline.strip_prefix(root()).unwrap_or(pipeline);
    let out = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .current_dir(root())
        .arg("import")
        .arg("--pipeline")
        .arg(rel)
        .arg("--output")
        .arg(warehouse)
        .arg("samples")
        .output()
        .expect("starting the quarry binary");
    assert!(
        out.status.success(),
        "quarry import --pipeline {} --output {} samples: {}\n{}",
        rel.display(),
        warehouse.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One table read back: its files (relative to the warehouse), their schema and record batches.
struct Table {
    files: Vec<String>,
    schema: String,
    batches: Vec<RecordBatch>,
}

fn read_table(warehouse: &Path, name: &str) -> Table {
    let dir = warehouse.join(name);
    let paths = files_below(&dir);
    let files = paths.iter().map(|p| p.strip_prefix(warehouse).unwrap().to_string_lossy().into_owned()).collect();
    let (mut schema, mut batches) = (None::<String>, Vec::new());
    for path in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "parquet")) {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        // The Parquet types are the contract: read them as such, not as the writer's Arrow types.
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
            .unwrap_or_else(|e| panic!("reading the footer of {}: {e}", path.display()));
        let mut text = Vec::new();
        parquet::schema::printer::print_schema(&mut text, builder.parquet_schema().root_schema());
        let text = String::from_utf8(text).expect("the schema printer writes UTF-8");
        match &schema {
            Some(first) => assert_eq!(first, &text, "{}: schema differs from the table's first file", path.display()),
            None => schema = Some(text),
        }
        let reader = builder.build().unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        for batch in reader {
            batches.push(batch.unwrap_or_else(|e| panic!("reading {}: {e}", path.display())));
        }
    }
    Table { files, schema: schema.unwrap_or_else(|| "(no parquet file)".into()), batches }
}

/// What changes from one run to the next, replaced by a placeholder wherever it appears.
struct Redactions {
    /// Run ids in the order they sort (by start time), each shown as `[run N]`.
    run_ids: Vec<String>,
    warehouse: String,
    repository: String,
}

impl Redactions {
    fn new(warehouse: &Path, runs: &Table) -> Self {
        let mut run_ids = Vec::new();
        for batch in &runs.batches {
            let col = batch.column_by_name("run_id").expect("runs has a run_id column");
            run_ids.extend((0..col.len()).map(|i| render(col.as_ref(), i).trim_matches('"').to_string()));
        }
        run_ids.sort();
        assert!(!run_ids.is_empty(), "the runs table holds no run after an import");
        Redactions {
            run_ids,
            warehouse: warehouse.to_string_lossy().into_owned(),
            repository: root().to_string_lossy().into_owned(),
        }
    }

    fn text(&self, s: &str) -> String {
        let mut s = s.replace(&self.warehouse, "[warehouse]").replace(&self.repository, "[repository]");
        for (n, id) in self.run_ids.iter().enumerate() {
            s = s.replace(id, &format!("[run {}]", n + 1));
        }
        redact_ingest_date(&s)
    }
}

/// `ingest_date=2024-11-09` (the hive partition: the run's date) becomes `ingest_date=[date]`.
fn redact_ingest_date(s: &str) -> String {
    const KEY: &str = "ingest_date=";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let date_len = tail.bytes().take_while(|b| b.is_ascii_digit() || *b == b'-').count();
        out.push_str(if date_len > 0 { "[date]" } else { "" });
        rest = &tail[date_len..];
    }
    out.push_str(rest);
    out
}

/// One value as text: strings and bytes quoted and escaped (lossless), lists `[..]`, structs and
/// maps `{key: value, ..}` in their stored order, floats as Rust prints them, the rest as arrow does.
fn render(array: &dyn Array, i: usize) -> String {
    if array.is_null(i) {
        return "null".into();
    }
    let list = |items: &dyn Array| {
        let parts: Vec<String> = (0..items.len()).map(|j| render(items, j)).collect();
        format!("[{}]", parts.join(", "))
    };
    match array.data_type() {
        DataType::Utf8 => format!("{:?}", array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => format!("{:?}", array.as_string::<i64>().value(i)),
        DataType::Utf8View => format!("{:?}", array.as_string_view().value(i)),
        DataType::Binary => quoted_bytes(array.as_binary::<i32>().value(i)),
        DataType::LargeBinary => quoted_bytes(array.as_binary::<i64>().value(i)),
        DataType::BinaryView => quoted_bytes(array.as_binary_view().value(i)),
        DataType::Float32 => format!("{:?}", array.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => format!("{:?}", array.as_primitive::<Float64Type>().value(i)),
        DataType::List(_) => list(array.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref()),
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(i).as_ref()),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let parts: Vec<String> = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| format!("{}: {}", f.name(), render(c.as_ref(), i)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let parts: Vec<String> =
                (0..entries.len()).map(|j| format!("{}: {}", render(keys, j), render(values, j))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        _ => ArrayFormatter::try_new(array, &FormatOptions::default())
            .and_then(|f| f.value(i).try_to_string())
            .unwrap_or_else(|e| panic!("formatting a {} value: {e}", array.data_type())),
    }
}

/// `b"..."`: the valid UTF-8 runs escaped as Rust does, every other byte as `\xNN`.
fn quoted_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("b\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            // A lone `'` needs no escape inside double quotes.
            if c == '\'' {
                out.push(c);
            } else {
                out.extend(c.escape_debug());
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}").unwrap();
        }
    }
    out.push('"');
    out
}

/// A rendered row: (column, value) in schema order, and its sort key.
struct Row {
    key: (String, i64),
    cells: Vec<(String, String)>,
}

fn rows(table: &Table, redact: &Redactions) -> Vec<Row> {
    let mut out = Vec::new();
    for batch in &table.batches {
        let schema = batch.schema();
        for i in 0..batch.num_rows() {
            let mut cells = Vec::with_capacity(batch.num_columns());
            for (field, col) in schema.fields().iter().zip(batch.columns()) {
                let name = field.name();
                let value = if TIME_COLUMNS.contains(&name.as_str()) && !col.is_null(i) {
                    "[timestamp]".to_string()
                } else {
                    redact.text(&render(col.as_ref(), i))
                };
                cells.push((name.clone(), value));
            }
            out.push(Row { key: sort_key(&cells), cells });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.cells.cmp(&b.cells)));
    out
}

/// (source_file, source_offset) where the table has them; rows without sort by their text alone.
fn sort_key(cells: &[(String, String)]) -> (String, i64) {
    let get = |name: &str| cells.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    match (get(SORT_KEY[0]), get(SORT_KEY[1])) {
        (Some(file), Some(offset)) => {
            (file.to_string(), offset.parse().unwrap_or_else(|_| panic!("source_offset {offset:?} is not an integer")))
        }
        _ => (String::new(), 0),
    }
}

/// The snapshot text of one table: files, Parquet schema, then each row as `column: value` lines.
fn table_text(name: &str, table: &Table, redact: &Redactions) -> String {
    let rows = rows(table, redact);
    let has_key = table.batches.first().is_some_and(|b| SORT_KEY.iter().all(|c| b.column_by_name(c).is_some()));
    let order = if has_key { "sorted by (source_file, source_offset)" } else { "sorted by their text" };
    let mut out = format!("table {name}: {} rows, {order}\n\nfiles:\n", rows.len());
    for f in &table.files {
        writeln!(out, "  {}", redact.text(f)).unwrap();
    }
    writeln!(out, "\nschema:\n{}", table.schema.trim_end()).unwrap();
    for (n, row) in rows.iter().enumerate() {
        writeln!(out, "\nrow {}", n + 1).unwrap();
        for (column, value) in &row.cells {
            writeln!(out, "  {column}: {value}").unwrap();
        }
    }
    out
}

fn snapshot_name(pipeline_stem: &str, table: &str) -> String {
    format!("{pipeline_stem}__{table}")
}

#[test]
fn each_pipeline_over_the_samples_matches_its_snapshots() {
    for pipeline in pipeline_files() {
        let warehouse = tempfile::tempdir().expect("a temp folder");
        import(&pipeline, warehouse.path());
        let tables: BTreeMap<&str, Table> = TABLES.iter().map(|t| (*t, read_table(warehouse.path(), t))).collect();
        let redact = Redactions::new(warehouse.path(), &tables["runs"]);
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!("quarry import --pipeline pipelines/{}.toml samples", stem(&pipeline)));
        settings.bind(|| {
            for name in TABLES {
                insta::assert_snapshot!(snapshot_name(stem(&pipeline), name), table_text(name, &tables[name], &redact));
            }
        });
    }
}

/// insta without cargo-insta cannot reject unreferenced snapshots: this does. Every file in
/// `tests/snapshots/` must be the `.snap` of an existing pipeline and table.
#[test]
fn snapshot_folder_holds_only_the_snapshots_of_existing_pipelines() {
    let expected: Vec<String> =
        pipeline_files().iter().flat_map(|p| TABLES.map(|t| format!("{}.snap", snapshot_name(stem(p), t)))).collect();
    let dir = root().join(SNAPSHOT_DIR);
    let stray: Vec<String> = files_below(&dir)
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .filter(|name| !expected.contains(name))
        .collect();
    assert!(
        stray.is_empty(),
        "{} holds files that belong to no pipeline and table (expected only {expected:?}): {stray:?}; \
         delete a stale snapshot, or accept a pending .snap.new with INSTA_UPDATE=always",
        dir.display()
    );
}

#[test]
fn ingest_date_is_redacted_in_paths() {
    assert_eq!(redact_ingest_date("posts/ingest_date=2024-11-09/x.parquet"), "posts/ingest_date=[date]/x.parquet");
    assert_eq!(redact_ingest_date("a ingest_date= b"), "a ingest_date= b");
}

#[test]
fn bytes_render_losslessly() {
    assert_eq!(quoted_bytes(b"a\"b'\n\xff\xc2\xb7"), r#"b"a\"b'\n\xff·""#);
}
