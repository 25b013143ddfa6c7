"""Object transformations: cleaning, namespace mapping, owner-reference relinking."""
