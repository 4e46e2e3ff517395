"""DNC: the actor-critic agent for integer-box action spaces and its neighbourhood-search selectors."""

from engine.dnc.agent import ActorCriticAgent
from engine.dnc.config import ActorCriticConfig

__all__ = ["ActorCriticAgent", "ActorCriticConfig"]
