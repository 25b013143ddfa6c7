"""Object transformations: cleaning, skip rules, namespace mapping, owner-reference relinking.

Pure functions on objects as plain dicts (decoded API JSON): no I/O, no clients, and no
function exported here modifies its input (`clean.clean_object_in_place` does, on purpose:
export cleans the objects it has just decoded and owns, without a copy). Export runs
`skip_reason` and `clean_object`; import runs
`map_namespaces`, `relink_owner_references` and orders objects with `owner_levels`.
"""

from kubectl_state.core.transform.clean import clean_object
from kubectl_state.core.transform.namespaces import check_mapping_targets, map_namespaces, parse_namespace_mapping
from kubectl_state.core.transform.owners import (
    MissingOwner,
    owner_graph,
    owner_levels,
    relink_owner_references,
)
from kubectl_state.core.transform.selectors import Selector, parse_label_selector
from kubectl_state.core.transform.skip import (
    DEFAULT_SKIPPED_RESOURCES,
    SkippedResource,
    SkipReason,
    resource_skip_reason,
    services_with_selector,
    skip_reason,
)

__all__ = [
    "DEFAULT_SKIPPED_RESOURCES",
    "MissingOwner",
    "Selector",
    "SkipReason",
    "SkippedResource",
    "check_mapping_targets",
    "clean_object",
    "map_namespaces",
    "owner_graph",
    "owner_levels",
    "parse_label_selector",
    "parse_namespace_mapping",
    "relink_owner_references",
    "resource_skip_reason",
    "services_with_selector",
    "skip_reason",
]
