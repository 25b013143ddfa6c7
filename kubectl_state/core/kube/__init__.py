"""API access: kubeconfig loading, discovery, paged lists and writes."""
