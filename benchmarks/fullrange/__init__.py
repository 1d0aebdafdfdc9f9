"""The CIFAR-10 full-range study behind ``benchmarks/cifar10_fullrange.py``, one concept per module:

* ``profiles`` — the recipes each profile trains (YAML files plus overrides) and the students' order,
* ``budget``   — epochs per stage: fixed, the recipe's, or those that fill a wall-clock budget,
* ``state``    — the study's one small JSON (results as they finish, adoption of published runs) and
  the rule that keeps machine paths out of everything it publishes,
* ``run``      — the stages (teacher, students, report), each resumable,
* ``report``   — the markdown, the picture and the published JSON, read from the state.
"""
