//! The warehouse's tables as Delta Lake tables (`deltalake`, without datafusion): each table folder
//! holds a `_delta_log/`; quarry writes its Parquet files itself (encodings, bloom filters) and
//! commits them as `Add` actions with statistics read from the files' footers.
//!
//! Protocol reader 1 / writer 2 and no table features, so Spark and Trino read the tables; `posts`
//! is partitioned by `ingest_date` (a column of the Delta schema, a folder in the files' paths, not
//! a column inside the files, as in the plain-Parquet layout). Commits write no checkpoint unless
//! the operator asks for them (`QUARRY_CHECKPOINT_EVERY`, `checkpoint`): one is a `.parquet` file
//! in `_delta_log/`, which a `posts/**/*.parquet` glob would read as data.
//! deltalake's API is async: each call here runs on a current-thread runtime of its own and
//! returns when its commit has landed.

use std::collections::HashMap;
use std::future::IntoFuture as _;

use arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::{Action, Add, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::DeltaTableError;
use parquet::basic::{LogicalType, Type as Physical};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use serde_json::{json, Map, Value};

use crate::contract::Table;

/// The column `posts` is partitioned by.
pub const PARTITION: &str = "ingest_date";

/// A Delta operation on a table failed.
#[derive(Debug, thiserror::Error)]
#[error("{table}: {what}")]
pub struct DeltaError {
    /// The table's location (a path or URL without credentials).
    pub table: String,
    /// What failed.
    pub what: String,
}

fn err(table: &str, what: impl std::fmt::Display) -> DeltaError {
    DeltaError { table: table.to_string(), what: what.to_string() }
}

/// The table's Delta schema: its Arrow schema, and for `posts` the partition column.
pub fn schema(table: Table) -> Result<StructType, DeltaTableError> {
    let arrow = table.schema();
    let mut fields: Vec<Field> = arrow.fields().iter().map(|f| f.as_ref().clone()).collect();
    if table == Table::Posts {
        fields.push(Field::new(PARTITION, DataType::Date32, false));
    }
    let with_partition = Schema::new(fields);
    Ok((&with_partition).try_into_kernel()?)
}

/// The partition columns of a table.
pub fn partition_columns(table: Table) -> Vec<String> {
    if table == Table::Posts {
        vec![PARTITION.to_string()]
    } else {
        Vec::new()
    }
}

fn runtime(table: &str) -> Result<&'static tokio::runtime::Runtime, DeltaError> {
    super::location::runtime().map_err(|e| err(table, e))
}

/// A table location as shown in messages: a local table's folder, a remote one's URL.
pub fn shown(url: &url::Url) -> String {
    match url.to_file_path() {
        Ok(p) if url.scheme() == "file" => p.display().to_string(),
        _ => url.to_string(),
    }
}

/// Creates the Delta table of `table` at `url` (a local table's folder is made when missing). A
/// table that exists already is left as it is, also when another process creates it at the same
/// moment: the first log entry is written only if absent, and the loser of that race finds the
/// winner's table.
pub fn create(url: &url::Url, table: Table) -> Result<(), DeltaError> {
    let shown = shown(url);
    if let Ok(dir) = url.to_file_path() {
        std::fs::create_dir_all(&dir).map_err(|e| err(&shown, format!("cannot create the folder: {e}")))?;
    }
    let rt = runtime(&shown)?;
    let fields = schema(table).map_err(|e| err(&shown, e))?.fields().cloned().collect::<Vec<_>>();
    let made = rt.block_on(
        CreateBuilder::new()
            .with_location(url.as_str())
            .with_table_name(table.name())
            .with_columns(fields)
            .with_partition_columns(partition_columns(table))
            .with_save_mode(SaveMode::Ignore)
            // No retry: a creator that loses the race for version 0 would write a second
            // protocol and metadata as version 1 (seen in this module's race test).
            .with_commit_properties(deltalake::kernel::transaction::CommitProperties::default().with_max_retries(0))
            .into_future(),
    );
    match made {
        Ok(_) => Ok(()),
        // Raced by another creator: fine if the table is there now.
        Err(e) if rt.block_on(deltalake::open_table(url.clone())).is_ok() => {
            tracing::debug!("{shown}: created by another process meanwhile ({e})");
            Ok(())
        }
        Err(e) => Err(err(&shown, format!("cannot create the Delta table: {e}"))),
    }
}

