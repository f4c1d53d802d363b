#!/usr/bin/env python3
"""Runs extract.sql (the one-statement DuckDB alternative) with the duckdb Python package.

    python duckdb_extract.py --out posts.parquet DUMP_FILE_OR_DIR...

DuckDB runs with its defaults (all cores, memory limit 80% of RAM), as a user would.
Prints one JSON line with the row count to stdout.
"""
import argparse
import json
import os
import sys
import uuid

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--sql", default=os.path.join(HERE, "extract.sql"))
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args()
    files = []
    for p in a.inputs:
        if os.path.isdir(p):
            found = [os.path.join(r, n) for r, _, ns in os.walk(p) for n in ns if n.endswith(".txt")]
            files += sorted(found, key=lambda s: s.encode())
        else:
            files.append(p)
    sql = open(a.sql, encoding="utf-8").read()
    sql = (sql.replace("{inputs}", "[" + ", ".join(sql_str(f) for f in files) + "]")
              .replace("{out}", a.out.replace("'", "''"))
              .replace("{run_id}", str(uuid.uuid4())))
    con = duckdb.connect()
    rows = con.execute(sql).fetchall()
    json.dump({"imported": rows[0][0] if rows else None, "files": len(files)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
