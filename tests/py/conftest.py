import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import s3  # noqa: E402
import warehouse as whr  # noqa: E402

FIXTURE_CORPUS = "tests/fixtures/corpus"


@dataclass(frozen=True)
class Corpus:
    """A dumpgen corpus: `root` to read it from here, `arg` the path handed to quarry (cwd = repo root)."""

    root: Path
    arg: str

    def batch(self, n: int) -> str:
        return f"{self.arg}/batch-{n}"

    def batch_files(self, n: int) -> list[Path]:
        return sorted(p for p in (self.root / f"batch-{n}").rglob("*") if p.is_file())

    @property
    def batches(self) -> int:
        return len(list(self.root.glob("batch-*")))


@pytest.fixture(scope="session")
def quarry_binary():
    path = whr.quarry_bin()
    assert path.is_file() and os.access(path, os.X_OK), (
        f"quarry binary not found at {path}: run `cargo build` or set QUARRY_BIN")
    return path


@pytest.fixture(scope="session")
def fixture_corpus():
    root = whr.REPO_ROOT / FIXTURE_CORPUS
    assert (root / "truth.jsonl").is_file(), f"committed fixture corpus missing: {root}"
    return Corpus(root=root, arg=FIXTURE_CORPUS)


@pytest.fixture(scope="session")
def generated_corpus(tmp_path_factory):
    dumpgen = whr.shared_dir() / "tools" / "dumpgen.py"
    if not dumpgen.is_file():
        pytest.skip(f"{dumpgen} not found: the generated corpus needs the shared dir "
                    "(../shared beside the repo, or QUARRY_SHARED)")
    out = tmp_path_factory.mktemp("generated-corpus")
    subprocess.run([sys.executable, str(dumpgen), "--out", str(out), "--batches", "3", "--pages", "3000"],
                   check=True)
    return Corpus(root=out, arg=str(out))


@pytest.fixture(scope="session")
def fixture_warehouse(fixture_corpus, quarry_binary, tmp_path_factory):
    """batch-1..3 of the fixture corpus imported in order; tests only read it (copy it to change it)."""
    wh = tmp_path_factory.mktemp("wh-fixture") / "wh"
    for b in range(1, fixture_corpus.batches + 1):
        rc, out, err = whr.run_import(wh, fixture_corpus.batch(b))
        assert rc == 0, f"import of batch-{b}: exit {rc}\n{err}"
    return wh


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The local S3 endpoint (moto behind one lock) for the whole session, on 127.0.0.1; quarry and
    every reader get its settings from the AWS variables, and a working folder of their own."""
    work = tmp_path_factory.mktemp("s3-server")
    server = s3.S3Server.start(work)
    saved = {k: os.environ.get(k) for k in (*server.env, "QUARRY_CACHE_DIR")}
    os.environ.update(server.env)
    os.environ["QUARRY_CACHE_DIR"] = str(work / "quarry-cache")
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