/// An `Add` action for a data file of `table` at `rel_path` (relative to the table folder, `/`
/// separated), `size` bytes, whose footer is `meta`; `partition` is its `ingest_date` for `posts`.
pub fn add_action(rel_path: &str, size: u64, modified_ms: i64, meta: &ParquetMetaData, partition: Option<&str>) -> Add {
    let partition_values: HashMap<String, Option<String>> =
        partition.map(|d| (PARTITION.to_string(), Some(d.to_string()))).into_iter().collect();
    Add {
        path: rel_path.to_string(),
        partition_values,
        size: size as i64,
        modification_time: modified_ms,
        data_change: true,
        stats: Some(stats_json(meta).to_string()),
        ..Default::default()
    }
}

/// Per-file statistics as Delta's `stats` field wants them: `numRecords`, and for each top-level
/// column of a primitive type its `nullCount`, and `minValues` / `maxValues` where the footer's
/// are exact (parquet truncates long strings: those bounds are left out, not guessed).
pub fn stats_json(meta: &ParquetMetaData) -> Value {
    let schema = meta.file_metadata().schema_descr();
    let (mut mins, mut maxs, mut nulls) = (Map::new(), Map::new(), Map::new());
    for (i, col) in schema.columns().iter().enumerate() {
        let path = col.path().parts();
        if path.len() != 1 || col.max_rep_level() > 0 {
            continue; // a field of a list, map or struct
        }
        let name = path[0].clone();
        let stats: Vec<&Statistics> = meta.row_groups().iter().filter_map(|rg| rg.column(i).statistics()).collect();
        if stats.len() != meta.num_row_groups() {
            continue; // a row group without statistics: nothing certain to say
        }
        if let Some(n) = stats.iter().map(|s| s.null_count_opt()).sum::<Option<u64>>() {
            nulls.insert(name.clone(), json!(n));
        }
        let convert = |bytes: &[u8]| value_of(col.physical_type(), col.logical_type_ref(), bytes);
        let exact_min = stats.iter().all(|s| s.min_is_exact());
        let exact_max = stats.iter().all(|s| s.max_is_exact());
        let min = stats.iter().filter_map(|s| s.min_bytes_opt().and_then(convert)).reduce(|a, b| pick(a, b, true));
        let max = stats.iter().filter_map(|s| s.max_bytes_opt().and_then(convert)).reduce(|a, b| pick(a, b, false));
        if let (true, Some(v)) = (exact_min, min) {
            mins.insert(name.clone(), v.into_json());
        }
        if let (true, Some(v)) = (exact_max, max) {
            maxs.insert(name, v.into_json());
        }
    }
    json!({
        "numRecords": meta.file_metadata().num_rows(),
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    })
}

/// A statistics value, ordered as Delta compares it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum StatValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Date(i32),
    TimestampUs(i64),
}

impl StatValue {
    fn into_json(self) -> Value {
        match self {
            StatValue::Int(v) => json!(v),
            StatValue::Float(v) => json!(v),
            StatValue::Bool(v) => json!(v),
            StatValue::Text(v) => json!(v),
            StatValue::Date(d) => {
                let day = chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163);
                day.map_or(Value::Null, |d| json!(d.format("%Y-%m-%d").to_string()))
            }
            StatValue::TimestampUs(us) => chrono::DateTime::from_timestamp_micros(us)
                .map_or(Value::Null, |t| json!(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())),
        }
    }
}

fn pick(a: StatValue, b: StatValue, min: bool) -> StatValue {
    let b_first = if min { b < a } else { b > a };
    if b_first {
        b
    } else {
        a
    }
}

