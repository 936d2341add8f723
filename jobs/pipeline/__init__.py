"""The nightly pipeline: ``nightly`` holds what every DAG task and ``cxlake run`` call (cheap to import);
``ops`` writes the run log (``ops.pipeline_runs``) and the quality findings (``ops.quality_findings``)."""
