"""Neighbourhood search over an integer box of actions, scored incrementally by a one-hidden-layer critic.

Dynamic neighbourhood construction (REFERENCE.md section 2), done right. Given a state, the critic is

    Q(a) = w2 . relu(c + W (a / amax)) + b2,        a in {0..amax_1} x ... x {0..amax_n}

with ``c`` the state's contribution to the hidden layer. Pipeline per decision:

1. a continuous proxy (the actor's output in [-1, 1]^n) is clipped, rescaled and rounded: the base action
   (``minmax_action``, the MinMax baseline);
2. the neighbourhood of the current point ``x`` is every move of +-j along one coordinate (j = 1..d) plus
   ``pair_moves`` random moves along two coordinates; moves leaving the box are masked, never proposed;
3. every neighbour is scored in one broadcasted update of the hidden pre-activation ``h = c + W (x / amax)``:
   a single-coordinate move by ``j`` adds ``j / amax_i * W[:, i]``, precomputed once per network as a
   tensor ``M`` of shape (n, 2d, H); the first layer is never re-run;
4. simulated annealing: if the best neighbour improves, move there; otherwise propose a uniformly random
   neighbour and accept it by the Metropolis rule ``u < exp((Q(y) - Q(x)) / T_t)`` under a geometric
   temperature schedule (``method="hill"``: stop instead, after ``patience`` non-improving steps);
5. the answer is the best action seen.

Everything is batched over states (B): memory is O(B * n * d * H), never O(|A|).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

_NEG = float("-inf")


@dataclass
class NeighbourhoodConfig:
    """Search settings; temperatures are relative to the mean |Q difference| of the first neighbourhood."""

    max_step: int = 10
    pair_moves: int = 32
    steps: int = 20
    method: str = "sa"
    temperature: float = 0.3
    final_temperature: float = 0.01
    patience: int = 2
    tol: float = 1e-6
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("sa", "hill"):
            raise ValueError(f"method: expected 'sa' or 'hill', got {self.method!r}")
        if self.max_step < 1 or self.steps < 0 or self.pair_moves < 0 or self.patience < 1:
            raise ValueError("max_step and patience must be >= 1; steps and pair_moves >= 0")
        if not 0.0 < self.final_temperature <= self.temperature:
            raise ValueError("temperatures: need 0 < final_temperature <= temperature")


@dataclass
class SearchResult:
    """Best actions (B, n), their Q values (B,), steps taken and neighbours scored."""

    actions: torch.Tensor
    values: torch.Tensor
    steps: int
    evaluated: int


def minmax_action(proxy: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
    """Clip a proxy in [-1, 1]^n, rescale to [0, amax] and round: the base action (long)."""
    unit = (proxy.clamp(-1.0, 1.0) + 1.0) * 0.5
    return torch.minimum(torch.round(unit * amax).long(), amax.long())


class NeighbourhoodSearch:
    """Batched, incremental neighbourhood search for ``Q(a) = w2 . relu(c + W (a / amax)) + b2``.

    ``W`` is (H, n) and multiplies the SCALED action ``a / amax``, exactly as the critic sees it.
    """

    def __init__(
        self, W: torch.Tensor, w2: torch.Tensor, b2: float | torch.Tensor, amax: torch.Tensor,
        config: NeighbourhoodConfig | None = None,
    ) -> None:
        self.config = config or NeighbourhoodConfig()
        self.W = W.detach().float()
        self.w2 = w2.detach().float().reshape(-1)
        self.b2 = float(b2)
        self.amax = amax.detach().long().reshape(-1)
        self.n = int(self.amax.numel())
        if self.W.shape != (self.w2.numel(), self.n):
            raise ValueError(f"W must have shape ({self.w2.numel()}, {self.n}), got {tuple(self.W.shape)}")
        if torch.any(self.amax < 1):
            raise ValueError("amax: every coordinate needs at least two values")
        d = min(self.config.max_step, int(self.amax.max()))
        self.steps = torch.cat([torch.arange(-d, 0), torch.arange(1, d + 1)])  # (2d,)
        self.inv_amax = 1.0 / self.amax.float()
        column = (self.W * self.inv_amax).T  # (n, H): effect of +1 unit on coordinate i
        self.M = self.steps.float()[None, :, None] * column[:, None, :]  # (n, 2d, H)

    # ------------------------------------------------------------------------------------ scoring
    def preactivation(self, c: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Full first-layer pre-activation ``c + W (a / amax)`` for actions (B, n) -> (B, H)."""
        return c + (actions.float() * self.inv_amax) @ self.W.T

    def q_from_pre(self, pre: torch.Tensor) -> torch.Tensor:
        """``w2 . relu(pre) + b2`` over the last axis (one matrix-vector product)."""
        flat = torch.relu(pre.reshape(-1, pre.shape[-1]))
        return (torch.mv(flat, self.w2) + self.b2).reshape(pre.shape[:-1])

    def score(self, c: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q of actions (B, n) given per-state ``c`` (B, H): a full forward pass."""
        return self.q_from_pre(self.preactivation(c, actions))

    def single_move_scores(self, h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, n, 2d) of every +-j single-coordinate neighbour of ``x`` whose pre-activation is ``h``,
        and the mask of neighbours inside the box. One broadcasted update, no first-layer pass."""
        scores = self.q_from_pre(h[:, None, None, :] + self.M)
        target = x[:, :, None] + self.steps
        valid = (target >= 0) & (target <= self.amax[:, None])
        return scores, valid

    # ------------------------------------------------------------------------------------ search
    def search(
        self, c: torch.Tensor, x0: torch.Tensor, steps: int | None = None, time_limit: float | None = None,
        generator: torch.Generator | None = None,
    ) -> SearchResult:
        """Search from base actions ``x0`` (B, n) for states with hidden contributions ``c`` (B, H)."""
        cfg = self.config
        start = time.perf_counter()
        n_steps = cfg.steps if steps is None else steps
        gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
        c = c.detach().float().reshape(-1, self.w2.numel())
        x = x0.detach().long().reshape(-1, self.n).clone()
        x = torch.minimum(torch.clamp(x, min=0), self.amax)
        B, n, two_d = x.shape[0], self.n, self.steps.numel()
        n_single = n * two_d
        rows = torch.arange(B)
        h = self.preactivation(c, x)
        q = self.q_from_pre(h)
        best_x, best_q = x.clone(), q.clone()
        t0: torch.Tensor | None = None
        stall = torch.zeros(B, dtype=torch.long)
        evaluated, taken = 0, 0
        for t in range(n_steps):
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
            s1, v1 = self.single_move_scores(h, x)
            scores, valid = s1.reshape(B, n_single), v1.reshape(B, n_single)
            pairs = None
            if cfg.pair_moves and n > 1:
                pairs = self._random_pairs(B, gen)
                s2, v2 = self._pair_scores(h, x, pairs)
                scores, valid = torch.cat([scores, s2], 1), torch.cat([valid, v2], 1)
            scores = scores.masked_fill(~valid, _NEG)
            evaluated += int(valid.sum())
            taken = t + 1
            top_q, top_idx = scores.max(1)
            improving = top_q > q + cfg.tol
            if cfg.method == "hill":
                stall = torch.where(improving, 0, stall + 1)
                idx, move = top_idx, improving
                if bool((stall >= cfg.patience).all()):
                    break
            else:
                if t0 is None:
                    finite = torch.where(valid, (scores - q[:, None]).abs(), torch.zeros(()))
                    t0 = cfg.temperature * finite.sum(1) / valid.sum(1).clamp(min=1) + 1e-12
                ratio = t / max(n_steps - 1, 1)
                temp = t0 * (cfg.final_temperature / cfg.temperature) ** ratio
                pick = torch.rand(scores.shape, generator=gen).masked_fill(~valid, -1.0).argmax(1)
                pick_q = scores[rows, pick]
                u = torch.rand(B, generator=gen)
                accept = u < torch.exp(((pick_q - q) / temp).clamp(max=0.0))
                idx = torch.where(improving, top_idx, pick)
                move = (improving | accept) & valid[rows, idx]
            if not bool(move.any()):
                continue
            x, h, q = self._apply(x, h, q, scores, idx, move, pairs, n_single)
            better = q > best_q
            best_q = torch.where(better, q, best_q)
            best_x = torch.where(better[:, None], x, best_x)
        return SearchResult(best_x, best_q, taken, evaluated)

    def _random_pairs(self, B: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        P, n, two_d = self.config.pair_moves, self.n, self.steps.numel()
        i1 = torch.randint(n, (B, P), generator=gen)
        i2 = (i1 + torch.randint(1, n, (B, P), generator=gen)) % n  # a different coordinate
        k1 = torch.randint(two_d, (B, P), generator=gen)
        k2 = torch.randint(two_d, (B, P), generator=gen)
        return i1, k1, i2, k2

    def _pair_scores(
        self, h: torch.Tensor, x: torch.Tensor, pairs: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        i1, k1, i2, k2 = pairs
        scores = self.q_from_pre(h[:, None, :] + self.M[i1, k1] + self.M[i2, k2])
        t1 = x.gather(1, i1) + self.steps[k1]
        t2 = x.gather(1, i2) + self.steps[k2]
        valid = (t1 >= 0) & (t1 <= self.amax[i1]) & (t2 >= 0) & (t2 <= self.amax[i2])
        return scores, valid

    def _apply(self, x, h, q, scores, idx, move, pairs, n_single):
        """Move the states flagged in ``move`` to neighbour ``idx`` (incremental update of h)."""
        rows = torch.arange(x.shape[0])
        two_d = self.steps.numel()
        single = idx < n_single
        ia, ka = idx // two_d, idx % two_d
        ib, kb = ia, ka
        if pairs is not None:
            p = (idx - n_single).clamp(min=0)
            i1, k1, i2, k2 = (t[rows, p] for t in pairs)
            ia, ka = torch.where(single, ia, i1), torch.where(single, ka, k1)
            ib, kb = torch.where(single, ia, i2), torch.where(single, ka, k2)
        ia, ka = ia.clamp(max=self.n - 1), ka.clamp(max=two_d - 1)
        has_b = ~single & move
        x = x.clone()
        x[rows, ia] += torch.where(move, self.steps[ka], 0)
        x[rows, ib] += torch.where(has_b, self.steps[kb], 0)
        delta = self.M[ia, ka] * move[:, None] + self.M[ib, kb] * has_b[:, None]
        return x, h + delta, torch.where(move, scores[rows, idx], q)
