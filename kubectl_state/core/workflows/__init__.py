"""The operations both faces call: export, import, diff, verify, migrate.

Each composes the lower layers (kube, archive, transform, plan) into one workflow that the
CLI command and the Ansible module share; neither reimplements any of it.
"""
