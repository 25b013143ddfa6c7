"""Restore ordering and the plan and report data types.

  tiers   the tier table (data), and user tier files
  model   ObjectId, PlanInput, PlannedObject, Step, Plan
  select  restoring a subset (-n, -l, resource filters) with what it needs
  build   build_plan: namespace mapping, tiers, owners/namespace/CRD before dependents
  report  Outcome, ObjectResult, ImportReport
"""

from kubectl_state.core.plan.build import build_plan, target_id
from kubectl_state.core.plan.model import ObjectId, Plan, PlanInput, PlannedObject, Step
from kubectl_state.core.plan.report import ImportReport, ObjectResult, Outcome
from kubectl_state.core.plan.select import Selection, select
from kubectl_state.core.plan.tiers import DEFAULT_TIERS, REST, TierTable, parse_tier_document

__all__ = [
    "DEFAULT_TIERS",
    "REST",
    "ImportReport",
    "ObjectId",
    "ObjectResult",
    "Outcome",
    "Plan",
    "PlanInput",
    "PlannedObject",
    "Selection",
    "Step",
    "TierTable",
    "build_plan",
    "parse_tier_document",
    "select",
    "target_id",
]
