"""Which networks look at faces alike: heatmap correlations and a hierarchical clustering.

For a *scope* (one scenario, dataset side and class, or "all" of those that every network has), each
network is the vector of its stretched heatmaps over the template's face pixels (concatenated for
"all"). Similarity is Pearson's r between those vectors; the clustering is average linkage on 1 - r,
cut into two clusters, which tests the paper's observation that ImageNet-pretrained and scratch
networks form two groups: ``agreement`` is the adjusted Rand index between the two clusters and the
pretrained/scratch split (1 = the same split, about 0 = unrelated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.explain.heatmaps import stretch

ALL = "all"


def scope_name(scenario: str, dataset: str, class_name: str) -> str:
    return f"{scenario}/{dataset}/{class_name}"


def network_vectors(groups: pd.DataFrame, heatmaps: np.ndarray, face: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """scope -> {model: vector}: stretched face pixels per scope, and the concatenation as scope "all"
    over the scopes that every network present has."""
    usable = groups[groups["n_images"] > 0]
    scopes: dict[str, dict[str, np.ndarray]] = {}
    for row in usable.itertuples():
        scope = scope_name(row.scenario, row.dataset, row.class_name)
        scopes.setdefault(scope, {})[row.model] = stretch(heatmaps[row.index])[face]
    models = sorted(set(usable["model"]))
    shared = [s for s in sorted(scopes) if set(scopes[s]) == set(models)]
    if shared:
        scopes[ALL] = {m: np.concatenate([scopes[s][m] for s in shared]) for m in models}
    return scopes


def correlations(vectors: dict[str, np.ndarray]) -> pd.DataFrame:
    """Square frame of Pearson's r between networks (a constant map correlates as NaN)."""
    models = sorted(vectors)
    matrix = np.full((len(models), len(models)), np.nan)
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            va, vb = vectors[a], vectors[b]
            if va.std() > 0 and vb.std() > 0:
                matrix[i, j] = float(np.corrcoef(va, vb)[0, 1])
    return pd.DataFrame(matrix, index=models, columns=models)


def cluster(similarity: pd.DataFrame, pretrained: dict[str, bool], n_clusters: int = 2) -> pd.DataFrame:
    """One row per network: its cluster (1..n), its leaf position in the dendrogram, whether it is a
    pretrained architecture, and the scope's ``agreement`` (adjusted Rand index with pretrained/scratch)."""
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
    from scipy.spatial.distance import squareform
    from sklearn.metrics import adjusted_rand_score

    models = list(similarity.index)
    distance = 1.0 - similarity.to_numpy(dtype=float)
    distance = np.where(np.isnan(distance), 2.0, distance)  # a constant map is as far as can be
    np.fill_diagonal(distance, 0.0)
    distance = np.clip((distance + distance.T) / 2, 0.0, 2.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    labels = fcluster(tree, t=min(n_clusters, len(models)), criterion="maxclust")
    order = {models[leaf]: position for position, leaf in enumerate(leaves_list(tree))}
    flags = [bool(pretrained.get(m, False)) for m in models]
    agreement = float(adjusted_rand_score(flags, labels)) if len(set(flags)) > 1 else float("nan")
    return pd.DataFrame({"model": models, "cluster": labels.astype(int), "leaf_order": [order[m] for m in models],
                         "pretrained": flags, "agreement": agreement})


def similarity_tables(groups: pd.DataFrame, heatmaps: np.ndarray, face: np.ndarray,
                      pretrained: dict[str, bool]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(similarity, clusters) long frames over every scope with at least two networks."""
    sim_rows, cluster_frames = [], []
    for scope, vectors in network_vectors(groups, heatmaps, face).items():
        if len(vectors) < 2:
            continue
        matrix = correlations(vectors)
        for a in matrix.index:
            for b in matrix.columns:
                sim_rows.append({"scope": scope, "model_a": a, "model_b": b, "correlation": matrix.loc[a, b]})
        cluster_frames.append(cluster(matrix, pretrained).assign(scope=scope))
    similarity = pd.DataFrame(sim_rows, columns=["scope", "model_a", "model_b", "correlation"])
    clusters = (pd.concat(cluster_frames, ignore_index=True) if cluster_frames else
                pd.DataFrame(columns=["model", "cluster", "leaf_order", "pretrained", "agreement", "scope"]))
    return similarity, clusters[["scope", "model", "cluster", "leaf_order", "pretrained", "agreement"]]
