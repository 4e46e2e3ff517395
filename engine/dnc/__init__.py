"""DNC: the actor-critic agent for integer-box action spaces and its neighbourhood-search selectors."""
