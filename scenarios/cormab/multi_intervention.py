"""Multiple-interventions coRMAB: N interventions jointly drive the arms (../shared/REFERENCE.md 1.2 item 4).

The action is a_i in {0,1} over N interventions with sum_i a_i = B exactly (not downward closed). Arm j
receives x_j = sum_i w_ji a_i (w_ji in {0,3} in the generator) and moves up with probability
    phi_j(x) = 0.98 * alpha_j * [sigmoid(beta_j x - x0_j) - sigmoid(-x0_j)] + 0.01,
so an arm nobody reaches (x_j = 0, the passive case) moves up with probability exactly 0.01, and
phi_j rises towards 0.98 alpha_j + 0.01 - 0.98 alpha_j sigmoid(-x0_j) as x grows. Interventions come in
groups of 3 that reach the same 3 arms: for a good arm (x0 in {9, 10}) one intervention (x = 3) does
almost nothing and all three (x = 9) do much, so the problem does not decompose by intervention.

Rows over [a] (no auxiliary variables):
    budget:   sum_i a_i = B
The myopic MILP models phi exactly: x_j takes finitely many values v (sums of at most B of arm j's
weights), one binary z[j,v] per value, sum_v z[j,v] = 1 and sum_v v z[j,v] = sum_i w_ji a_i.
``arms.p_passive``/``arms.p_active`` are informational here (phi at x = 0 and at the largest x).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.arms import birth_death_arms
from scenarios.constraints.attach import with_user_rows
from scenarios.constraints.interventions import InterventionsBlock
from scenarios.cormab.instance import N_STATES, CoRMABInstance, birth_death_expected, birth_death_step, generate_arms
from solvers.milp import MatrixMILP


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def phi(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Up-probability for intervention intensity ``x`` (broadcasts; phi(0) = 0.01)."""
    return 0.98 * alpha * (_sigmoid(beta * x - x0) - _sigmoid(-x0)) + 0.01


