"""jobs: the node's processing-job service (EUCAIM Tier 3, Jobman-compatible)."""
