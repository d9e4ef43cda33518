"""Experiments. Each task is one module here plus one YAML in conf/task/ naming its class."""
