"""carbonkit plugin rapl (work in progress)."""
