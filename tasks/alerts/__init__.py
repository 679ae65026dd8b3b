"""The ``alerts`` queue's task: ``evaluate`` (rules and index live in ``domain.alerts``)."""
