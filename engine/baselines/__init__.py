"""Baseline policies: myopic and greedy rules for the allocation families (cormab) and the integer-box families
(boxes).
"""
