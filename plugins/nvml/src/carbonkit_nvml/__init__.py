"""carbonkit plugin nvml (work in progress)."""
