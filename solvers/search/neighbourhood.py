"""Neighbourhood search over an integer box of actions, scored incrementally by a one-hidden-layer critic.

Dynamic neighbourhood construction (../shared/REFERENCE.md section 2), done right. Given a state, the critic is

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

With a known reward model (:class:`~solvers.formulations.separable_reward.SeparableReward`,
``Q = r(a) + critic``) a move along coordinate ``i`` changes ``r`` by one table difference
and the fixed charge by whether the count of
active coordinates leaves or reaches zero: also incremental. The search also scores the no-charge point
(every active coordinate lowered onto its threshold) and starts from the better of it and the base action:
dropping the charge needs every active coordinate to move at once, which single and pair moves rarely do.

Everything is batched over states (B): memory is O(B * n * d * H), never O(|A|).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from solvers.formulations.separable_reward import SeparableReward

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
    charge_off_start: bool = True  # with a reward model: also score the no-charge point, start from the better
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
    """Best actions (B, n), their Q values (B,), steps taken, neighbours scored, worse moves accepted."""

    actions: torch.Tensor
    values: torch.Tensor
    steps: int
    evaluated: int
    worse_moves: int = 0


def minmax_action(proxy: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
    """Clip a proxy in [-1, 1]^n, rescale to [0, amax] and round: the base action (long)."""
    unit = (proxy.clamp(-1.0, 1.0) + 1.0) * 0.5
    return torch.minimum(torch.round(unit * amax).long(), amax.long())


class NeighbourhoodSearch:
    """Batched, incremental neighbourhood search for ``Q(a) = w2 . relu(c + W (a / amax)) + b2``.

    ``W`` is (H, n) and multiplies the SCALED action ``a / amax``, exactly as the critic sees it. ``lower`` and
    ``upper`` (default ``0`` and ``amax``) restrict the search to a sub-box (a trust region); the scaling
    stays ``a / amax``.
    """

    def __init__(
        self,
        W: torch.Tensor,
        w2: torch.Tensor,
        b2: float | torch.Tensor,
        amax: torch.Tensor,
        config: NeighbourhoodConfig | None = None,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
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
        self.lower = torch.zeros(self.n, dtype=torch.long) if lower is None else lower.detach().long().reshape(-1)
        self.upper = self.amax.clone() if upper is None else upper.detach().long().reshape(-1)
        if self.lower.shape != (self.n,) or self.upper.shape != (self.n,):
            raise ValueError(f"lower and upper must have shape ({self.n},)")
        if torch.any(self.lower < 0) or torch.any(self.upper > self.amax) or torch.any(self.lower > self.upper):
            raise ValueError("need 0 <= lower <= upper <= amax")
        d = min(self.config.max_step, max(int((self.upper - self.lower).max()), 1))  # no longer move fits
        self.steps = torch.cat([torch.arange(-d, 0), torch.arange(1, d + 1)])  # (2d,)
        self._d = d
        # columns of x itself and of its 2d single moves in the reward lookup, which starts at value -d
        self._lookup_cols = torch.cat([torch.zeros(1, dtype=torch.long), self.steps]) + d
        two_d = self.steps.numel()
        self.inv_amax = 1.0 / self.amax.float()
        column = (self.W * self.inv_amax).T  # (n, H): effect of +1 unit on coordinate i
        self.M = self.steps.float()[None, :, None] * column[:, None, :]  # (n, 2d, H)
        # Flat move table: move f = i * 2d + k moves coordinate i by steps[k]; row n*2d is the null move.
        H = self.w2.numel()
        self._M_flat = torch.cat([self.M.reshape(-1, H), torch.zeros(1, H)])
        self._coord = torch.cat([torch.arange(self.n).repeat_interleave(two_d), torch.zeros(1, dtype=torch.long)])
        self._delta = torch.cat([self.steps.repeat(self.n), torch.zeros(1, dtype=torch.long)])
        self._null = self.n * two_d
        # move k is valid for x_i when lo_ok[i, k] <= x_i <= hi_ok[i, k]
        self._lo_ok = self.lower[:, None] - self.steps[None, :]
        self._hi_ok = self.upper[:, None] - self.steps[None, :]

    # ------------------------------------------------------------------------------------ scoring
    def preactivation(self, c: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Full first-layer pre-activation ``c + W (a / amax)`` for actions (B, n) -> (B, H)."""
        return c + (actions.float() * self.inv_amax) @ self.W.T

    def q_from_pre(self, pre: torch.Tensor) -> torch.Tensor:
        """``w2 . relu(pre) + b2`` over the last axis (one matrix-vector product)."""
        return torch.relu(pre) @ self.w2 + self.b2

    def score(self, c: torch.Tensor, actions: torch.Tensor, reward: SeparableReward | None = None) -> torch.Tensor:
        """Q of actions (B, n) given per-state ``c`` (B, H) (plus ``reward``'s value): a full forward pass."""
        q = self.q_from_pre(self.preactivation(c, actions))
        return q if reward is None else q + reward.value(actions)

    def reward_lookup(self, reward: SeparableReward, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """``(B, n, L + 2d, 2)``: per action value ``v`` (at position ``v + d``), the separable reward (``-inf``
        outside ``lower .. upper``, so moves leaving the box score ``-inf``) and whether the coordinate is
        active (pays the charge)."""
        d = self._d
        B, n, L = reward.tables.shape
        values = torch.arange(-d, L + d)
        inside = (values >= lower.expand(B, n)[:, :, None]) & (values <= upper.expand(B, n)[:, :, None])
        tables = torch.nn.functional.pad(reward.tables, (d, d)).masked_fill(~inside, _NEG)
        return torch.stack([tables, (values > reward.thresholds[:, :, None]).float()], 3)

    def reward_moves(self, lookup: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For every single move of ``x`` (B, n) (in the box): the change of (separable reward, active count),
        (B, n * 2d, 2), ``-inf`` for moves leaving the box, and the active count of ``x`` (B, 1)."""
        B, n = x.shape
        idx = x[:, :, None] + self._lookup_cols  # column 0: x itself
        vals = lookup.gather(2, idx[:, :, :, None].expand(B, n, idx.shape[2], 2))
        return (vals[:, :, 1:] - vals[:, :, :1]).reshape(B, -1, 2), vals[:, :, 0, 1].sum(1, keepdim=True)

    def single_move_scores(self, h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, n, 2d) of every +-j single-coordinate neighbour of ``x`` whose pre-activation is ``h``,
        and the mask of neighbours inside the box. One broadcasted update, no first-layer pass."""
        B = x.shape[0]
        scores = self.q_from_pre(h[:, None, :] + self._M_flat[:-1]).reshape(B, self.n, -1)
        xs = x[:, :, None]
        return scores, (xs >= self._lo_ok) & (xs <= self._hi_ok)

    # ------------------------------------------------------------------------------------ search
    @torch.inference_mode()
    def search(
        self,
        c: torch.Tensor,
        x0: torch.Tensor,
        steps: int | None = None,
        time_limit: float | None = None,
        generator: torch.Generator | None = None,
        reward: SeparableReward | None = None,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
    ) -> SearchResult:
        """Search from base actions ``x0`` (B, n) for states with hidden contributions ``c`` (B, H); with
        ``reward`` (one model per state) the objective is ``critic + reward``. ``lower`` / ``upper`` (B, n)
        replace the searcher's box per state (any sub-box of ``[0, amax]``; moves stay at most ``max_step``
        and the width of the searcher's own box)."""
        cfg = self.config
        start = time.perf_counter()
        n_steps = cfg.steps if steps is None else steps
        gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
        c = c.detach().float().reshape(-1, self.w2.numel())
        x = x0.detach().long().reshape(-1, self.n)
        lo, hi = self._box(x.shape[0], lower, upper)
        x = torch.minimum(torch.maximum(x, lo), hi)
        B, n_single = x.shape[0], self._null
        P = cfg.pair_moves if self.n > 1 else 0
        K = n_single + P
        # random numbers of the whole run, drawn up front: pair moves (fa, fb), SA proposals and uniforms
        fa, fb = self._random_pairs(n_steps, B, P, gen)  # (T, B, P) flat single-move ids
        pair_delta = self._M_flat[fa] + self._M_flat[fb]  # (T, B, P, H)
        move_ids = torch.stack(
            [  # (T, B, K, 2): the two single moves making up each candidate
                torch.cat([torch.arange(n_single).expand(n_steps, B, n_single), fa], 2),
                torch.cat([torch.full((n_steps, B, n_single), self._null), fb], 2),
            ],
            3,
        )
        proposals = torch.randint(K, (n_steps, B, 1), generator=gen)
        if reward is not None and P:  # (T, B, 2P, 2): both single moves of each pair, for gathering
            pair_ids = torch.stack([fa, fb], 3).reshape(n_steps, B, 2 * P, 1).expand(-1, -1, -1, 2)
        uniforms = torch.rand(n_steps, B, generator=gen)
        singles = self._M_flat[:-1]
        if reward is not None and (reward.batch != B or reward.n != self.n or reward.tables.shape[2] <= int(hi.max())):
            raise ValueError(f"reward: expected {B} states over {self.n} coordinates with tables covering the box")
        if reward is not None:
            r_now = reward.value(x)
            if cfg.charge_off_start:  # a multi-coordinate jump single moves rarely make
                off = torch.minimum(torch.maximum(reward.charge_off(x), lo), hi)
                critic = self.q_from_pre(self.preactivation(c, torch.stack([x, off])))  # (2, B)
                r_off = reward.value(off)
                take = critic[1] + r_off > critic[0] + r_now
                x, r_now = torch.where(take[:, None], off, x), torch.where(take, r_off, r_now)
            lookup, charge = self.reward_lookup(reward, lo, hi), reward.charge[:, None]
        else:  # move k is valid for x_i when lo_ok <= x_i <= hi_ok
            lo_ok, hi_ok = lo[..., None] - self.steps, hi[..., None] - self.steps
        h = self.preactivation(c, x)
        q = self.q_from_pre(h) + (r_now if reward is not None else 0.0)
        best_x, best_q = x.clone(), q.clone()
        temps: torch.Tensor | None = None
        stall = torch.zeros(B, dtype=torch.long)
        worse = torch.zeros(B, dtype=torch.long)
        evaluated, taken = 0, 0
        for t in range(n_steps):
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
            # 1. score the neighbourhood incrementally: all single moves, then P random pair moves
            hb = h[:, None, :]
            pre = torch.cat([hb + singles, hb + pair_delta[t]], 1) if P else hb + singles
            scores = self.q_from_pre(pre)  # (B, K)
            if reward is not None:  # + the reward model's change, incrementally
                moves, count = self.reward_moves(lookup, x)
                if P:
                    moves = torch.cat([moves, moves.gather(1, pair_ids[t]).reshape(B, P, 2, 2).sum(2)], 1)
                charged = (count + moves[:, :, 1]).clamp(max=1.0) - count.clamp(max=1.0)  # counts: integers >= 0
                rewards = r_now[:, None] + moves[:, :, 0] - charge * charged
                scores = scores + rewards  # -inf for moves leaving the box (the lookup is padded with -inf)
                valid = torch.isfinite(scores) if temps is None and cfg.method == "sa" else None
            else:
                xs = x[:, :, None]
                valid = ((xs >= lo_ok) & (xs <= hi_ok)).reshape(B, n_single)
                if P:
                    valid = torch.cat([valid, valid.gather(1, fa[t]) & valid.gather(1, fb[t])], 1)
                scores = scores.masked_fill(~valid, _NEG)
            evaluated += B * K
            taken = t + 1
            # 2. choose: steepest ascent when it improves, else Metropolis on a random proposal (or stop)
            top_q, idx = scores.max(1)
            improving = top_q > q + cfg.tol
            if cfg.method == "hill":
                stall = torch.where(improving, 0, stall + 1)
                if bool((stall >= cfg.patience).all()):
                    break
                move = improving
            else:
                if temps is None:  # T_t = T_0 r^t with T_0 relative to the first neighbourhood's spread
                    assert valid is not None  # step 1 computes it whenever the temperatures are still unset
                    spread = torch.where(valid, (scores - q[:, None]).abs(), 0.0)
                    t0 = cfg.temperature * spread.sum(1) / valid.sum(1).clamp(min=1) + 1e-12
                    decay = (cfg.final_temperature / cfg.temperature) ** (torch.arange(n_steps) / max(n_steps - 1, 1))
                    temps = decay[:, None] * t0
                    # Metropolis: accept when u < exp((Q(y) - Q(x)) / T), i.e. when Q(y) - Q(x) > T log u
                    log_u_temps = temps * torch.log(uniforms)
                pick_q = scores.gather(1, proposals[t]).squeeze(1)  # -inf (rejected) when out of the box
                accept = pick_q - q > log_u_temps[t]
                idx = torch.where(improving, idx, proposals[t, :, 0])
                move = improving | accept
                worse += accept & ~improving
            # 3. apply the move incrementally: x += deltas, h += M rows, q = the neighbour's score
            col = idx[:, None]
            chosen = move_ids[t].gather(1, col[:, :, None].expand(B, 1, 2))[:, 0]
            chosen = torch.where(move[:, None], chosen, self._null)
            x = x.scatter_add(1, self._coord[chosen], self._delta[chosen])
            h = h + self._M_flat[chosen].sum(1)
            q = torch.where(move, scores.gather(1, col)[:, 0], q)
            if reward is not None:
                r_now = torch.where(move, rewards.gather(1, col)[:, 0], r_now)
            better = q > best_q
            best_q = torch.where(better, q, best_q)
            best_x = torch.where(better[:, None], x, best_x)
        return SearchResult(best_x, best_q, taken, evaluated, int(worse.sum()))

    def _box(
        self,
        B: int,
        lower: torch.Tensor | None,
        upper: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lower, upper)``: the searcher's box (n,), or validated per-state boxes (B, n)."""
        if lower is None and upper is None:
            return self.lower, self.upper
        lo = self.lower if lower is None else lower.detach().long()
        hi = self.upper if upper is None else upper.detach().long()
        if any(t.shape not in ((self.n,), (1, self.n), (B, self.n)) for t in (lo, hi)):
            raise ValueError(f"lower, upper: expected shape ({B}, {self.n}), got {tuple(lo.shape)}, {tuple(hi.shape)}")
        lo, hi = lo.expand(B, self.n), hi.expand(B, self.n)
        if torch.any(lo < 0) or torch.any(hi > self.amax) or torch.any(lo > hi):
            raise ValueError(f"lower, upper: need 0 <= lower <= upper <= amax, shape ({B}, {self.n})")
        return lo, hi

    def _random_pairs(self, T: int, B: int, P: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat ids (T, B, P) of two single moves on two different coordinates."""
        n, two_d = self.n, self.steps.numel()
        if P == 0 or n < 2:
            empty = torch.zeros(T, B, 0, dtype=torch.long)
            return empty, empty
        i1 = torch.randint(n, (T, B, P), generator=gen)
        i2 = (i1 + torch.randint(1, n, (T, B, P), generator=gen)) % n
        k = torch.randint(two_d, (2, T, B, P), generator=gen)
        return i1 * two_d + k[0], i2 * two_d + k[1]
