"""DuckDB 1.4.4's `delta_scan` over a warehouse's Delta tables, for test_readers.py.

Run with the interpreter of the DuckDB 1.4.4 venv (`make test` makes it: the `delta` and `httpfs`
extensions come from the PyPI packages duckdb-ext-delta / duckdb-ext-httpfs and load offline;
DuckDB 2.x cannot fetch its extensions here).

    python duck_delta.py WAREHOUSE     # a folder or s3://bucket/prefix; the AWS_* variables for S3

Prints one JSON object: per table its row count, and the key columns of posts, as delta_scan reads them.
"""

import json
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import duckdb_ext


def connect():
    con = duckdb.connect()
    # The packages put the extension files at duckdb_ext/extensions/v1.4.4/<platform>/.
    con.execute("SET extension_directory = ?", (str(Path(list(duckdb_ext.__path__)[0]) / "extensions"),))
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("LOAD delta")
    con.execute("LOAD httpfs")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        u = urlparse(endpoint)
        con.execute(
            "CREATE SECRET s3 (TYPE S3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL ?)",
            (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
             os.environ.get("AWS_REGION", "us-east-1"), u.netloc, u.scheme == "https"),
        )
    return con


def main():
    wh = sys.argv[1].rstrip("/")
    con = connect()
    out = {}
    for table in ("posts", "rejects", "duplicates", "runs"):
        src = f"delta_scan('{wh}/{table}')"
        out[table] = con.sql(f"SELECT count(*) FROM {src}").fetchall()[0][0]
    out["posts_keys"] = sorted(r[0] for r in con.sql(f"SELECT hash FROM delta_scan('{wh}/posts')").fetchall())
    out["runs_keys"] = sorted(r[0] for r in con.sql(f"SELECT run_id FROM delta_scan('{wh}/runs')").fetchall())
    dates = con.sql(f"SELECT DISTINCT typeof(ingest_date) FROM delta_scan('{wh}/posts')").fetchall()
    out["ingest_date_types"] = sorted(r[0] for r in dates)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
