"""The ``notify`` queue's tasks: ``deliver`` and the outbox sweeper (channels live in ``domain.notify``)."""
