"""Integer-box families: an integer vector per step inside bounds (inventory, maze)."""
