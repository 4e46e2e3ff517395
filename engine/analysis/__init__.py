"""Ground truth and bounds: policy evaluation, exact dynamic programming on tiny instances, the occupancy-measure
LP bound.
"""