/// A footer's min or max bytes as a value of the column's type; `None` for types Delta's
/// statistics do not cover here (binary, floats that are NaN, unknown logical types).
fn value_of(physical: Physical, logical: Option<&LogicalType>, b: &[u8]) -> Option<StatValue> {
    match (physical, logical) {
        (Physical::BOOLEAN, _) => b.first().map(|&v| StatValue::Bool(v != 0)),
        (Physical::INT32, Some(LogicalType::Date)) => Some(StatValue::Date(i32::from_le_bytes(b.try_into().ok()?))),
        (Physical::INT32, None | Some(LogicalType::Integer(_))) => {
            Some(StatValue::Int(i32::from_le_bytes(b.try_into().ok()?).into()))
        }
        (Physical::INT64, Some(LogicalType::Timestamp(t))) if matches!(t.unit, parquet::basic::TimeUnit::MICROS) => {
            Some(StatValue::TimestampUs(i64::from_le_bytes(b.try_into().ok()?)))
        }
        (Physical::INT64, None | Some(LogicalType::Integer(_))) => {
            Some(StatValue::Int(i64::from_le_bytes(b.try_into().ok()?)))
        }
        (Physical::DOUBLE, None) => {
            let v = f64::from_le_bytes(b.try_into().ok()?);
            (!v.is_nan()).then_some(StatValue::Float(v))
        }
        (Physical::BYTE_ARRAY, Some(LogicalType::String)) => {
            std::str::from_utf8(b).ok().map(|s| StatValue::Text(s.into()))
        }
        _ => None,
    }
}

/// A data file of a table as it is on disk.
#[derive(Debug, Clone)]
pub struct DiskFile {
    /// Its path relative to the table folder, `/` separated (`ingest_date=…/<run>.parquet`).
    pub rel: String,
    /// Its path.
    pub path: std::path::PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// What `sync` changed in a table's log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    /// Files on disk the log lacked (or listed at another size), now added: runs rolled forward.
    pub added: Vec<String>,
    /// Files the log listed that are gone from disk, now removed: runs undone.
    pub removed: Vec<String>,
    /// The log's latest version after the sync.
    pub version: u64,
}

/// The `Add` for a file on disk: its footer read for the statistics.
pub fn add_for(file: &DiskFile) -> Result<Add, DeltaError> {
    let shown = file.path.display().to_string();
    let f = std::fs::File::open(&file.path).map_err(|e| err(&shown, format!("cannot open: {e}")))?;
    let modified = f
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(f)
        .map_err(|e| err(&shown, format!("cannot read its Parquet footer: {e}")))?;
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    let partition = file.rel.split('/').find_map(|c| c.strip_prefix(PARTITION)?.strip_prefix('='));
    Ok(add_action(&file.rel, file.size, modified, meta, partition))
}

/// The `Add` actions for files just moved into a table (their footers read for the statistics).
pub fn adds_for(files: &[DiskFile]) -> Result<Vec<Add>, DeltaError> {
    files.iter().map(add_for).collect()
}

/// A table's log, opened for a commit: its runtime, its snapshot, and its location for messages.
struct Opened {
    rt: &'static tokio::runtime::Runtime,
    table: deltalake::DeltaTable,
    shown: String,
}

/// Opens the table at `url` at its latest version. The process keeps each table it opened, so that
/// opening it again reads only the commits since (a run opens each table for the recovery's sync and
/// again for its commit; replaying a log that has no checkpoint costs one read per commit).
fn open(url: &url::Url) -> Result<Opened, DeltaError> {
    static OPENED: std::sync::OnceLock<std::sync::Mutex<HashMap<String, deltalake::DeltaTable>>> =
        std::sync::OnceLock::new();
    let shown = shown(url);
    let rt = runtime(&shown)?;
    let fail = |e: DeltaTableError| err(&shown, format!("cannot open the Delta table: {e}"));
    let kept = OPENED.get_or_init(Default::default).lock().expect("open tables").get(url.as_str()).cloned();
    let table = rt.block_on(async {
        match kept {
            Some(mut table) => {
                table.update_incremental(None).await?;
                Ok(table)
            }
            None => {
                let inner = deltalake::DeltaTableBuilder::from_url(url.clone())?.build_storage()?;
                let mut table = deltalake::DeltaTable::new(std::sync::Arc::new(frugal::Frugal { inner }));
                table.load().await?;
                Ok::<_, DeltaTableError>(table)
            }
        }
    });
    let table = table.map_err(fail)?;
    OPENED.get_or_init(Default::default).lock().expect("open tables").insert(url.as_str().to_string(), table.clone());
    Ok(Opened { rt, table, shown })
}

