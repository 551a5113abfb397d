"""FIRe² Fine-grained Feature Mining (FFM, docs/fire2-spec.md §2): per-identity clustering into fine-grained pseudo
labels.

At the start of every stage-2 epoch the whole train set is embedded in eval mode (post-BN features, test
transform, no flip; :func:`train_features`) and each identity is clustered on its own (:func:`cluster_identities`):

1. L2-normalise its n features; squared distances d = 2 − 2 x·y.
2. k-reciprocal **Jaccard distance** (:func:`jaccard_distance`, the SpCL variant the reference uses, k1 = 20,
   k2 = 6): exact kNN lists (self first); R(i, k) = the members of i's first k neighbours that have i among
   *their* first k; R(i, k1) is expanded with R(c, round(k1/2)) for each c in it whose set lies more than 2/3 inside
   R(i, k1); V[i, ·] = softmax of −d over the expanded set; query expansion V[i] ← mean of the V rows of i's first
   k2 neighbours; D[i, j] = 1 − m / (2 − m), m = Σ_k min(V[i, k], V[j, k]), clipped at 0.
3. DBSCAN(eps = 0.4, min_samples = 1, precomputed, inclusive) = the connected components of the graph D ≤ eps
   (:func:`connected_components`; labels numbered as scikit-learn does: by each cluster's first member).

Fine-grained ids are global (identity 0's clusters first), never shared between people (:class:`FgLabels`).

**kNN padding (docs/fire2-spec.md §8-P1).** The reference asks faiss for k1 neighbours even when the identity has n
< k1 images; faiss pads with label −1 and numpy reads −1 as the identity's last image. ``padding="reference"`` (the
default, faithful to the code) reproduces that exactly: the padded entries are a "ghost" token that stands for the
last image in distances and neighbour lists, but is a separate element of the (numpy ``unique``-d) expanded set, so
the last image can enter the softmax twice and a V row then sums to less than 1. ``padding="fixed"`` clamps the
lists to n (the clean choice). Identities with at least k1 images are unaffected.

All of it is batched tensor code on the features' device: identities are sorted by size and processed in chunks
padded to the chunk's largest identity (one masked (P, M, M) problem per chunk), never one image at a time.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlqlib.data.transforms import normalize

log = logging.getLogger(__name__)

PADDINGS = ("reference", "fixed")
CHUNK_ELEMS = 1 << 23  # P·(M+1)² per identity chunk: ~32 MB per float32 (P, M+1, M+1) matrix


@dataclass(frozen=True)
class FgLabels:
    """The fine-grained pseudo labels of one FFM pass.

    Attributes:
        fgids: (N,) long, global fine-grained class of every train image (dataset order).
        pid2fg: (N_id, F) bool, True where fine-grained class f belongs to identity p.
        centres: (F, D) float32, means of the L2-normalised member features (not re-normalised).
        per_id: (N_id,) long, clusters per identity.
    """

    fgids: Tensor
    pid2fg: Tensor
    centres: Tensor
    per_id: Tensor

    @property
    def num_classes(self) -> int:
        """F, the number of fine-grained classes."""
        return int(self.centres.shape[0])


# ------------------------------------------------------------------------------------------ features


def train_features(model: nn.Module, images: Tensor, batch_size: int, device: torch.device,
                   amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> Tensor:
    """Eval-mode post-BN features of every image, in order, with the test transform (normalise only, no flip).

    Args:
        model: returns (B, D) features in eval mode (:class:`rlqlib.methods.fire2.model.FIRe2Net`).
        images: (N, 3, H, W) uint8, on any device.
        batch_size: images per forward.
        device: where the model runs.
        amp_dtype: autocast dtype of the forward, None for float32.
        channels_last: channels-last input layout.

    Returns:
        (N, D) float32 features on ``device`` (not normalised). The model's train/eval state is restored.
    """
    was_training = model.training
    model.eval()
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    out = []
    try:
        with torch.no_grad(), autocast:
            for start in range(0, images.shape[0], batch_size):
                x = normalize(images[start:start + batch_size].to(device))  # (B, 3, H, W)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                out.append(model(x).float())  # (B, D)
    finally:
        model.train(was_training)
    return torch.cat(out)  # (N, D)


# ------------------------------------------------------------------------------------------ Jaccard


def _knn(d: Tensor, valid: Tensor, k1: int) -> Tensor:
    """(P, M, k1) neighbour lists, self first, then by distance (ties by index); entries past an identity's size
    are the ghost token M."""
    p, m, _ = d.shape
    ranked = d.masked_fill(~valid[:, None, :], float("inf"))  # (P, M, M)
    ranked.diagonal(dim1=1, dim2=2).fill_(float("-inf"))  # self at rank 0, as the reference's search returns it
    order = ranked.argsort(dim=2, stable=True)[..., :k1]  # (P, M, min(k1, M))
    pad = ~valid.gather(1, order.flatten(1)).view_as(order)  # (P, M, ·) beyond the identity's n
    order = order.masked_fill(pad, m)
    if order.shape[2] < k1:
        order = F.pad(order, (0, k1 - order.shape[2]), value=m)  # (P, M, k1)
    return order


def _counts(lists: Tensor, tokens: int, ghost: bool) -> Tensor:
    """(P, R, T) float: how often each token appears in each row's list (R rows, T tokens, last = ghost)."""
    c = torch.zeros(*lists.shape[:2], tokens, dtype=torch.float32, device=lists.device)
    c.scatter_add_(2, lists, torch.ones_like(lists, dtype=torch.float32))
    if not ghost:
        c[..., -1] = 0  # "fixed": padded entries are absent
    return c


