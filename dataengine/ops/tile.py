"""Pre-tile accepted images the InternVL 1.5 way and write the tiles as Parquet shards (optionally WebDataset).

Tile bytes never travel back through Ray: each batch's tiles go straight into shards of at most
`shard_target_bytes`, written atomically, and only the grid and the shard name return with the row, so memory
stays bounded however much tile data streams through.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from dataengine.core import schema
from dataengine.core.ids import content_hash, run_token
from dataengine.core.metrics import StageMetrics
from dataengine.core.rows import reject
from dataengine.core.storage import TILES_DIR, join, write_bytes_atomic, write_parquet_atomic
from dataengine.ops.base import BatchStage, RunContext, StageConfig
from dataengine.tiling import tile_encoded


def index_name(run_id: str) -> str:
    """The run's shard index, `_index-<run token>.parquet`: the underscore keeps readers that glob the shards from
    picking it up, the token keeps it apart from the index of a committed run in the same folder."""
    return f"_index-{run_token(run_id)}.parquet"


def _shards_of(output: str, run_id: str) -> list[str]:
    """This run's shard files under `output/tiles/` (a committed run's may sit beside them until this one commits)."""
    from dataengine.core.storage import list_files

    prefix = f"shard-{run_token(run_id)}-"
    return [f for f in list_files(join(output, TILES_DIR), (".parquet",)) if f.rsplit("/", 1)[-1].startswith(prefix)]


class TileConfig(StageConfig):
    needs = frozenset({"image"})

    op: Literal["tile"] = "tile"
    min_tiles: int = Field(1, ge=1)
    max_tiles: int = Field(12, ge=1, le=40)
    tile_size: int = Field(448, ge=14)
    thumbnail: bool = True
    quality: int = Field(95, ge=1, le=100, description="tile JPEG quality")
    shard_target_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="a shard is closed at this size")
    webdataset: bool = Field(False, description="also write each shard as a WebDataset tar (id.N.jpg + id.json)")
    batch_size: int = 64

    @model_validator(mode="after")
    def _range(self) -> TileConfig:
        if self.min_tiles > self.max_tiles:
            raise ValueError("min_tiles must not exceed max_tiles")
        return self


def _tar(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for r in rows:
            meta = {k: r[k] for k in ("id", "grid_cols", "grid_rows", "num_tiles", "thumbnail", "width", "height")}
            members = [(f"{r['id']}.{i}.jpg", t) for i, t in enumerate(r["tiles"])]
            members.append((f"{r['id']}.json", json.dumps(meta).encode()))
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Tile(BatchStage):
    """Working rows -> the same rows with grid/shard columns; tiles written to shards on the way."""

    name = "tile"
    Config = TileConfig

    def setup(self) -> None:
        assert self.ctx is not None, "the tile stage writes into a run's folder"
        self.cfg: TileConfig = self.config  # type: ignore[assignment]
        self.output, self.token = self.ctx.output, self.ctx.token
        self.metrics = StageMetrics(self.ctx.stage_labels(self.name))

    def _flush(self, shard_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        digest = content_hash("\n".join(r["id"] for r in shard_rows).encode(), 10)
        name = f"shard-{self.token}-{digest}"
        table = schema.conform(pa.Table.from_pylist(shard_rows), schema.load("tiles"))
        # JPEG bytes do not compress: skipping zstd saves CPU on the hot path
        write_parquet_atomic(
            join(self.output, TILES_DIR, f"{name}.parquet"), table, compression="none", dictionary=False
        )
        if self.cfg.webdataset:
            write_bytes_atomic(join(self.output, TILES_DIR, f"{name}.tar"), _tar(shard_rows))
        self.metrics.inc("dataengine_tile_shards_written", 1)
        self.metrics.inc("dataengine_tiles_written", sum(r["num_tiles"] for r in shard_rows))
        self.metrics.inc("dataengine_tile_bytes_written", sum(len(t) for r in shard_rows for t in r["tiles"]))
        ids = {r["id"] for r in shard_rows}
        for row in rows:
            if row["id"] in ids:
                row["tile_shard"] = f"{TILES_DIR}/{name}.parquet"

    @classmethod
    def finish(cls, config: StageConfig, ctx: RunContext, samples: list[str]) -> dict[str, Any]:
        """The shards keep accepted samples only (later stages reject some), then the run's index of them."""
        from dataengine import accounting

        prune_shards(ctx.output, ctx.run_id, accounting.ids(samples))
        return {"tile_index": write_index(ctx.output, ctx.run_id)}

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cfg = self.cfg
        pending: list[dict[str, Any]] = []
        size = 0
        for row in rows:
            try:
                tiled = tile_encoded(
                    row["image_out"],
                    min_tiles=cfg.min_tiles,
                    max_tiles=cfg.max_tiles,
                    tile_size=cfg.tile_size,
                    thumbnail=cfg.thumbnail,
                    quality=cfg.quality,
                )
            except Exception as exc:  # one bad image rejects itself, never the batch
                reject(row, "tile", "tile_error", f"{type(exc).__name__}: {exc}"[:300])
                continue
            cols, rows_ = tiled.grid
            row.update(grid_cols=cols, grid_rows=rows_, num_tiles=len(tiled.tiles))
            pending.append(
                {
                    "id": row["id"],
                    "grid_cols": cols,
                    "grid_rows": rows_,
                    "num_tiles": len(tiled.tiles),
                    "thumbnail": tiled.thumbnail,
                    "tile_size": cfg.tile_size,
                    "tiles": tiled.tiles,
                    "width": tiled.size[0],
                    "height": tiled.size[1],
                }
            )
            size += sum(map(len, tiled.tiles))
            if size >= cfg.shard_target_bytes:
                self._flush(pending, rows)
                pending, size = [], 0
        if pending:
            self._flush(pending, rows)
        return rows


