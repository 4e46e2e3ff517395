"""Formulations: ReLU networks and reward models as MILP rows, interval bounds and bound tightening."""