/// A table's log store as deltalake makes it, with one change: the kernel engine it hands out
/// reads log files 8 at a time in batches of 64 actions, where deltalake's default engine decodes
/// up to 1,000 files at once with room for 1,000 actions each — about 1.5 MB per commit file, all at
/// once: 1.3 GB to open a table of 860 commits (measured). Every other call goes to deltalake's.
mod frugal {
    use std::num::NonZero;
    use std::sync::Arc;

    use bytes::Bytes;
    use deltalake::kernel::transaction::TransactionError;
    use deltalake::logstore::{CommitOrBytes, LogStore, LogStoreConfig, LogStoreRef};
    use deltalake::{DeltaResult, ObjectStore, Path};
    use url::Url;
    use uuid::Uuid;

    const FILES_AT_ONCE: NonZero<usize> = NonZero::new(8).unwrap();
    const ACTIONS_PER_BATCH: NonZero<usize> = NonZero::new(64).unwrap();

    pub struct Frugal {
        pub inner: LogStoreRef,
    }

    #[async_trait::async_trait]
    impl LogStore for Frugal {
        fn name(&self) -> String {
            self.inner.name()
        }
        async fn refresh(&self) -> DeltaResult<()> {
            self.inner.refresh().await
        }
        async fn read_commit_entry(&self, version: deltalake::kernel::Version) -> DeltaResult<Option<Bytes>> {
            self.inner.read_commit_entry(version).await
        }
        async fn write_commit_entry(
            &self,
            version: deltalake::kernel::Version,
            commit_or_bytes: CommitOrBytes,
            operation_id: Uuid,
        ) -> Result<(), TransactionError> {
            self.inner.write_commit_entry(version, commit_or_bytes, operation_id).await
        }
        async fn abort_commit_entry(
            &self,
            version: deltalake::kernel::Version,
            commit_or_bytes: CommitOrBytes,
            operation_id: Uuid,
        ) -> Result<(), TransactionError> {
            self.inner.abort_commit_entry(version, commit_or_bytes, operation_id).await
        }
        async fn get_latest_version(
            &self,
            start_version: deltalake::kernel::Version,
        ) -> DeltaResult<deltalake::kernel::Version> {
            self.inner.get_latest_version(start_version).await
        }
        fn object_store(&self, operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
            self.inner.object_store(operation_id)
        }
        fn root_object_store(&self, operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
            self.inner.root_object_store(operation_id)
        }
        fn engine(&self, operation_id: Option<Uuid>) -> Arc<dyn buoyant_kernel::Engine> {
            let store = self.root_object_store(operation_id);
            let builder = buoyant_kernel_engine::DefaultEngineBuilder::new(store)
                .with_buffer_size(FILES_AT_ONCE)
                .with_batch_size(ACTIONS_PER_BATCH);
            // As deltalake does: the executor matches the runtime the call runs on.
            match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => Arc::new(
                    builder
                        .with_task_executor(Arc::new(
                            buoyant_kernel_engine::executor::tokio::TokioMultiThreadExecutor::new(
                                tokio::runtime::Handle::current(),
                            ),
                        ))
                        .build(),
                ),
                _ => Arc::new(builder.build()),
            }
        }
        fn to_uri(&self, location: &Path) -> String {
            self.inner.to_uri(location)
        }
        fn root_url(&self) -> &Url {
            self.inner.root_url()
        }
        fn log_path(&self) -> &Path {
            self.inner.log_path()
        }
        fn transaction_url(&self, operation_id: Option<Uuid>) -> DeltaResult<Url> {
            self.inner.transaction_url(operation_id)
        }
        async fn is_delta_table_location(&self) -> DeltaResult<bool> {
            self.inner.is_delta_table_location().await
        }
        fn config(&self) -> &LogStoreConfig {
            self.inner.config()
        }
    }
}

impl Opened {
    /// The files the log lists, with their sizes.
    fn listed(&self) -> Result<HashMap<String, i64>, DeltaError> {
        let snapshot = self.table.snapshot().map_err(|e| err(&self.shown, e))?;
        Ok(snapshot.log_data().iter().map(|f| (f.path().into_owned(), f.size())).collect())
    }

