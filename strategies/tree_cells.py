"""A tree ensemble's predictions over many points, computed once per cell of its split thresholds: the same numbers.

A LightGBM model sends a point down each tree by comparing one feature with one threshold per node
(`x <= threshold`, for numerical splits without missing-value handling). Two points on the same side of every
threshold the model uses, feature by feature, reach the same leaf in every tree, so their predictions are the same
sum of the same leaf values, bit for bit. RegMix predicts 100,000 simulated mixtures with 1,000 trees fitted on 8
to 24 pilots (strategies/regmix.py): those trees use a few dozen thresholds per feature, so the 100,000 points fall
into far fewer cells (a few hundred to a few tens of thousands); predicting one point per cell and copying its
prediction to the others gives the model's own predictions at a fraction of the cost. tests/test_tree_cells.py
compares them with the full predictions.

A cell is defined conservatively: for each threshold t the model prints, t and its two neighbouring floats, and for
each of those both `x < t` and `x <= t` (so a threshold printed one unit in the last place off, or either
comparison rule, still never splits a cell). Anything else (a categorical split, missing-value handling, linear
leaves, a non-finite input, a model that is not a LightGBM one) predicts every point as before.
"""

from __future__ import annotations

import numpy as np


def split_thresholds(model) -> dict[int, np.ndarray] | None:
    """feature index -> the sorted thresholds of every split of a fitted LightGBM model (read from its own model
    text, where thresholds are written to the last digit), or None when a tree has anything but numerical splits
    without missing-value handling and constant leaves (then cells would not be exact)."""
    booster = getattr(model, "booster_", None)
    if booster is None:
        return None
    text = booster.model_to_string().split("\nend of trees", 1)[0]
    found: dict[int, set[float]] = {}
    for block in text.split("\nTree=")[1:]:
        tree = dict(line.split("=", 1) for line in block.split("\n") if "=" in line)
        if tree.get("is_linear", "0") != "0" or tree.get("num_cat", "0") != "0":
            return None  # linear leaves depend on the point; categorical splits are not comparisons
        if "split_feature" not in tree:
            continue  # a single leaf
        kinds = [int(k) for k in tree["decision_type"].split()]
        if any(k & 1 or (k >> 2) & 3 for k in kinds):  # bit 0: categorical; bits 2-3: missing-value handling
            return None
        for f, t in zip(tree["split_feature"].split(), tree["threshold"].split()):
            found.setdefault(int(f), set()).add(float(t))
    return {f: np.array(sorted(ts)) for f, ts in found.items()}


def cells(X: np.ndarray, thresholds: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(one row index per cell, each row's cell): rows in one cell compare alike with every threshold."""
    code = np.zeros(len(X), dtype=np.int64)
    columns, radix = [], 1
    for f, ts in sorted(thresholds.items()):
        edges = np.unique(np.concatenate([ts, np.nextafter(ts, -np.inf), np.nextafter(ts, np.inf)]))
        below = np.searchsorted(edges, X[:, f], side="left")  # edges < x
        at_or_below = np.searchsorted(edges, X[:, f], side="right")  # edges <= x
        column = below + at_or_below  # the pair is fixed by its sum, as at_or_below - below is 0 or 1
        columns.append(column)
        base = 2 * len(edges) + 1  # the column's values: 0 .. 2 * len(edges)
        radix *= base
        code = code * base + column
    if radix >= 2**62:  # one integer per cell would overflow: the columns themselves
        _, first, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def predict(model, X: np.ndarray) -> np.ndarray:
    """`model.predict(X)`, predicting one row per cell of the model's thresholds where that is exact."""
    X = np.asarray(X, dtype=float)
    thresholds = split_thresholds(model)
    if thresholds is None or X.ndim != 2 or not np.isfinite(X).all():
        return model.predict(X)
    first, inverse = cells(X, thresholds)
    return model.predict(X[first])[inverse]
