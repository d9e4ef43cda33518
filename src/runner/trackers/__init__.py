"""The experiment trackers, in one place: `loggers` builds what conf/logger/*.yaml names by
`_target_` for a run (metrics.csv always, W&B and TensorBoard beside it), and `reports` gives them
what a run ends with (its record: final metrics, fates, resolved init, plots) and what a sweep's
aggregate or a screen sends as a run of its own."""
