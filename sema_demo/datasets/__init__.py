"""Data sets: toy 2D data (``toy``) and images (``images``)."""
