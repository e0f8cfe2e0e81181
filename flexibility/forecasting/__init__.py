"""Forecasts of what a home will use and produce: base load, PV output, hot-water demand.

The model modules (`base_load`, `pv`, `hot_water`, `accuracy`) are pure functions on pandas
series (no Django): history in, a `Forecast` (values plus the name of the model that made
them) out. `services` reads telemetry, calls them and stores the series; `selectors`,
`views` and `admin` show forecast accuracy.
"""
