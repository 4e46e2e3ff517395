"""Planner plus one step of lookahead on a learned value (approximate policy iteration from the planner)."""

from engine.lookahead.config import LookaheadConfig
from engine.lookahead.policy import LookaheadPolicy
from engine.lookahead.training import train_lookahead

__all__ = ["LookaheadConfig", "LookaheadPolicy", "train_lookahead"]
