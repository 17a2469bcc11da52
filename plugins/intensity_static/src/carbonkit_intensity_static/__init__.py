"""carbonkit plugin intensity_static (work in progress)."""
