"""esm-reconcile: keep AWS Lambda event source mappings equal to YAML spec files.

Pipeline, one job per module: loader (YAML with lines) → spec/validate (pydantic models, per-kind
rules from rules.py and checks/) → live (read AWS) → diff (pure: desired × live → plan.Plan) →
render → apply (execute a Plan). app.py assembles them for every caller; model.py is the data
they share.
"""


def __getattr__(name: str) -> str:
    """`__version__` is the installed distribution's, whose one source is pyproject.toml's
    [project] version (as `esm --version` reads it); looked up only when asked for."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("esm-reconcile")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"
