"""Control-plane topology and quorum-safe lifecycle step plans."""