def prune_shards(output: str, run_id: str, accepted: set[str]) -> int:
    """Rewrite the tile shards (and their tars) without the samples a later stage (translate, score, filter)
    rejected, so the shards hold accepted samples only, as the tiles schema says; a shard left empty is
    deleted. Returns how many samples were pruned."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from dataengine.core.storage import delete_file, exists, resolve

    pruned, kept_ids = 0, pa.array(sorted(accepted), pa.string())
    for shard in _shards_of(output, run_id):
        fs, path = resolve(shard)
        with fs.open_input_file(path) as f:
            ids = pq.read_table(f, columns=["id"]).column("id")
        keep = pc.is_in(ids, value_set=kept_ids)
        gone = len(ids) - pc.sum(keep).as_py() if len(ids) else 0
        if not gone:
            continue
        pruned += gone
        tar = shard[: -len(".parquet")] + ".tar"
        if gone == len(ids):
            delete_file(shard)
            if exists(tar):
                delete_file(tar)
            continue
        with fs.open_input_file(path) as f:
            table = pq.read_table(f).filter(keep)
        write_parquet_atomic(shard, table, compression="none", dictionary=False)
        if exists(tar):
            write_bytes_atomic(tar, _tar(table.to_pylist()))
    return pruned


def write_index(output: str, run_id: str) -> str | None:
    """`tiles/_index-<run token>.parquet`: (id, shard, row, num_tiles) of this run's shards, read back from the
    shards themselves."""
    import polars as pl

    shards = _shards_of(output, run_id)
    if not shards:
        return None
    parts = []
    for shard in shards:
        ids = pl.read_parquet(shard, columns=["id", "num_tiles"])
        parts.append(ids.with_columns(shard=pl.lit(shard.rsplit("/", 1)[-1]), row=pl.int_range(pl.len())))
    index = pl.concat(parts).select("id", "shard", "row", "num_tiles").to_arrow()
    index = schema.conform(
        index.cast(
            pa.schema([("id", pa.string()), ("shard", pa.string()), ("row", pa.int64()), ("num_tiles", pa.int32())])
        ),
        schema.load("tile_index"),
    )
    path = join(output, TILES_DIR, index_name(run_id))
    write_parquet_atomic(path, index)
    return path
