"""esm-reconcile: keep AWS Lambda event source mappings equal to YAML spec files.

Pipeline, one job per module: loader (YAML with lines) → spec/validate (pydantic models, per-kind
rules from rules.py and checks/) → live (read AWS) → diff (pure: desired × live → plan.Plan) →
render → apply (execute a Plan). app.py assembles them for every caller; model.py is the data
they share.
"""

__version__ = "0.1.0"
