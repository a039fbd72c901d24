"""A review sample of a run: per reject reason and for the accepted set, up to N rows a person can judge.

The choice is deterministic and streams: each row's key is a BLAKE2b hash of its id salted by the run id, and a
group's sample is its N lowest keys. That is a uniform sample without replacement, the same on every call (and
in every version: no polars or Python hash is involved), and its first K rows are the sample K would draw, so the
report's short tables are the top of the review file. Choosing reads only id, stage and reason; the chosen
rows' other columns are read afterwards, from the row groups that hold them only.

`dataengine review RUN_ID` writes the sample (schema `review.v1`) with an empty `verdict` column; a person fills
in `correct` or `wrong` and `dataengine inspect RUN_ID` reads the verdicts back as each group's precision.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dataengine.core import schema
from dataengine.core.ids import run_token
from dataengine.core.storage import exists, join, read_parquet, resolve, write_parquet_atomic
from dataengine.report import thumbs
from dataengine.report.data import stage_setting
from dataengine.report.gallery import SourceImages, clip, image_roots, is_chinese, parse_record

ACCEPTED = "accepted"
VERDICTS = ("correct", "wrong")
REVIEW_DIR = "review"
DEFAULT_PER_REASON = 20
THUMB_SIDE = 256
MAX_RECORD = 4000
SCORES = ["match_en", "match_zh", "loglik_en", "loglik_zh", "translation_drift", "quality_en", "quality_zh",
          "translation_qe"]  # fmt: skip
SAMPLE_COLUMNS = ["id", "source", "location", "image", "image_path", "image_root", "caption", "conversations",
                  "caption_zh", "conversations_zh", "language", *SCORES]  # fmt: skip
REJECT_COLUMNS = ["id", "source", "location", "stage", "reason", "detail", "record", "image", *SCORES]
CHOOSE_BATCH = 65_536  # rows of id/stage/reason per batch while choosing
FETCH_BATCH = 64  # rows per batch while reading chosen rows: image bytes of a few dozen rows at a time


class ReviewError(ValueError):
    """A mistake the user can act on (no review file, a bad verdict, a run with nothing to sample): one line."""


@dataclass(frozen=True)
class Pick:
    """One chosen row: its group, place in the group's sample, and where it lies (file index, row in file)."""

    group: str
    rank: int
    id: str
    file: int
    row: int


def path_for(record: dict[str, Any]) -> str:
    """The run's default review file: `<output>/review/review-<run token>.parquet` (beside its samples)."""
    return join(record["output"], REVIEW_DIR, f"review-{run_token(record['run_id'])}.parquet")


def group_of(stage: str, reason: str) -> str:
    """A reject's group: stage/reason (some reasons, e.g. internal_error, occur at several stages)."""
    return f"{stage}/{reason}"


def _salt(run_id: str) -> bytes:
    """The run's BLAKE2b salt (16 bytes): the sample is seeded by the run id."""
    return hashlib.blake2b(run_id.encode(), digest_size=16).digest()


