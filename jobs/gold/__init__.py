"""Gold: daily CX KPIs (``kpi``), the customer journey (``journey``) with its daily and funnel rollups
(``journey_daily``), and ETA accuracy against the promise (``eta_accuracy``)."""
