"""MILP back-ends (HiGHS, OR-Tools, Pyomo) and their registry."""