def keys(salt: bytes, ids: list[str]) -> np.ndarray:
    """Each id's sampling key: BLAKE2b-64 of the id salted with the run's salt, as uint64 (lowest sampled first)."""
    digests = b"".join(hashlib.blake2b(i.encode(), digest_size=8, salt=salt).digest() for i in ids)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def _batches(
    file: str, columns: list[str], batch_size: int, row_groups: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """The file's batches of these columns (those it has), optionally of some row groups only."""
    fs, path = resolve(file)
    with fs.open_input_file(path) as f:
        pf = pq.ParquetFile(f)
        present = [c for c in columns if c in pf.schema_arrow.names]
        yield from pf.iter_batches(batch_size=batch_size, columns=present, row_groups=row_groups)


def _row_groups(file: str) -> list[int]:
    """Rows per row group of a Parquet file (from its footer)."""
    fs, path = resolve(file)
    with fs.open_input_file(path) as f:
        meta = pq.ParquetFile(f).metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def choose(files: list[str], run_id: str, per_group: int, rejects: bool) -> tuple[list[Pick], Counter[str]]:
    """Per group, the `per_group` rows with the lowest keys, and every group's size. Streams id (and stage, reason
    for rejects) only, batch by batch, keeping at most `per_group` candidates per group; ties (a 64-bit key
    collision) go to the earlier file and row."""
    salt = _salt(run_id)
    best: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)  # group: (key, file, row, id), ascending
    sizes: Counter[str] = Counter()
    columns = ["id", "stage", "reason"] if rejects else ["id"]
    for fi, file in enumerate(files):
        row = 0
        for batch in _batches(file, columns, CHOOSE_BATCH):
            ids = batch.column("id").to_pylist()
            k = keys(salt, ids)
            if rejects:
                labels = pc.binary_join_element_wise(batch.column("stage"), batch.column("reason"), "/")
                encoded = labels.dictionary_encode()
                names = encoded.dictionary.to_pylist()
                codes = encoded.indices.to_numpy(zero_copy_only=False)
                members = [(names[c], np.flatnonzero(codes == c)) for c in range(len(names))]
            else:
                members = [(ACCEPTED, np.arange(len(ids)))]
            for group, idx in members:
                sizes[group] += len(idx)
                if len(idx) > per_group:  # only this batch's lowest keys can enter the group's sample
                    idx = idx[np.argpartition(k[idx], per_group - 1)[:per_group]]
                merged = best[group] + [(int(k[i]), fi, row + int(i), ids[i]) for i in idx]
                best[group] = sorted(merged)[:per_group]
            row += len(ids)
    picks = [
        Pick(group, rank, sid, fi, r) for group in sorted(best) for rank, (_, fi, r, sid) in enumerate(best[group])
    ]
    return picks, sizes


def fetch(files: list[str], picks: list[Pick], columns: list[str]) -> dict[tuple[int, int], dict[str, Any]]:
    """The chosen rows' columns, keyed by (file, row): only the row groups that hold a chosen row are read, a few
    dozen rows at a time."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for p in picks:
        wanted[p.file].add(p.row)
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for fi, rows in sorted(wanted.items()):
        start = 0
        for rg, size in enumerate(_row_groups(files[fi])):
            inside = sorted(r for r in rows if start <= r < start + size)
            if inside:
                pos = start
                for batch in _batches(files[fi], columns, FETCH_BATCH, [rg]):
                    for r in inside:
                        if pos <= r < pos + batch.num_rows:
                            out[(fi, r)] = batch.slice(r - pos, 1).to_pylist()[0]
                    pos += batch.num_rows
            start += size
    return out


def _turns(conv: list[dict[str, Any]] | None) -> str | None:
    """A conversation as one `from: value` line per turn."""
    if not conv:
        return None
    return "\n".join(f"{t.get('from', '')}: {t.get('value', '')}" for t in conv if isinstance(t, dict)) or None


def sample_texts(row: dict[str, Any]) -> tuple[str | None, str | None]:
    """(English, Chinese) text of an accepted row: a Chinese source sits in the Chinese slot."""
    source = row.get("caption") or _turns(row.get("conversations"))
    if row.get("language") == "zh":
        return None, source
    return source, row.get("caption_zh") or _turns(row.get("conversations_zh"))


def record_texts(rec: dict[str, Any]) -> tuple[str | None, str | None]:
    """(English, Chinese) text of a reject's original record, put by its script (as the gallery does)."""
    text = rec.get("caption") if isinstance(rec.get("caption"), str) else None
    conv = rec.get("conversations") if isinstance(rec.get("conversations"), list) else None
    body = text or _turns(conv)
    en, zh = (None, body) if body and is_chinese(body) else (body, None)
    if isinstance(rec.get("caption_zh"), str):
        zh = rec["caption_zh"]
    return en, zh


def _clip(text: str | None, n: int = MAX_RECORD) -> str | None:
    return text if text is None or len(text) <= n else text[:n] + "…"


