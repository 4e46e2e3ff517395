"""Search: enumeration of small feasible sets and neighbourhood search over integer boxes."""
