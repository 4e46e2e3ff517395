"""SEQUOIA: the Q-network over state and joint action, its planner prior, DQN training and the selectors that
maximise it over the feasible set.
"""
