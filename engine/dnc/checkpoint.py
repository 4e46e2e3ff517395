"""Actor-critic checkpoints: ``config.json`` (settings, observation and action scaling, the instance, the
residual prior) and ``weights.safetensors`` (actor and critics); nothing is pickled."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from engine.checkpoint import read_checkpoint_meta, write_checkpoint_dir
from engine.dnc.agent import ActorCriticAgent
from engine.dnc.config import ActorCriticConfig
from engine.sequoia.residual_prior import ResidualPrior
from scenarios.errors import InvalidInputError


def save_agent(self: ActorCriticAgent, path: str | Path) -> Path:
    """Write ``config.json`` and ``weights.safetensors`` into directory ``path`` (atomically replaced)."""
    meta = {
        "kind": self.kind,
        "policy_version": self.policy_version,
        "config": asdict(self.config),
        "obs_center": self.obs_center.tolist(),
        "obs_scale": self.obs_scale.tolist(),
        "amax": self.amax.tolist(),
        "reward_scale": self.reward_scale,
        "instance": self.instance,
        "prior": self.prior.to_dict(),
        "potential": None if self.potential is None else self.potential.tolist(),
    }
    tensors = {f"actor.{k}": v for k, v in self.actor.state_dict().items()}
    for i, q in enumerate(self.critics):
        tensors |= {f"critic{i + 1 if i else ''}.{k}": v for k, v in q.state_dict().items()}
    return write_checkpoint_dir(path, meta, tensors)


def load_agent(path: str | Path) -> ActorCriticAgent:
    """The agent saved in checkpoint directory ``path`` (refused naming ``path`` when it is another kind)."""
    meta = read_checkpoint_meta(path)
    if meta.get("kind") != "actor_critic":
        raise InvalidInputError("path", f"{path} is not an actor-critic checkpoint")
    amax = np.asarray(meta["amax"])
    prior = ResidualPrior.from_dict(meta["prior"], amax) if meta.get("prior") else None
    agent = ActorCriticAgent(
        ActorCriticConfig.from_dict(meta["config"]),
        np.asarray(meta["obs_center"]),
        np.asarray(meta["obs_scale"]),
        amax,
        meta["reward_scale"],
        meta.get("instance"),
        prior,
        meta.get("potential"),
    )
    tensors = load_file(str(Path(path) / "weights.safetensors"))
    nets = [("actor.", agent.actor)] + [(f"critic{i + 1 if i else ''}.", q) for i, q in enumerate(agent.critics)]
    for prefix, net in nets:
        net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    return agent
