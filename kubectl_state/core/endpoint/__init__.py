"""The fixed API endpoint (HAProxy): its backend list, changed at runtime and kept on disk."""
