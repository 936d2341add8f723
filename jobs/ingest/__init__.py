"""Bronze: raw landing files read (``raw_files``), parsed and checked against the raw contracts
(``parse``: every refused line gets a quarantine reason), written with the audit (``bronze``)."""