    /// Commits `actions` as the next version (no checkpoint: see the module doc); that version.
    /// The log clean-up after a commit is off too: with no checkpoint it can remove nothing, and it
    /// lists the whole log to find that out (one more request per 1,000 commits, on every commit).
    fn commit(&self, actions: Vec<Action>, op: DeltaOperation, meta: (&str, Value)) -> Result<u64, DeltaError> {
        use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
        let snapshot = self.table.snapshot().map_err(|e| err(&self.shown, e))?;
        let props = CommitProperties::default().with_create_checkpoint(false).with_cleanup_expired_logs(Some(false));
        let done = self
            .rt
            .block_on(
                CommitBuilder::from(props)
                    .with_actions(actions)
                    .with_app_metadata(HashMap::from([(meta.0.to_string(), meta.1)]))
                    .build(Some(snapshot), self.table.log_store(), op)
                    .into_future(),
            )
            .map_err(|e| err(&self.shown, format!("cannot commit: {e}")))?;
        Ok(done.version())
    }
}

fn append_op(table: Table) -> DeltaOperation {
    DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(partition_columns(table)).filter(|p| !p.is_empty()),
        predicate: None,
    }
}

/// The files the log of the table at `url` lists, with their sizes, sorted by path.
pub fn files(url: &url::Url) -> Result<Vec<(String, i64)>, DeltaError> {
    let mut out: Vec<(String, i64)> = open(url)?.listed()?.into_iter().collect();
    out.sort();
    Ok(out)
}

/// Makes the log of the table at `url` list exactly `on_disk` (path relative to the table, size:
/// the files of finished runs, as the plain-Parquet layout has them after the start-of-run
/// clean-up): one commit adds what the log lacks (a run killed after its files moved in but before
/// its log entry: rolled forward; `add_of` makes each `Add`) and removes what is gone (a killed
/// run's files the clean-up removed: undone). Nothing is committed when the two agree, which is
/// every run after a clean one.
pub fn sync(
    url: &url::Url,
    table: Table,
    on_disk: &[(String, u64)],
    mut add_of: impl FnMut(&str, u64) -> Result<Add, DeltaError>,
) -> Result<Synced, DeltaError> {
    let t = open(url)?;
    let listed = t.listed()?;
    let version = t.table.version();
    let mut synced = Synced { version: version.ok_or_else(|| err(&t.shown, "no version"))?, ..Synced::default() };
    let mut actions = Vec::new();
    for (rel, size) in on_disk {
        if listed.get(rel) != Some(&(*size as i64)) {
            actions.push(Action::Add(add_of(rel, *size)?));
            synced.added.push(rel.clone());
        }
    }
    let present: std::collections::HashSet<&str> = on_disk.iter().map(|(rel, _)| rel.as_str()).collect();
    let now = chrono::Utc::now().timestamp_millis();
    let mut gone: Vec<(&String, &i64)> = listed.iter().filter(|(p, _)| !present.contains(p.as_str())).collect();
    gone.sort();
    for (path, size) in gone {
        actions.push(Action::Remove(deltalake::kernel::Remove {
            path: path.clone(),
            data_change: true,
            deletion_timestamp: Some(now),
            size: Some(*size),
            ..Default::default()
        }));
        synced.removed.push(path.clone());
    }
    if actions.is_empty() {
        return Ok(synced);
    }
    let op = if synced.removed.is_empty() { append_op(table) } else { DeltaOperation::Delete { predicate: None } };
    synced.version = t.commit(actions, op, ("quarry.operation", json!("sync with the files on disk")))?;
    Ok(synced)
}

/// Commits `adds` to the table at `url` as one append (a `Write` in the log), with `run_id` in the
/// commit's metadata; the version it landed as.
pub fn append(url: &url::Url, table: Table, run_id: &str, adds: Vec<Add>) -> Result<u64, DeltaError> {
    open(url)?.commit(adds.into_iter().map(Action::Add).collect(), append_op(table), ("quarry.run_id", json!(run_id)))
}

