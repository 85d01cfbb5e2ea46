"""Durable execution: an execution's progress as data in the ledger, advanced a step at a time.

`state` holds the run state and the checkpoint a step writes; `local` keeps run state for
ledgers that do not persist it (the basic tier); `children` and `spawn` run map and sub-workflow
steps as child executions. `spine_core.runner.ExecutionRunner.advance` is
the one unit of work every backend runs.
"""
