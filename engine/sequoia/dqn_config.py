"""The DQN's settings (:class:`DQNConfig`, every hyperparameter of :mod:`engine.sequoia.dqn`, JSON round trip,
older checkpoints' keys mapped) and what a training run reports (:class:`TrainingSummary`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class DQNConfig:
    hidden: tuple[int, ...] = (16, 32)
    # joint: one MLP over [action ; action x context ; all arm states] (its input grows with J);
    # armwise: one encoder shared by every action entry, the action linear per entry, a pooled value head
    # (engine/sequoia/armwise_network.py): the same weights at any J, exact argmax by the domain's oracle
    network: str = "joint"
    episodes: int = 100
    warm_start_samples: int = 4096
    warm_start_epochs: int = 300
    lr: float = 1e-3
    lr_floor_fraction: float = 0.1
    batch_size: int = 64
    replay_size: int = 50_000
    updates_per_step: int = 4
    gamma: float = 1.0
    epsilon_start: float = 0.9
    epsilon_end: float = 0.05
    epsilon_decay_fraction: float = 0.6
    target_update_every: int = 100
    expected_reward_targets: bool = True
    act_selector: str = "auto"
    act_time_limit: float = 1.0
    act_mip_gap: float = 0.01
    random_candidates: int = 128
    elite_candidates: int = 128
    grad_clip: float = 10.0
    weight_decay: float = 0.0
    # MILP-friendly training (engine/sequoia/milp_friendly.py): ReLU stability on interval bounds, L1, pruning.
    # Capacity J = 20 seed 0: median exact MILP decision 158 -> 29 ms, return 234 -> 295 (0 disables)
    stability_weight: float = 1e-3
    l1_weight: float = 1e-7
    prune_threshold: float = 1e-3
    # model selection: keep the best of `snapshots` networks (after the warm start, evenly through training,
    # final) by the mean return of their exact greedy policy on `validation_episodes` held-out episodes
    snapshots: int = 5
    validation_episodes: int = 10
    # Q = prior (linear in the action at each state) + the network's residual (engine/planners/prior.py):
    # auto (Whittle on arm-pull domains, Lagrangian otherwise) | whittle | lagrangian | reward | none.
    # The untrained network outputs 0, so the first snapshot IS the prior's policy.
    prior: str = "auto"
    # a trained snapshot replaces the first one (the prior's policy) only when its paired held-out gain
    # exceeds this many standard errors
    selection_z: float = 2.0
    # other planners measured against the chosen policy after snapshot selection: "auto" = every built-in planner
    # that fits the instance (LP-update up to 100 arms, Lagrangian up to 200), or names (e.g. ("lp_update",)), or ()
    # for none. The best planner decides unless the trained network beats it by selection_z standard errors
    # (engine/sequoia/planner_candidates.py; TrainingSummary.kept_planner_name)
    planner_candidates: tuple[str, ...] = ("auto",)
    # that final choice is made on this many fresh episodes (not the validation episodes, on which the selected
    # snapshot looks better than it is: it is the maximum of several noisy scores); 0: on the validation episodes
    confirmation_episodes: int = 20
    # ... extended (doubled) up to this many while the planners' contest is close (planner_candidates.py)
    confirmation_max_episodes: int = 80
    # there a candidate planner replaces the prior's only when its paired gain exceeds this many standard errors
    planner_switch_z: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["planner_candidates"] = list(self.planner_candidates)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DQNConfig:
        d = dict(d)
        d["hidden"] = tuple(d.get("hidden", (16, 32)))
        d["planner_candidates"] = tuple(d.get("planner_candidates", ()))  # none before "auto" existed
        d.setdefault("confirmation_episodes", 0)  # chosen on the validation episodes before
        d.setdefault("confirmation_max_episodes", d["confirmation_episodes"])  # and never extended
        if "prior" not in d and "reward_prior" in d:  # written before the planner priors
            d["prior"] = "reward" if d["reward_prior"] else "none"
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class TrainingSummary:
    episode_returns: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    warm_start_loss: float = float("nan")
    seconds: float = 0.0
    act_decisions: int = 0
    act_seconds: float = 0.0
    act_status_counts: dict[str, int] = field(default_factory=dict)
    gradient_steps: int = 0
    snapshot_episodes: list[int] = field(default_factory=list)
    snapshot_returns: list[float] = field(default_factory=list)
    selected_snapshot: int = -1
    # the prior's planner won the final choice over a network that is not exactly it (a trained snapshot, or the
    # prior's snapshot where the prior only linearises the planner: interventions): the engine decides with it
    kept_planner: bool = False
    # a planner candidate (DQNConfig.planner_candidates) beat the chosen policy: it decides ("" when none did);
    # candidate_names: the candidates measured ("auto" resolved), candidate_returns: their mean returns, in order
    kept_planner_name: str = ""
    candidate_names: list[str] = field(default_factory=list)
    candidate_returns: list[float] = field(default_factory=list)
    # the final choice's mean returns (network, prior = the prior's planner, candidates) on final_episodes episodes
    final_returns: dict[str, float] = field(default_factory=dict)
    final_episodes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
