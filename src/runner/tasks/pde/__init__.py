"""PDEs written as data (conf/task/pde.yaml and its presets): the equation (`equation`), where the
collocation points fall (`samplers`), the Burgers reference (`burgers`), the task itself (`task`)
and its figures (`plots`)."""