/// `append` when the table's latest version is known (`latest`: what the warehouse's synced mark
/// says, which only the commit-lock holder writes): the same commit, written as version
/// `latest + 1` without reading the log — deltalake's own commit bytes, through its log store's
/// put-if-absent. Opening a table replays its log from the first commit (no checkpoints), twice
/// per commit file: a stateless worker's run read 2 × (number of runs) objects per table under the
/// lock. `None` when that version is taken: a writer other than quarry committed since, or this
/// run lost the lock; the caller checks the lock and then appends the long way (`append`).
pub fn append_at(
    url: &url::Url,
    table: Table,
    run_id: &str,
    adds: &[Add],
    latest: u64,
) -> Result<Option<u64>, DeltaError> {
    use deltalake::kernel::transaction::{CommitData, TransactionError};
    use deltalake::logstore::CommitOrBytes;
    let shown = shown(url);
    let rt = runtime(&shown)?;
    let meta = HashMap::from([("quarry.run_id".to_string(), json!(run_id))]);
    let data = CommitData::new(adds.iter().cloned().map(Action::Add).collect(), append_op(table), meta, Vec::new());
    let bytes = data.get_bytes().map_err(|e| err(&shown, format!("cannot write a commit: {e}")))?;
    let store = deltalake::DeltaTableBuilder::from_url(url.clone())
        .and_then(|b| b.build_storage())
        .map_err(|e| err(&shown, format!("cannot open the Delta table: {e}")))?;
    let next = latest + 1;
    match rt.block_on(store.write_commit_entry(next, CommitOrBytes::LogBytes(bytes), uuid::Uuid::new_v4())) {
        Ok(()) => Ok(Some(next)),
        Err(TransactionError::VersionAlreadyExists(_)) => {
            tracing::info!("delta: {shown}: version {next} was written by another writer; appending after the newest");
            Ok(None)
        }
        Err(e) => Err(err(&shown, format!("cannot commit version {next}: {e}"))),
    }
}

/// Every how many versions of a log a commit writes a Delta checkpoint (`QUARRY_CHECKPOINT_EVERY`,
/// a whole number; unset or 0: never). Off by default: a checkpoint is a `.parquet` file inside
/// `_delta_log/`, which the plain-Parquet glob `<table>/**/*.parquet` would read as data.
pub fn checkpoint_every() -> Option<u64> {
    std::env::var("QUARRY_CHECKPOINT_EVERY").ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0)
}

