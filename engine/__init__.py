"""Q-networks, action selectors, trainers, the Engine facade, checkpoints and evaluation."""

from engine.decision import Decision
from engine.engine import Engine
from engine.sequoia.dqn_config import DQNConfig

__all__ = ["ActorCriticAgent", "ActorCriticConfig", "DQNConfig", "Decision", "Engine"]


def __getattr__(name: str):
    """The actor-critic stack loads on first use (it pulls in scipy.stats)."""
    if name in ("ActorCriticAgent", "ActorCriticConfig"):
        import engine.dnc

        return getattr(engine.dnc, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
