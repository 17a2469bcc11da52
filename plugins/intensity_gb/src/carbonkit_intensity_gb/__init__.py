"""carbonkit plugin intensity_gb (work in progress)."""
