"""The dataset materialiser (Tier 3)."""
