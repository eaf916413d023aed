"""One run from data to results: its specification (:mod:`~privrec.runs.run_spec`), the one
pipeline that runs it (:mod:`~privrec.runs.pipeline`), its result
(:mod:`~privrec.runs.run_result`), its results-table row (:mod:`~privrec.runs.result_records`)
and the one run-directory writer and reader (:mod:`~privrec.runs.run_directory`)."""
