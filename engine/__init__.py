"""Q-networks, action selectors, trainers, the Engine facade, checkpoints and evaluation."""

from engine.actor_critic import ActorCriticAgent, ActorCriticConfig
from engine.decision import Decision
from engine.dqn import DQNConfig
from engine.engine import Engine

__all__ = ["ActorCriticAgent", "ActorCriticConfig", "DQNConfig", "Decision", "Engine"]
