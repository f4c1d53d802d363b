#!/usr/bin/env python3
"""The competent Python alternative to `quarry import`, for `make bench`.

What a user would write instead of quarry: stream the dump files line by line through a
small state machine (title -> article -> meta block -> "Similar Posts" trailer), parse the meta
entries with `re`, build the posts columns in batches and write one zstd Parquet file with
pyarrow.  Same column names and types as the warehouse's posts table
(../../shared/spec/warehouse.md), one row per unique hash; pages without meta or hash and
truncated pages are counted as rejects.  It covers the format of dump-format.md for clean and
most noisy dumps (glued or `key: value` scalars, lists, name: value lists, objects, scores in
four notations, five date formats, integers with separators, HTML references, BOM, CRLF, invalid
UTF-8), not every corner of the spec.

    python extract.py --out posts.parquet DUMP_FILE_OR_DIR...

Prints one JSON line with counts to stdout.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import html
import json
import os
import re
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 8192
ROW_GROUP_ROWS = 65536
WORDS_PER_MINUTE = 200
SCORE_WEIGHTS = {"quality": 0.4, "freshness": 0.2, "depth": 0.2, "clarity": 0.2}

WS = " \t\u00a0\r\n"
BULLET = re.compile(r"^[ \t\u00a0]*[•\-*·] +(.*)$")
IMAGE = re.compile(r"^.*\bvisual\s+reference\s+\d+(?:\.\s*image\s+source:.*)?$", re.I)
PARA_END = re.compile(r"[.!?…][\"'”’)\]]*$")
META_START = re.compile(r"^alphanode\s+post\s+meta$", re.I)
TRAILER = re.compile(r"^similar\s+posts$", re.I)
FOLD = re.compile(r"[ \t\u00a0]+")
NAME_VALUE = re.compile(r"^([^:]+?)\s*:\s*(.*)$")
INT = re.compile(r"^[+-]?\d{1,3}(?:[,_ ]\d{3})+$|^[+-]?\d+$")
HEX = re.compile(r"^[0-9a-fA-F]{16,64}$")
FIRST_NUM = re.compile(r"\d+")

SCALARS = {  # meta key -> column
    "topic": "topic", "summary": "summary", "ai brief": "ai_brief", "code language": "code_language",
    "difficulty": "difficulty", "reference": "reference", "hash": "hash",
    "reading time": "reading_time_min", "view count": "view_count",
}
# longest first, so that a key that is a prefix of another one never wins
SCALAR_RE = re.compile(
    r"^(" + "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in sorted(SCALARS, key=len, reverse=True))
    + r")[\s:]*(.*)$", re.I)
TEXT_LISTS = {"stack", "tools", "checklist", "notes"}
PAIR_LISTS = {"ai outline", "score", "revision", "flags", "payload"}
OBJECT_LISTS = {"entities": ("name", "type"), "image sources": ("source", "url", "caption")}
OUTLINE = {"context": "context", "problem": "problem", "stack": "stack", "recommended action": "recommended_action"}
REVISION = {"status": "revision_status", "version": "revision_version", "last reviewed": "last_reviewed"}
FLAGS = {"ai generated style": "flag_ai_generated_style", "has images": "flag_has_images",
         "image heavy": "flag_image_heavy", "needs human review": "flag_needs_human_review"}
PAYLOAD = {"source id": "source_id", "generator": "generator", "paragraphs": "paragraphs_declared",
           "scenario": "scenario", "seed": "seed"}
TRUE = {"1", "true", "yes"}
FALSE = {"0", "false", "no"}
MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
DATE_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
DATE_DMY = re.compile(r"^(\d{1,2}) ([A-Za-z]+) (\d{4})$")
DATE_MDY = re.compile(r"^([A-Za-z]+) (\d{1,2}), (\d{4})$")
# entries counted by `completeness`
KNOWN_ENTRIES = ["topic", "summary", "ai brief", "code language", "difficulty", "reference", "hash",
                 "reading time", "view count", "ai outline", "stack", "tools", "checklist", "notes",
                 "score", "revision", "flags", "entities", "image sources", "payload"]

SCHEMA = pa.schema([
    pa.field("hash", pa.string(), nullable=False),
    ("title", pa.string()), ("headings", pa.list_(pa.string())), ("body", pa.string()),
    ("topic", pa.string()), ("summary", pa.string()), ("ai_brief", pa.string()),
    ("ai_outline", pa.struct([(k, pa.string()) for k in ("context", "problem", "stack", "recommended_action")])),
    ("stack", pa.list_(pa.string())), ("tools", pa.list_(pa.string())), ("checklist", pa.list_(pa.string())),
    ("notes", pa.list_(pa.string())), ("similar_posts", pa.list_(pa.string())),
    ("code_language", pa.string()), ("difficulty", pa.string()),
    ("reading_time_min", pa.int32()), ("view_count", pa.int64()),
    ("quality_score", pa.int32()), ("freshness_score", pa.int32()), ("depth_score", pa.int32()),
    ("clarity_score", pa.int32()),
    ("quality_norm", pa.float64()), ("freshness_norm", pa.float64()), ("depth_norm", pa.float64()),
    ("clarity_norm", pa.float64()),
    ("revision_status", pa.string()), ("revision_version", pa.string()), ("last_reviewed", pa.date32()),
    ("reference", pa.string()),
    ("flag_ai_generated_style", pa.bool_()), ("flag_has_images", pa.bool_()), ("flag_image_heavy", pa.bool_()),
    ("flag_needs_human_review", pa.bool_()),
    ("entities", pa.list_(pa.struct([("name", pa.string()), ("type", pa.string())]))),
    ("image_sources", pa.list_(pa.struct([("source", pa.string()), ("url", pa.string()), ("caption", pa.string())]))),
    ("source_id", pa.string()), ("generator", pa.string()), ("scenario", pa.string()),
    ("paragraphs_declared", pa.int32()), ("seed", pa.int64()),
    ("extra_meta", pa.map_(pa.string(), pa.list_(pa.string()))), ("unparsed_meta", pa.list_(pa.string())),
    ("word_count", pa.int32()), ("paragraph_count", pa.int32()), ("reading_time_est_min", pa.float64()),
    ("quality_composite", pa.float64()), ("completeness", pa.float64()), ("ids_consistent", pa.bool_()),
    ("content_fingerprint", pa.string()), ("issues", pa.list_(pa.string())),
    ("source_file", pa.string()), ("source_offset", pa.int64()), ("run_id", pa.string()),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
])
COLUMNS = SCHEMA.names
LIST_COLUMNS = ("stack", "tools", "checklist", "notes")


def dec(s: str) -> str:
    """Trim and decode HTML character references."""
    s = s.strip(WS)
    return html.unescape(s) if "&" in s else s


@functools.lru_cache(maxsize=8192)
def fold_key(s: str) -> str:
    return FOLD.sub(" ", s.strip(WS)).lower()


def parse_int(s: str):
    s = s.strip(WS)
    if INT.match(s):
        return int(s.replace(",", "").replace("_", "").replace(" ", ""))
    return None


def parse_score(s: str):
    """Returns (value, issue) with issue None, 'unparsable' or 'out_of_range'."""
    s = s.strip(WS)
    if s.endswith("/100"):
        s = s[:-4].strip()
    elif s.endswith("%"):
        s = s[:-1].strip()
    try:
        v = float(s)
    except ValueError:
        return None, "unparsable"
    if v != v or v in (float("inf"), float("-inf")):
        return None, "unparsable"
    if "." in s and 0 <= v <= 1:
        v *= 100
    if v < 0 or v > 100:
        return None, "out_of_range"
    return int(v + 0.5 + 1e-9), None


def parse_date(s: str):
    s = FOLD.sub(" ", s.strip(WS))
    try:
        m = DATE_ISO.match(s)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        m = DATE_DMY.match(s)
        if m and m[2][:3].lower() in MONTHS:
            return dt.date(int(m[3]), MONTHS[m[2][:3].lower()], int(m[1]))
        m = DATE_MDY.match(s)
        if m and m[1][:3].lower() in MONTHS:
            return dt.date(int(m[3]), MONTHS[m[1][:3].lower()], int(m[2]))
    except ValueError:
        pass
    return None


def parse_flag(s: str):
    s = s.strip(WS).lower()
    return True if s in TRUE else False if s in FALSE else None


class Extractor:
    def __init__(self, out_path: str):
        self.run_id = str(uuid.uuid4())
        self.now = dt.datetime.now(dt.timezone.utc)
        self.writer = pq.ParquetWriter(out_path, SCHEMA, compression="zstd", compression_level=3)
        self.cols = {c: [] for c in COLUMNS}
        self.rows = 0
        self.seen: set[str] = set()
        self.stats = {"pages": 0, "imported": 0, "duplicates": 0, "rejected": 0, "bytes": 0}

    # ---- one page -----------------------------------------------------------------------
    def page(self, file: str, offset: int, title: str, article: list[str], meta: list[str] | None,
             similar: list[str], invalid_utf8: bool):
        self.stats["pages"] += 1
        if meta is None:  # no meta block
            self.stats["rejected"] += 1
            return
        r = self.parse_meta(meta)
        h = r.get("hash")
        if not h or not HEX.match(h):
            self.stats["rejected"] += 1
            return
        h = h.lower()
        if h in self.seen:
            self.stats["duplicates"] += 1
            return
        self.seen.add(h)
        r["hash"] = h
        headings, paras = [], []
        for line in article:
            if BULLET.match(line):
                continue
            line = dec(line)
            if IMAGE.match(line):
                continue
            (paras if PARA_END.search(line) else headings).append(line)
        body = "\n\n".join(paras)
        title = dec(title)
        issues = r["issues"]
        if invalid_utf8:
            issues.append("invalid_utf8")
        words = len(body.split())
        norms = [(SCORE_WEIGHTS[n], r.get(n + "_norm")) for n in SCORE_WEIGHTS]
        wsum = sum(w for w, v in norms if v is not None)
        ref_n = FIRST_NUM.search(r.get("reference") or "")
        sid_n = FIRST_NUM.search(r.get("source_id") or "")
        seed = r.get("seed")
        ids = None
        if ref_n and sid_n and seed is not None:
            ids = int(ref_n[0]) == int(sid_n[0]) == seed
        norm_text = " ".join((title + "\n" + body).lower().split())
        r.update(
            title=title, headings=headings, body=body, similar_posts=similar,
            word_count=words, paragraph_count=len(paras), reading_time_est_min=words / WORDS_PER_MINUTE,
            quality_composite=(sum(w * v for w, v in norms if v is not None) / wsum) if wsum else None,
            completeness=r.pop("_valid") / len(KNOWN_ENTRIES), ids_consistent=ids,
            content_fingerprint=hashlib.blake2b(norm_text.encode(), digest_size=16).hexdigest(),
            source_file=file, source_offset=offset, run_id=self.run_id, ingested_at=self.now,
        )
        cols = self.cols
        for c in COLUMNS:
            cols[c].append(r.get(c))
        self.stats["imported"] += 1
        self.rows += 1
        if self.rows >= BATCH_ROWS:
            self.flush()

    def parse_meta(self, lines: list[str]) -> dict:
        r: dict = {c: [] for c in LIST_COLUMNS}
        r["entities"], r["image_sources"], r["unparsed_meta"], r["issues"] = [], [], [], []
        extra: dict[str, list[str]] = {}
        seen: set[str] = set()
        valid = 0
        lines = [ln for ln in lines if ln.strip(WS)]
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            j = i + 1
            while j < n and BULLET.match(lines[j]):
                j += 1
            if j > i + 1:  # a list header and its bullets
                key = fold_key(line)
                items = [BULLET.match(b)[1] for b in lines[i + 1:j]]
                if key in seen:
                    r["unparsed_meta"].extend(ln.rstrip(WS) for ln in lines[i:j])
                elif key in TEXT_LISTS:
                    seen.add(key)
                    r[key] = [dec(x) for x in items]
                    valid += 1
                elif key in PAIR_LISTS:
                    seen.add(key)
                    valid += self.pairs(key, items, r, extra)
                elif key in OBJECT_LISTS:
                    seen.add(key)
                    fields = OBJECT_LISTS[key]
                    objs, cur = [], {}
                    for x in items:
                        m = NAME_VALUE.match(x)
                        if not m:
                            extra.setdefault(key, []).append(dec(x))
                            continue
                        name = fold_key(m[1])
                        if name not in fields:
                            extra.setdefault(f"{key}.{name}", []).append(dec(m[2]))
                            continue
                        if name in cur:
                            objs.append(cur)
                            cur = {}
                        cur[name] = dec(m[2])
                    if cur:
                        objs.append(cur)
                    r["entities" if key == "entities" else "image_sources"] = objs
                    valid += 1
                else:
                    seen.add(key)
                    extra.setdefault(FOLD.sub(" ", dec(line)), []).extend(dec(x) for x in items)
                i = j
                continue
            m = SCALAR_RE.match(line.strip(WS))
            if m:
                key = fold_key(m[1])
                if key in seen:
                    r["unparsed_meta"].append(line.rstrip(WS))
                else:
                    seen.add(key)
                    col = SCALARS[key]
                    v = dec(m[2])
                    if col in ("reading_time_min", "view_count"):
                        iv = parse_int(v)
                        if iv is None:
                            r["issues"].append(col + ":unparsable")
                        else:
                            valid += 1
                        r[col] = iv
                    else:
                        if col in ("difficulty", "code_language"):
                            v = v.lower()
                        r[col] = v
                        valid += 1
            else:
                r["unparsed_meta"].append(line.rstrip(WS))
            i += 1
        r["extra_meta"] = list(extra.items())
        r["_valid"] = valid
        return r

    def pairs(self, key: str, items: list[str], r: dict, extra: dict) -> int:
        """Fills the columns of a name: value list; returns 1 if it held a valid value."""
        ok = 0
        outline = {}
        for x in items:
            m = NAME_VALUE.match(x)
            if not m:
                extra.setdefault(key, []).append(dec(x))
                continue
            name, v = fold_key(m[1]), dec(m[2])
            if key == "score" and name in SCORE_WEIGHTS:
                s, issue = parse_score(v)
                if issue:
                    r["issues"].append(f"{name}_score:{issue}")
                else:
                    ok = 1
                r[name + "_score"] = s
                r[name + "_norm"] = None if s is None else s / 100
            elif key == "revision" and name in REVISION:
                col = REVISION[name]
                if col == "last_reviewed":
                    v = parse_date(v)
                    if v is None:
                        r["issues"].append("last_reviewed:unparsable")
                r[col] = v
                ok = ok or v is not None
            elif key == "flags" and name in FLAGS:
                r[FLAGS[name]] = parse_flag(v)
                ok = ok or r[FLAGS[name]] is not None
            elif key == "payload" and name in PAYLOAD:
                col = PAYLOAD[name]
                if col in ("paragraphs_declared", "seed"):
                    iv = parse_int(v)
                    if iv is None:
                        r["issues"].append(col + ":unparsable")
                    v = iv
                r[col] = v
                ok = ok or v is not None
            elif key == "ai outline" and name in OUTLINE:
                outline[OUTLINE[name]] = v
                ok = 1
            else:
                extra.setdefault(f"{key}.{name}", []).append(v)
        if key == "ai outline":
            r["ai_outline"] = outline
        return ok

    def flush(self):
        if not self.rows:
            return
        batch = pa.record_batch([pa.array(self.cols[c], type=SCHEMA.field(c).type) for c in COLUMNS], schema=SCHEMA)
        self.writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
        self.cols = {c: [] for c in COLUMNS}
        self.rows = 0

    def close(self):
        self.flush()
        self.writer.close()

    # ---- one file: the line state machine ---------------------------------------------
    def file(self, path: str):
        TITLE, ARTICLE, META, SIMILAR = range(4)
        state = TITLE
        offset = 0
        title, article, meta, similar, start, bad = "", [], [], [], 0, False
        with open(path, "rb", buffering=1 << 20) as f:
            for raw in f:
                pos = offset
                offset += len(raw)
                if pos == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                    pos = 3
                try:
                    line = raw.decode("utf-8")
                    line_bad = False
                except UnicodeDecodeError:
                    line = raw.decode("utf-8", "replace")
                    line_bad = True
                s = line.strip(WS)
                if state == SIMILAR:
                    if not s:
                        continue
                    m = BULLET.match(line)
                    if m:
                        similar.append(dec(m[1]))
                        continue
                    self.page(path, start, title, article, meta, similar, bad)
                    state = TITLE
                if state == TITLE:
                    if s:
                        title, article, meta, similar, start, bad = s, [], [], [], pos, line_bad
                        state = ARTICLE
                    continue
                bad = bad or line_bad
                if state == ARTICLE:
                    if len(s) < 48 and META_START.match(s):
                        state = META
                    elif len(s) < 48 and TRAILER.match(s):  # a page without meta: rejected
                        meta = None
                        state = SIMILAR
                    elif s:
                        article.append(line)
                elif state == META:
                    if len(s) < 48 and TRAILER.match(s):
                        state = SIMILAR
                    elif s:
                        meta.append(line)
        self.stats["bytes"] += offset
        if state == SIMILAR:
            self.page(path, start, title, article, meta, similar, bad)
        elif state != TITLE:  # truncated
            self.stats["pages"] += 1
            self.stats["rejected"] += 1


def dump_files(inputs: list[str]) -> list[str]:
    out = []
    for p in inputs:
        if os.path.isdir(p):
            found = []
            for root, _, names in os.walk(p):
                found += [os.path.join(root, n) for n in names if n.endswith(".txt")]
            out += sorted(found, key=lambda s: s.encode())
        else:
            out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="Parquet file to write")
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args()
    x = Extractor(a.out)
    for path in dump_files(a.inputs):
        x.file(path)
    x.close()
    json.dump(x.stats, sys.stdout)
    print()


if __name__ == "__main__":
    main()