def sample_rows(
    record: dict[str, Any], per_reason: int = DEFAULT_PER_REASON, side: int = THUMB_SIDE
) -> list[dict[str, Any]]:
    """The review sample of a run record as rows of the review schema (verdict empty): accepted first, then each
    stage/reason in order, each group by rank. Thumbnails are JPEGs of at most `side` px a side."""
    files = record.get("files") or {}
    samples, rejects = files.get("samples") or [], files.get("rejects") or []
    gone = [f for f in samples + rejects if not exists(f)]
    if gone:
        raise ReviewError(
            f"run {record['run_id']} lists {len(gone)} file(s) that are gone (its output was overwritten or "
            f"deleted), e.g. {gone[0]}"
        )
    sources = SourceImages(record, image_roots(samples))
    max_pixels = stage_setting(record, "image", "max_pixels") or thumbs.MAX_PIXELS
    run_id = record["run_id"]
    out = []
    for table_files, rejected in ((samples, False), (rejects, True)):
        picks, sizes = choose(table_files, run_id, per_reason, rejected)
        got = fetch(table_files, picks, REJECT_COLUMNS if rejected else SAMPLE_COLUMNS)
        for p in picks:
            row = got[(p.file, p.row)]
            if rejected:
                rec, raw = parse_record(row.get("record"))
                en, zh = record_texts(rec)
                where = sources.reject_image(row, rec)
                data = row.get("image") or (sources.read(*where) if where else None)
                ref = None if row.get("image") else _ref(where)
            else:
                en, zh = sample_texts(row)
                where = (row["image_root"], row["image_path"]) if row.get("image_path") else None
                data = row.get("image") or (sources.read(*where) if where else None)
                ref, raw = _ref(where), None
            out.append(
                {
                    **{c: row.get(c) for c in ("id", "source", "location", "stage", "reason", "detail", *SCORES)},
                    "run_id": run_id,
                    "group": p.group,
                    "group_rows": sizes[p.group],
                    "rank": p.rank,
                    "language": None if rejected else row.get("language"),
                    "text_en": en,
                    "text_zh": zh,
                    "record": _clip(raw),
                    "image_ref": ref,
                    "thumbnail": thumbs.jpeg(data, side, max_pixels),
                    "verdict": None,
                    "note": None,
                }
            )
    return out


def _ref(where: tuple[str, str] | None) -> str | None:
    """The image root joined with the image path: a reference only, nothing is read through it."""
    return join(*where) if where else None


def build(record: dict[str, Any], per_reason: int = DEFAULT_PER_REASON) -> pa.Table:
    """The review sample as a table in the review schema; ReviewError when the run has nothing to sample."""
    if not any((record.get("files") or {}).values()):
        status = record.get("status", "?")
        raise ReviewError(f"run {record['run_id']} ({status}) has no samples or rejects to review")
    return pa.Table.from_pylist(sample_rows(record, per_reason), schema=schema.load("review"))


def write(
    record: dict[str, Any], out: str | None = None, per_reason: int = DEFAULT_PER_REASON, overwrite: bool = False
) -> tuple[str, pa.Table]:
    """Write the review file (temp + rename) to `out` or the run's default path; a file already holding verdicts
    is replaced only with `overwrite` (a person's judgements are not thrown away silently)."""
    path = out or path_for(record)
    if not overwrite and exists(path):
        try:
            judged = sum(v is not None for v in verdicts(load(path), path))
        except ReviewError:
            judged = 1  # unreadable verdicts are still someone's work
        if judged:
            raise ReviewError(f"{path} already holds verdicts; pass --overwrite to replace it, or --out elsewhere")
    table = build(record, per_reason)
    write_parquet_atomic(path, table)
    return path, table


