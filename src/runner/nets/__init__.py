"""The networks a run trains and measures: `MLP`, the architecture conf/model/*.yaml names by
`_target_`, and the `EnsembleMLP` it builds (runner.nets.mlp).

This layer sits above the theory (a network draws its layers by a `runner.theory.init.Init` and
applies a `runner.theory.activations.Activation`) and below the tasks and the training, which
both take a network: nothing here imports a task, the training, the results or the papers.
"""