/// Writes a checkpoint of the table at `url` at its latest version (deltalake's, through the same
/// frugal log store as every open here): readers then replay only the commits after it. Opening
/// the table replays the log from the last checkpoint before. The version checkpointed.
pub fn checkpoint(url: &url::Url) -> Result<u64, DeltaError> {
    let t = open(url)?;
    let version = t.table.version().ok_or_else(|| err(&t.shown, "no version"))?;
    t.rt.block_on(deltalake::checkpoints::create_checkpoint(&t.table, None))
        .map_err(|e| err(&t.shown, format!("cannot write a checkpoint at version {version}: {e}")))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parquet::TableWriter;
    use arrow::array::{ArrayRef, RecordBatch};
    use parquet::file::properties::WriterProperties;
    use std::path::Path;
    use std::sync::Arc;

    fn url(dir: &Path) -> url::Url {
        url::Url::from_directory_path(dir).unwrap()
    }

    /// `sync` against files on disk.
    fn sync_files(dir: &Path, on_disk: &[DiskFile]) -> Result<Synced, DeltaError> {
        let listed: Vec<(String, u64)> = on_disk.iter().map(|f| (f.rel.clone(), f.size)).collect();
        sync(&url(dir), Table::Duplicates, &listed, |rel, _| add_for(on_disk.iter().find(|f| f.rel == rel).unwrap()))
    }

    fn first_log_entry(dir: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(dir.join("_delta_log/00000000000000000000.json")).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn every_table_is_created_at_protocol_1_2_with_its_schema_and_twice_is_once() {
        let wh = tempfile::tempdir().unwrap();
        for t in Table::ALL {
            let dir = wh.path().join(t.name());
            create(&url(&dir), t).unwrap();
            create(&url(&dir), t).unwrap();
            let entry = first_log_entry(&dir);
            let protocol = entry.iter().find_map(|a| a.get("protocol")).unwrap();
            assert_eq!(
                (protocol["minReaderVersion"].as_i64(), protocol["minWriterVersion"].as_i64()),
                (Some(1), Some(2))
            );
            assert!(protocol.get("readerFeatures").is_none() && protocol.get("writerFeatures").is_none(), "{protocol}");
            let meta = entry.iter().find_map(|a| a.get("metaData")).unwrap();
            let want: Vec<String> = partition_columns(t);
            assert_eq!(meta["partitionColumns"], json!(want));
            let fields: Value = serde_json::from_str(meta["schemaString"].as_str().unwrap()).unwrap();
            let names: Vec<&str> =
                fields["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
            let mut expected: Vec<String> = t.schema().fields().iter().map(|f| f.name().clone()).collect();
            expected.extend(partition_columns(t));
            assert_eq!(names, expected);
            assert!(!dir.join("_delta_log/00000000000000000001.json").exists(), "the second create wrote nothing");
        }
    }

    #[test]
    fn creators_racing_for_one_table_all_succeed_and_make_one_table() {
        // Without `with_max_retries(0)` the loser of the race wrote a second Create as version 1.
        let wh = tempfile::tempdir().unwrap();
        for round in 0..10 {
            let dir = wh.path().join(format!("runs-{round}"));
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            create(&url(&dir), Table::Runs)
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap().unwrap();
                }
            });
            let logs: Vec<_> = std::fs::read_dir(dir.join("_delta_log"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".json"))
                .collect();
            assert_eq!(logs, ["00000000000000000000.json"], "round {round}");
        }
    }

    fn write_duplicates(dir: &Path, name: &str, hashes: &[&str]) -> DiskFile {
        let schema = Table::Duplicates.schema();
        let n = hashes.len();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "source_offset" => {
                    Arc::new(arrow::array::Int64Array::from((0..n as i64).collect::<Vec<_>>())) as ArrayRef
                }
                "hash" => Arc::new(arrow::array::StringArray::from(hashes.to_vec())) as ArrayRef,
                _ => Arc::new(arrow::array::StringArray::from(vec![name; n])) as ArrayRef,
            })
            .collect();
        let path = dir.join(format!("{name}.parquet"));
        let mut w = TableWriter::create(&path, schema.clone(), WriterProperties::builder().build()).unwrap();
        w.write(&RecordBatch::try_new(schema, cols).unwrap()).unwrap();
        w.close().unwrap();
        DiskFile { rel: format!("{name}.parquet"), size: std::fs::metadata(&path).unwrap().len(), path }
    }

    fn listed(dir: &Path) -> Vec<String> {
        files(&url(dir)).unwrap().into_iter().map(|(path, _)| path).collect()
    }

    #[test]
    fn sync_rolls_forward_files_the_log_lacks_and_removes_files_that_are_gone() {
        let wh = tempfile::tempdir().unwrap();
        let dir = wh.path().join("duplicates");
        create(&url(&dir), Table::Duplicates).unwrap();
        let a = write_duplicates(&dir, "r1", &["aa"]);
        let b = write_duplicates(&dir, "r2", &["bb", "cc"]);
        append(&url(&dir), Table::Duplicates, "r1", adds_for(std::slice::from_ref(&a)).unwrap()).unwrap();
        // r2's file moved in, its log entry never written (killed): rolled forward.
        let s = sync_files(&dir, &[a.clone(), b.clone()]).unwrap();
        assert_eq!((s.added.as_slice(), s.removed.len()), (["r2.parquet".to_string()].as_slice(), 0));
        assert_eq!(listed(&dir), ["r1.parquet", "r2.parquet"]);
        let version = s.version;
        assert_eq!(
            sync_files(&dir, &[a.clone(), b.clone()]).unwrap(),
            Synced { version, ..Synced::default() },
            "in step: no commit"
        );
        // r2's file removed by a clean-up (its run never finished): undone.
        std::fs::remove_file(&b.path).unwrap();
        let s = sync_files(&dir, std::slice::from_ref(&a)).unwrap();
        assert_eq!(s.removed, ["r2.parquet"]);
        assert_eq!(listed(&dir), ["r1.parquet"]);
        // a file rewritten in place (a replay's new version) is listed at its new size
        let a2 = write_duplicates(&dir, "r1", &["aa", "dd", "ee"]);
        let s = sync_files(&dir, std::slice::from_ref(&a2)).unwrap();
        assert_eq!(s.added, ["r1.parquet"]);
        assert_eq!(files(&url(&dir)).unwrap(), [("r1.parquet".to_string(), a2.size as i64)]);
    }

    #[test]
    fn an_appended_file_is_in_the_snapshot_with_its_statistics() {
        let wh = tempfile::tempdir().unwrap();
        let dir = wh.path().join("duplicates");
        create(&url(&dir), Table::Duplicates).unwrap();
        let schema = Table::Duplicates.schema();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "source_offset" => Arc::new(arrow::array::Int64Array::from(vec![40, 7, 1200])) as ArrayRef,
                "hash" => Arc::new(arrow::array::StringArray::from(vec!["bb", "aa", "cc"])) as ArrayRef,
                _ => Arc::new(arrow::array::StringArray::from(vec!["r2", "r2", "r2"])) as ArrayRef,
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let path = dir.join("r2.parquet");
        let mut w = TableWriter::create(&path, schema, WriterProperties::builder().build()).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(
            &parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap(),
        )
        .clone();
        let size = std::fs::metadata(&path).unwrap().len();
        let add = add_action("r2.parquet", size, 0, &meta, None);
        let stats: Value = serde_json::from_str(add.stats.as_deref().unwrap()).unwrap();
        assert_eq!(stats["numRecords"], json!(3));
        assert_eq!((&stats["minValues"]["hash"], &stats["maxValues"]["hash"]), (&json!("aa"), &json!("cc")));
        assert_eq!(
            (&stats["minValues"]["source_offset"], &stats["maxValues"]["source_offset"]),
            (&json!(7), &json!(1200))
        );
        assert_eq!(stats["nullCount"]["hash"], json!(0));
        assert_eq!(append(&url(&dir), Table::Duplicates, "r2", vec![add]).unwrap(), 1);
        assert_eq!(files(&url(&dir)).unwrap(), [("r2.parquet".to_string(), size as i64)]);
    }

    /// A small duplicates file `name` in `dir` and its `Add`.
    fn duplicates_add(dir: &Path, name: &str) -> Add {
        add_for(&write_duplicates(dir, name, &["aa"])).unwrap()
    }

    #[test]
    fn an_append_at_a_known_version_lands_there_and_a_stale_one_lands_after_the_newest() {
        let wh = tempfile::tempdir().unwrap();
        let dir = wh.path().join("duplicates");
        create(&url(&dir), Table::Duplicates).unwrap();
        let a = duplicates_add(&dir, "a");
        assert_eq!(append_at(&url(&dir), Table::Duplicates, "ra", &[a], 0).unwrap(), Some(1));
        // Version 1 is taken now: a writer that still thinks 0 is the latest is told so, and
        // commits nothing (the caller then appends the long way, after the newest).
        let b = duplicates_add(&dir, "b");
        assert_eq!(append_at(&url(&dir), Table::Duplicates, "rb", std::slice::from_ref(&b), 0).unwrap(), None);
        assert_eq!(append(&url(&dir), Table::Duplicates, "rb", vec![b]).unwrap(), 2);
        let c = duplicates_add(&dir, "c");
        assert_eq!(append_at(&url(&dir), Table::Duplicates, "rc", &[c], 2).unwrap(), Some(3));
        let listed: Vec<String> = files(&url(&dir)).unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(listed, ["a.parquet", "b.parquet", "c.parquet"]);
        // The commit written without opening the log is deltalake's own: commitInfo first, the run id in it.
        let first: Vec<Value> = std::fs::read_to_string(dir.join("_delta_log/00000000000000000001.json"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(first[0]["commitInfo"]["quarry.run_id"], json!("ra"));
        assert_eq!(first[0]["commitInfo"]["operation"], json!("WRITE"));
        assert_eq!(first[1]["add"]["path"], json!("a.parquet"));
        assert!(first[1]["add"]["stats"].as_str().unwrap().contains("numRecords"));
        // A reader that is not quarry's sees the three files (the process cache plays no part).
        let t = deltalake::open_table(url(&dir));
        let t = runtime("test").unwrap().block_on(t).unwrap();
        assert_eq!(t.version(), Some(3));
    }
}