class MultiInterventionInstance(CoRMABInstance):
    """Arms, an arm-by-intervention weight matrix, sigmoid response parameters and an exact budget."""

    weights: list[list[int]] = Field(description="w[j][i]: intensity intervention i gives arm j (J x N), >= 0")
    alpha: list[float] = Field(description="response amplitude per arm, in [0, 1]")
    beta: list[float] = Field(description="response slope per arm, >= 0")
    x0: list[float] = Field(description="response offset per arm")
    budget: int = Field(description="exact number of interventions used per step", ge=0)

    @model_validator(mode="after")
    def _check(self) -> MultiInterventionInstance:
        J = self.n_arms
        if len(self.weights) != J:
            raise ValueError(f"weights: expected {J} rows (one per arm), got {len(self.weights)}")
        n = len(self.weights[0])
        if n < 1 or any(len(row) != n for row in self.weights):
            raise ValueError("weights: every row needs the same number (>= 1) of interventions")
        if any(w < 0 for row in self.weights for w in row):
            raise ValueError("weights: intensities must be non-negative")
        for name in ("alpha", "beta", "x0"):
            values = np.asarray(getattr(self, name), dtype=float)
            if values.shape != (J,):
                raise ValueError(f"{name}: expected {J} entries (one per arm), got {len(getattr(self, name))}")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{name}: NaN or infinity")
        if any(not 0.0 <= a <= 1.0 for a in self.alpha):
            raise ValueError("alpha: must lie in [0, 1]")
        if any(b < 0 for b in self.beta):
            raise ValueError("beta: must be non-negative")
        if self.budget > n:
            raise ValueError(f"budget: at most the number of interventions ({n}), got {self.budget}")
        self.arms.birth_death(type(self).__name__)  # the response phi sets P(up): birth-death arms only
        return self

    @classmethod
    def generate(
        cls,
        n_arms: int = 20,
        budget: int = 5,
        seed: int = 0,
        horizon: int = 20,
        n_actions: int | None = None,
        group_size: int = 3,
        intensity: int = 3,
    ) -> MultiInterventionInstance:
        """Reference distributions: N = J // 2 interventions (at least 1) in consecutive groups of
        ``group_size``; each group reaches the same ``group_size`` arms with intensity 3 (arms drawn as
        consecutive blocks of a random permutation, wrapping round when the groups need more than J arms,
        so arms beyond the groups' reach stay passive). Arms 0..B-1 are good (alpha ~ U[0.7, 1], beta ~
        U[1.4, 1.9], x0 in {9, 10}) as in the reward tables; the others bad (alpha ~ U[0.2, 0.5], beta = 1,
        x0 in {1, 2})."""
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        n = max(1, n_arms // 2) if n_actions is None else n_actions
        if n < 1:
            raise ValueError("n_actions: must be at least 1")
        if not 0 <= budget <= n:
            raise ValueError(f"budget: must lie in [0, {n}] (the number of interventions)")
        if group_size < 1:
            raise ValueError("group_size: must be at least 1")
        if intensity < 1:
            raise ValueError("intensity: must be at least 1")
        rng = np.random.default_rng([seed, 4])
        perm = rng.permutation(n_arms)
        W = np.zeros((n_arms, n), dtype=np.int64)
        reach = min(group_size, n_arms)
        for g, start in enumerate(range(0, n, group_size)):
            reached = perm[(g * reach + np.arange(reach)) % n_arms]
            W[np.ix_(reached, np.arange(start, min(start + group_size, n)))] = intensity
        good = np.arange(n_arms) < budget
        alpha = np.where(good, rng.uniform(0.7, 1.0, n_arms), rng.uniform(0.2, 0.5, n_arms))
        beta = np.where(good, rng.uniform(1.4, 1.9, n_arms), 1.0)
        x0 = np.where(good, rng.integers(9, 11, n_arms), rng.integers(1, 3, n_arms)).astype(float)
        x_max = np.sort(W, axis=1)[:, ::-1][:, :budget].sum(axis=1)
        rewards = generate_arms(n_arms, budget, seed, horizon).arrival_rewards
        assert rewards is not None  # generated birth-death arms pay on arrival
        arms = birth_death_arms(
            phi(np.zeros(n_arms), alpha, beta, x0),
            phi(x_max, alpha, beta, x0),
            rewards,
            horizon=horizon,
        )
        return cls(
            arms=arms, weights=W.tolist(), alpha=alpha.tolist(), beta=beta.tolist(), x0=x0.tolist(), budget=budget
        )

    # ------------------------------------------------------------------------------- structure
    @property
    def n_actions(self) -> int:
        return len(self.weights[0])

    def weight_matrix(self) -> np.ndarray:
        """(J, N) intensities."""
        return np.asarray(self.weights, dtype=float)

    def action_arm_links(self) -> np.ndarray:
        """(N, J) 0/1 matrix: the arms each intervention reaches."""
        return (self.weight_matrix().T > 0).astype(float)

    def intensity(self, action: np.ndarray) -> np.ndarray:
        """x_j = sum_i w_ji a_i for an action (N,) or a batch (k, N)."""
        return np.asarray(action, dtype=float) @ self.weight_matrix().T

    def arm_values(self) -> list[np.ndarray]:
        """Per arm, the sorted values x_j can take: sums of at most B of the arm's positive weights."""
        out = []
        for row in self.weights:
            sums = {(0, 0)}  # (number used, sum)
            for w in (w for w in row if w > 0):
                sums |= {(k + 1, s + w) for k, s in sums if k < self.budget}
            out.append(np.array(sorted({s for _, s in sums}), dtype=float))
        return out

    def up_probability(self, action: np.ndarray) -> np.ndarray:
        """phi_j(x_j) per arm for an action (N,) or a batch (k, N)."""
        return self.response(self.intensity(action))

    def expected_reward(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """E[sum_j r_j(s'_j)] with P(up) = phi_j(x_j); broadcasts over leading batch dimensions."""
        table = self.arms.birth_death(type(self).__name__)[2]
        return np.sum(birth_death_expected(table, self.up_probability(action), states), axis=-1)

    def transition(self, states: np.ndarray, action: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Up iff the arm's uniform is below phi_j(x_j), else down (one uniform per arm)."""
        return birth_death_step(states, self.up_probability(action), uniforms)

    def response(self, x: np.ndarray) -> np.ndarray:
        """phi_j(x_j); ``x`` has the arms on its last axis."""
        return phi(np.asarray(x, dtype=float), np.asarray(self.alpha), np.asarray(self.beta), np.asarray(self.x0))

    def control_structure(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """(weights (J, N), values of x_j per arm, phi_j at those values): what the occupancy LP bound needs."""
        values = self.arm_values()
        alpha, beta, x0 = (np.asarray(v) for v in (self.alpha, self.beta, self.x0))
        probs = [phi(v, alpha[j], beta[j], x0[j]) for j, v in enumerate(values)]
        return self.weight_matrix(), values, probs

    def action_model(self) -> ActionModel:
        """One interventions block, exactly B used (plus the user's constraints)."""
        block = InterventionsBlock(weights=self.weights, count=self.budget, exact=True)
        return self.compose_model("multi_intervention", [block])

    def myopic_milp(self, states: np.ndarray) -> MatrixMILP:
        """Maximise the expected next-step reward exactly: one-hot choice of each reached arm's x_j value."""
        states = np.asarray(states, dtype=np.int64)
        _, _, table = self.arms.birth_death(type(self).__name__)
        W, values, probs = self.control_structure()
        J, n = W.shape
        arm = np.arange(J)
        r_up = table[arm, np.minimum(states + 1, N_STATES - 1)]
        r_down = table[arm, np.maximum(states - 1, 0)]
        reached = [j for j in range(J) if len(values[j]) > 1]
        offset = float(
            sum(probs[j][0] * r_up[j] + (1 - probs[j][0]) * r_down[j] for j in range(J) if len(values[j]) == 1)
        )
        z_arm = (
            np.concatenate([np.full(len(values[j]), j) for j in reached]).astype(np.int64)
            if reached
            else np.zeros(0, np.int64)
        )
        z_val = np.concatenate([values[j] for j in reached]) if reached else np.zeros(0)
        z_prob = np.concatenate([probs[j] for j in reached]) if reached else np.zeros(0)
        nz, R = len(z_arm), len(reached)
        row_of = {j: r for r, j in enumerate(reached)}
        zr = np.array([row_of[j] for j in z_arm.tolist()], dtype=np.int64)
        zc = n + np.arange(nz)
        Wr = sp.coo_matrix(W[reached]) if reached else sp.coo_matrix((0, n))
        rows = np.concatenate([np.zeros(n, np.int64), 1 + zr, 1 + R + Wr.row, 1 + R + zr])
        cols = np.concatenate([np.arange(n), zc, Wr.col, zc])
        vals = np.concatenate([np.ones(n), np.ones(nz), Wr.data, -z_val])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(1 + 2 * R, n + nz))
        lo = np.concatenate([[self.budget], np.ones(R), np.zeros(R)]).astype(float)
        c = np.concatenate([np.zeros(n), z_prob * r_up[z_arm] + (1 - z_prob) * r_down[z_arm]])
        milp = MatrixMILP(
            c=c,
            A=A,
            row_lower=lo,
            row_upper=lo.copy(),
            col_lower=np.zeros(n + nz),
            col_upper=np.ones(n + nz),
            integer=np.ones(n + nz, dtype=bool),
            sense="max",
            offset=offset,
            row_names=["budget"] + [f"one_value[{j}]" for j in reached] + [f"intensity[{j}]" for j in reached],
            col_names=[f"a[{i}]" for i in range(n)]
            + [f"z[{j},{v:g}]" for j, v in zip(z_arm.tolist(), z_val.tolist(), strict=True)],
        )
        return with_user_rows(milp, self.n_actions, self.constraints)
