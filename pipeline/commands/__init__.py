"""The `admod` commands, one module per group, each command's parser beside its handler:

  local     demo-data, split, run
  compile   compile
  registry  registry list | clean | set-champion | sync
  serving   predict, serve-manifest
  cloud     submit, schedule create | list | pause | resume | delete

A handler reads its flags and calls the modules that do the work; what it prints is the result.
It imports those modules when it runs, not at the top: `admod --help`, a mistyped flag and
`predict --request-body` then start without TensorFlow, KFP or matplotlib.
"""
