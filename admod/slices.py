"""The evaluation in slices, as TFMA and Vertex AI model evaluation report them: by image
format, by shape and by size, each from the split's manifest (the image as it was listed).

A model that does well on JPEG banners and badly on GIFs or portraits looks fine in
aggregate; per slice, a retrain that regresses on one is seen, and can be refused (the slice
gate, admod.blessing).
"""

import dataclasses

import numpy as np
import pandas as pd

from admod import uncertainty

# Shape, from width / height: a banner is wide (leaderboard 728x90, mobile 320x50, 16:9
# video at 1.78), a portrait tall (skyscraper 160x600, half page 300x600, 9:16 stories); the
# rest is square (medium rectangle 300x250 at 1.2, 4:3, 1:1).
BANNER_FROM = 1.5  # width / height at or above
PORTRAIT_FROM = 1.25  # height / width at or above
# Size, from the pixel count: small up to a medium rectangle's (300x250 = 75,000) and a bit
# more, large from a 1080x1080 social square's (1.17 megapixels) down to about 0.5.
SMALL_BELOW, LARGE_FROM = 100_000, 500_000
DIMENSIONS = ("format", "shape", "size")


def shape_of(width: pd.Series, height: pd.Series) -> pd.Series:
    ratio = width / height
    return pd.Series(np.select([ratio >= BANNER_FROM, 1 / ratio >= PORTRAIT_FROM],
                               ["banner", "portrait"], "square"), index=width.index)


def size_of(width: pd.Series, height: pd.Series) -> pd.Series:
    pixels = width * height
    return pd.Series(np.select([pixels < SMALL_BELOW, pixels >= LARGE_FROM],
                               [f"small (<{SMALL_BELOW:,} px)", f"large (>={LARGE_FROM:,} px)"],
                               f"medium ({SMALL_BELOW:,}-{LARGE_FROM:,} px)"), index=width.index)


DIMENSIONS = ("format", "shape", "size")


def _facts_by_chunk(manifest_path: str, splits, chunk_rows: int):
    """Per chunk of the manifest (it lists every file of the data set): uri, split, format,
    shape and size of the images it put in one of `splits`."""
    from admod import split

    for chunk in pd.read_csv(manifest_path, dtype=str, keep_default_na=False,
                             usecols=["uri", "width", "height", "format", "split"],
                             chunksize=chunk_rows, encoding=split.ENCODING["encoding"],
                             encoding_errors=split.ENCODING["errors"]):
        chunk = chunk[chunk["split"].isin(splits)]
        width, height = chunk["width"].astype(int), chunk["height"].astype(int)
        yield pd.DataFrame({"uri": chunk["uri"], "split": chunk["split"],
                            "format": chunk["format"], "shape": shape_of(width, height),
                            "size": size_of(width, height)})


def manifest_facts(manifest_path: str, split_name: str, chunk_rows: int = 200_000
                   ) -> pd.DataFrame:
    """uri -> format, shape, size of the images the manifest put in `split_name`."""
    kept = list(_facts_by_chunk(manifest_path, [split_name], chunk_rows))
    return pd.concat(kept, ignore_index=True).drop(columns="split").set_index("uri")


def composition(manifest_path: str, splits, chunk_rows: int = 200_000) -> dict:
    """Per dimension (format, shape, size): a table of image counts, its values as rows and
    `splits` as columns, from the manifest in chunks."""
    tables = {dimension: pd.DataFrame() for dimension in DIMENSIONS}
    for chunk in _facts_by_chunk(manifest_path, splits, chunk_rows):
        for dimension in DIMENSIONS:
            counts = pd.crosstab(chunk[dimension], chunk["split"])
            tables[dimension] = tables[dimension].add(counts, fill_value=0)
    return {dimension: table.reindex(columns=list(splits), fill_value=0).fillna(0).astype(int)
            for dimension, table in tables.items()}


@dataclasses.dataclass
class Slice:
    """One slice's figures: its count per class, each figure with its interval, whether it is
    large enough to gate, and (with a champion) the paired difference on the gating metric."""
    dimension: str
    value: str
    count: int
    not_allowed: int
    figures: dict[str, float]
    intervals: dict[str, list[float]]
    gated: bool
    champion_difference: dict | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def evaluate_slices(facts: pd.DataFrame, challenger: uncertainty.Scored,
                    champion: uncertainty.Scored | None, gating_metric: str, min_size: int,
                    seed: int = uncertainty.SEED) -> list[Slice]:
    """Every slice of every DIMENSIONS of `facts` (one row per evaluation image, in the
    scores' order). A slice with both classes gets every figure, one with a single class its
    accuracy; slices of `min_size` images or more with both classes are gated."""
    found = []
    for dimension in DIMENSIONS:
        for value, rows in facts.groupby(dimension, sort=True).indices.items():
            found.append(_slice(dimension, str(value), rows, challenger, champion,
                                gating_metric, min_size, seed))
    return found


def _slice(dimension, value, rows, challenger, champion, gating_metric, min_size, seed) -> Slice:
    part = _rows(challenger, rows)
    positives = int(part.labels.sum())
    both = 0 < positives < len(rows)
    names = uncertainty.INTERVAL_METRICS if both else ("accuracy",)
    figures = uncertainty.figures(part, np.arange(len(rows)), names)
    found = Slice(dimension, value, len(rows), positives,
                  {n: float(v) for n, v in zip(names, figures, strict=True)},
                  uncertainty.intervals(part, seed, names=names), both and len(rows) >= min_size)
    if champion is not None and both:
        found.champion_difference = uncertainty.paired_differences(
            part, _rows(champion, rows), seed, names=(gating_metric,))[gating_metric]
    return found


def _rows(scored: uncertainty.Scored, rows) -> uncertainty.Scored:
    return uncertainty.Scored(scored.labels[rows], scored.probability[rows],
                              scored.decision[rows], scored.held_out[rows])
