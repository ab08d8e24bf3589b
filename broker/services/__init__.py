"""One thin servicer per proto service: validate, call the store, convert."""
