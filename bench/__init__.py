"""The benchmark of CONTRACT §7: ``python -m bench`` (``make bench``)."""