def _reciprocal(lists_tok: Tensor, cols: int, ghost: bool) -> Tensor:
    """(P, M, T) multiplicities of every token in R(i, ·) for the real rows i, using the first ``cols`` columns.

    Token t is in R(i) with the multiplicity it has in i's list iff i is in t's list (the ghost's list is the
    last image's)."""
    m = lists_tok.shape[1] - 1
    c = _counts(lists_tok[..., :cols], m + 1, ghost)  # (P, T, T): row r's list as token counts
    member = c[:, :, :m] > 0  # (P, T, M): real image i in token t's list
    return c[:, :m, :] * member.transpose(1, 2)  # (P, M, T)


def _with_ghost_row(x: Tensor, last: Tensor) -> Tensor:
    """Append, per identity, a copy of row ``last`` (the identity's last image) as the ghost's row."""
    idx = last.view(-1, 1, *([1] * (x.dim() - 2))).expand(-1, 1, *x.shape[2:])
    return torch.cat([x, x.gather(1, idx)], dim=1)


def jaccard_distance(feats: Tensor, valid: Tensor, k1: int = 20, k2: int = 6, padding: str = "reference") -> Tensor:
    """k-reciprocal Jaccard distance within each identity of a padded batch (docs/fire2-spec.md §2, see the module doc).

    Args:
        feats: (P, M, D) L2-normalised features, identity p's n_p images in rows 0…n_p−1 (rest ignored).
        valid: (P, M) bool, True for the first n_p rows of each identity (n_p ≥ 1).
        k1, k2: neighbours and query-expansion size.
        padding: ``"reference"`` (faiss −1 padding read as the last image, docs/fire2-spec.md §8-P1) or ``"fixed"``.

    Returns:
        (P, M, M) float32 distances in [0, 1] between valid rows; +inf where either row is padding.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding={padding!r}; choose from {PADDINGS}")
    if feats.dim() != 3 or valid.shape != feats.shape[:2] or not bool(valid[:, 0].all()):
        raise ValueError(f"feats must be (P, M, D) and valid (P, M) with every identity non-empty, got "
                         f"{tuple(feats.shape)} and {tuple(valid.shape)}")
    ghost = padding == "reference"
    p, m, _ = feats.shape
    last = valid.sum(1) - 1  # (P,) row of each identity's last image
    x = feats.float() * valid[..., None]  # (P, M, D)
    d = 2 - 2 * x @ x.transpose(1, 2)  # (P, M, M) squared distances of unit vectors
    lists = _with_ghost_row(_knn(d, valid, k1), last)  # (P, T, k1), T = M + 1 tokens, ghost row = last image's
    r1 = _reciprocal(lists, k1, ghost) > 0  # (P, M, T) R(i, k1) as a set
    rh = _with_ghost_row(_reciprocal(lists, min(round(k1 / 2) + 1, k1), ghost), last)  # (P, T, T) R(c, k1/2)
    inside = (r1.float() @ (rh > 0).float().transpose(1, 2)).double()  # (P, M, T) |set(R(c, k1/2)) ∩ R(i, k1)|
    take = r1 & (inside > (2 / 3) * rh.sum(2).double()[:, None, :])  # (P, M, T) candidates c that expand R(i)
    expanded = r1 | (take.float() @ (rh > 0).float() > 0)  # (P, M, T)
    d_tok = torch.cat([d, d.gather(2, last.view(-1, 1, 1).expand(-1, m, 1))], dim=2)  # (P, M, T) ghost = last
    w = torch.softmax((-d_tok).masked_fill(~expanded, float("-inf")), dim=2)  # (P, M, T)
    w = torch.nan_to_num(w, nan=0.0) * valid[..., None]  # padding rows have an empty set
    v = w[..., :m].clone()  # (P, M, M); the ghost's weight lands on the last image's column (numpy index −1)
    col = last.view(-1, 1, 1).expand(-1, m, 1)
    v.scatter_(2, col, torch.maximum(v.gather(2, col), w[..., m:]))
    cols2 = min(k2, k1)
    q = _counts(lists[:, :m, :cols2], m + 1, ghost)  # (P, M, T) query-expansion rows
    q[..., :m].scatter_add_(2, col, q[..., m:])  # a padded entry means the last image's row
    q = q[..., :m] / q[..., :m].sum(2, keepdim=True).clamp_min(1)  # (P, M, M) mean over the k2 rows
    v = q @ v  # (P, M, M)
    s = v.sum(2)  # (P, M)
    l1 = torch.cdist(v, v, p=1)  # (P, M, M) Σ_k |V_ik − V_jk|
    l1 = 0.5 * (l1 + l1.transpose(1, 2))
    inter = 0.5 * (s[:, :, None] + s[:, None, :] - l1)  # Σ_k min(V_ik, V_jk)
    dist = (1 - inter / (2 - inter)).clamp_min(0)  # (P, M, M)
    both = valid[:, :, None] & valid[:, None, :]
    return dist.masked_fill(~both, float("inf"))


# ------------------------------------------------------------------------------------------ clustering


def connected_components(adj: Tensor) -> Tensor:
    """Connected components of a batch of undirected graphs, labelled like scikit-learn's DBSCAN.

    Min-label propagation with pointer jumping until nothing changes; component labels are then renumbered
    0, 1, … in the order of each component's smallest node (DBSCAN's order of discovery).

    Args:
        adj: (P, M, M) bool symmetric adjacency (self-loops optional).

    Returns:
        (P, M) long labels.
    """
    p, m, _ = adj.shape
    nodes = torch.arange(m, device=adj.device).expand(p, m)
    lab = nodes.clone()
    while True:
        nxt = torch.where(adj, lab[:, None, :], m).amin(dim=2)  # (P, M) smallest neighbour label
        nxt = torch.minimum(nxt, lab)
        nxt = nxt.gather(1, nxt)  # pointer jumping: a label is a node of the same component
        if torch.equal(nxt, lab):
            break
        lab = nxt
    rank = (lab == nodes).long().cumsum(1) - 1  # (P, M) index of each root among the roots
    return rank.gather(1, lab)


def dbscan_min_samples_1(dist: Tensor, valid: Tensor, eps: float) -> Tensor:
    """``DBSCAN(eps, min_samples=1, metric="precomputed")`` on each identity: every point is a core point, so the
    clusters are the connected components of D ≤ eps (inclusive) and there are no outliers.

    Args:
        dist: (P, M, M) symmetric distances.
        valid: (P, M) bool.
        eps: radius.

    Returns:
        (P, M) long labels, −1 on padding rows.
    """
    adj = (dist <= eps) & valid[:, :, None] & valid[:, None, :]
    return connected_components(adj).masked_fill(~valid, -1)


def _chunks(sizes: list[int], budget: int) -> list[list[int]]:
    """Identities sorted by size, grouped so that len(group) · (max size + 1)² ≤ budget (at least one each)."""
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    groups, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * (sizes[i] + 1) ** 2 > budget:
            groups.append(cur)
            cur = []
        cur.append(i)
    return groups + ([cur] if cur else [])


def cluster_identities(feats: Tensor, pids: Tensor, num_ids: int, k1: int = 20, k2: int = 6, eps: float = 0.4,
                       padding: str = "reference", chunk_elems: int = CHUNK_ELEMS) -> FgLabels:
    """FFM's clustering of a whole train set (docs/fire2-spec.md §2): per identity, Jaccard distance then DBSCAN.

    Args:
        feats: (N, D) features (normalised here).
        pids: (N,) identities 0…num_ids−1, each with at least one image.
        num_ids: N_id.
        k1, k2, eps, padding: see :func:`jaccard_distance` and :func:`dbscan_min_samples_1`.
        chunk_elems: memory budget of one identity chunk, in elements of a (P, M+1, M+1) matrix.

    Returns:
        The :class:`FgLabels`; cluster labels within an identity follow its images' dataset order.
    """
    dev = feats.device
    pids = pids.to(dev).long()
    sizes = torch.bincount(pids, minlength=num_ids)  # (N_id,)
    if pids.numel() != feats.shape[0] or sizes.numel() != num_ids or not bool((sizes > 0).all()):
        raise ValueError(f"cluster_identities: need one pid in [0, {num_ids}) per feature row and >= 1 image per "
                         f"identity; got {pids.numel()} pids for {feats.shape[0]} rows, sizes {sizes.tolist()}")
    x = F.normalize(feats.float(), dim=1)  # (N, D)
    order = torch.sort(pids, stable=True).indices  # (N,) dataset order within each identity
    starts = torch.cumsum(sizes, 0) - sizes  # (N_id,)
    local = torch.empty_like(pids)
    per_id = torch.empty(num_ids, dtype=torch.long, device=dev)
    for group in _chunks(sizes.tolist(), chunk_elems):
        g = torch.tensor(group, device=dev)
        m = int(sizes[g].max())
        slot = torch.arange(m, device=dev)
        valid = slot[None, :] < sizes[g][:, None]  # (P, M)
        idx = order[(starts[g][:, None] + slot[None, :]).clamp_max(pids.numel() - 1)]  # (P, M) dataset indices
        dist = jaccard_distance(x[idx], valid, k1, k2, padding)  # (P, M, M)
        labels = dbscan_min_samples_1(dist, valid, eps)  # (P, M)
        local[idx[valid]] = labels[valid]
        per_id[g] = labels.amax(1) + 1
    offset = torch.cumsum(per_id, 0) - per_id  # (N_id,) first global class of each identity
    fgids = offset[pids] + local  # (N,)
    num_fg = int(per_id.sum())
    cls = torch.arange(num_fg, device=dev)
    pid2fg = (cls[None, :] >= offset[:, None]) & (cls[None, :] < (offset + per_id)[:, None])  # (N_id, F)
    centres = torch.zeros(num_fg, x.shape[1], device=dev).index_add_(0, fgids, x)
    centres /= torch.bincount(fgids, minlength=num_fg)[:, None].float()  # (F, D)
    log.debug("FFM: %d fine-grained classes over %d identities", num_fg, num_ids)
    return FgLabels(fgids=fgids, pid2fg=pid2fg, centres=centres, per_id=per_id)
