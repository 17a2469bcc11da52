"""carbonkit plugin cpu_estimate (work in progress)."""
