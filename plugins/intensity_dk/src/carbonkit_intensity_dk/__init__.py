"""carbonkit plugin intensity_dk (work in progress)."""