def load(path: str) -> pa.Table:
    """A review file, checked for the columns inspect needs."""
    if not exists(path):
        raise ReviewError(f"no review file {path}: write one with `dataengine review RUN_ID`")
    try:
        table = read_parquet(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReviewError(f"{path} is not a readable Parquet file: {exc}") from None
    missing = [c for c in ("id", "group", "verdict") if c not in table.column_names]
    if missing:
        raise ReviewError(f"{path} is not a review file: no column {', '.join(missing)}")
    return table


def verdicts(table: pa.Table, path: str) -> list[str | None]:
    """Each row's verdict, normalised (any case, spaces around ignored; empty: None); ReviewError naming every
    value that is not correct or wrong."""
    try:
        values = table.column("verdict").cast(pa.string()).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ReviewError(f"{path}: the verdict column must hold text (correct or wrong)") from None
    out: list[str | None] = []
    bad: Counter[str] = Counter()
    for v in values:
        norm = (v or "").strip().lower() or None
        if norm is not None and norm not in VERDICTS:
            bad[v] += 1
        out.append(norm)
    if bad:
        listed = ", ".join(f"{v!r} ({n} row{'s' if n > 1 else ''})" for v, n in bad.most_common(5))
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ReviewError(
            f"{path}: invalid verdict {listed}{more}; use correct or wrong, or leave it empty (not judged)"
        )
    return out


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default): honest at the small counts a review has."""
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def precision(table: pa.Table, path: str, run_id: str | None = None) -> list[dict[str, Any]]:
    """Per group (in file order): rows in the run, sampled, judged, correct, wrong, unjudged, precision
    (correct / judged, None before any verdict) and its 95% interval; ReviewError for bad verdicts or a file of
    another run."""
    if run_id is not None and "run_id" in table.column_names:
        others = sorted(set(table.column("run_id").to_pylist()) - {run_id})
        if others:
            raise ReviewError(f"{path} is a review of run {others[0]}, not {run_id}")
    judged = verdicts(table, path)
    sizes = table.column("group_rows").to_pylist() if "group_rows" in table.column_names else [None] * len(judged)
    stats: dict[str, dict[str, Any]] = {}
    for group, verdict, size in zip(table.column("group").to_pylist(), judged, sizes, strict=True):
        s = stats.setdefault(group, {"group": group, "rows": size, "sampled": 0, "correct": 0, "wrong": 0})
        s["sampled"] += 1
        if verdict:
            s[verdict] += 1
    out = []
    for s in stats.values():
        n = s["correct"] + s["wrong"]
        s.update(judged=n, unjudged=s["sampled"] - n, precision=s["correct"] / n if n else None)
        s["interval"] = wilson(s["correct"], n) if n else None
        out.append(s)
    return out


def print_precision(console: Console, path: str, groups: list[dict[str, Any]]) -> None:
    """`inspect`'s review section: one line when nothing is judged yet, else a table per group (sampled: of the
    group's rows in the run)."""
    sampled, judged = sum(g["sampled"] for g in groups), sum(g["judged"] for g in groups)
    console.print(f"review    {path}: {judged} of {sampled} sampled rows judged", markup=False)
    if not judged:
        return
    table = Table(title="review: precision = correct / judged (95% Wilson interval)", show_edge=False)
    table.add_column("group", no_wrap=True)
    for name in ("sampled", "judged", "correct", "precision", "interval"):
        table.add_column(name, justify="right", no_wrap=True)
    for g in groups:
        p, ci = g["precision"], g["interval"]
        table.add_row(
            escape(g["group"]),
            f"{g['sampled']}" if g["rows"] is None else f"{g['sampled']}/{g['rows']}",
            str(g["judged"]),
            str(g["correct"]),
            "-" if p is None else f"{p:.3f}",
            "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}",
        )
    console.print(table)


def section(record: dict[str, Any], per_reason: int) -> dict[str, Any]:
    """The report's review tables: the first `per_reason` rows of each group's sample (the top of what `dataengine
    review` writes), with verdicts and each group's precision when the run's review file holds any."""
    out: dict[str, Any] = {"per_reason": per_reason, "groups": [], "error": None, "file": None, "judged": False}
    if per_reason <= 0 or not any((record.get("files") or {}).values()):
        return out
    try:
        rows = sample_rows(record, per_reason, thumbs.SIDE)
    except ReviewError as exc:
        return {**out, "error": str(exc)}
    stats: dict[str, dict[str, Any]] = {}
    judged: dict[tuple[str, str], str | None] = {}
    path = path_for(record)
    if exists(path):
        out["file"] = path
        try:
            table = load(path)
            stats = {g["group"]: g for g in precision(table, path, record["run_id"])}
            groups_ids = zip(table.column("group").to_pylist(), table.column("id").to_pylist(), strict=True)
            judged = dict(zip(groups_ids, verdicts(table, path), strict=True))
        except ReviewError as exc:
            out["error"] = str(exc)
    out["judged"] = any(judged.values())
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r["group"], {"name": r["group"], "rows": r["group_rows"], "items": [],
                                           "stats": stats.get(r["group"])})  # fmt: skip
        en, zh = clip(r["text_en"]), clip(r["text_zh"])
        g["items"].append(
            {
                "id": r["id"],
                "thumb": thumbs.jpeg_uri(r["thumbnail"]) if r["thumbnail"] else None,
                "en": en,
                "zh": zh,
                "detail": clip(r["detail"]),
                "raw": clip(r["record"]) if not (en or zh) else None,
                "verdict": judged.get((r["group"], r["id"])),
            }
        )
    out["groups"] = list(groups.values())
    return out
